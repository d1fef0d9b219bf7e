"""`aiops replay`: run a past window through the agent's core and print what it would have done."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, fail, load
from agent.cli.output import emit_json
from agent.config import load_config
from agent.durations import parse_duration
from agent.errors import ConfigError
from integrations.errors import IntegrationError


def moment(text: str, now: float) -> float:
    """`6h` (that long ago), unix seconds, or an ISO 8601 time (naive means UTC)."""
    try:
        return now - parse_duration(text).total_seconds()
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (6h), unix seconds nor an ISO 8601 time") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def replay(
    since: Annotated[
        str, typer.Option("--since", help="Start of the window: 6h (ago), unix seconds or ISO 8601.")
    ],
    until: Annotated[str, typer.Option("--until", help="End of the window (default: now).")] = "0s",
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Another rules.yaml: replay twice and show where its plans differ."),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep each replay's store in this directory (for `--store`)."),
    ] = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """History from Prometheus (and file log sources) through the agent's core on a simulated clock: the
    incidents, rule matches and changes it would have produced. Runs nothing; writes nothing to the store."""
    from agent.shell.app import prometheus_client
    from agent.shell.replay import replay as run_replay

    cfg = load(config)
    now = time.time()
    try:
        start, end = moment(since, now), moment(until, now)
    except ValueError as e:
        fail(f"--since/--until: {e}")
    if end <= start:
        fail("--until must be after --since")
    candidate = None
    if rules is not None:
        try:
            candidate = load_config(config, rules_file=rules)
        except ConfigError as e:
            for issue in e.issues:
                typer.echo(str(issue), err=True)
            fail(f"{len(e.issues)} problem(s) in {rules}")

    def progress(share: float, incidents: int) -> None:
        typer.echo(f"replayed {share:.0%} of the window, {incidents} incidents so far", err=True)

    try:
        doc = run_replay(cfg, prometheus_client(cfg), start, end, candidate, progress, keep)
    except IntegrationError as e:
        fail(f"cannot read history: {e}")
    if json:
        emit_json(doc)
        return
    from agent.shell.replay.report import summary

    typer.echo(summary(doc))
