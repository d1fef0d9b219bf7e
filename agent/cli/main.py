"""Entry point of the `aiops` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

import detectors
from agent import __version__
from agent.cli import closing  # noqa: F401  (registers `aiops incidents close`)
from agent.cli.audit import audit
from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, fail, load, setup_logging
from agent.cli.envelope import automation, silences
from agent.cli.known_errors import known_errors
from agent.cli.logs import logs
from agent.cli.rca import rca
from agent.cli.records import changes, incidents, problems
from agent.cli.replay import replay
from agent.cli.report import report
from agent.config import load_config
from agent.errors import AiopsError, ConfigError
from agent.offline import CsvFormatError, detect_files, disorder_warning

app = typer.Typer(
    name="aiops",
    help="Monitoring-driven AIOps and self-healing agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(incidents, name="incidents")
app.add_typer(changes, name="changes")
app.add_typer(problems, name="problems")
app.add_typer(known_errors, name="known-errors")
app.add_typer(logs, name="logs")
app.add_typer(silences, name="silences")
app.add_typer(automation, name="automation")
app.command("report")(report)
app.command("audit")(audit)
app.command("replay")(replay)
app.command("rca")(rca)


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    log_level: Annotated[str | None, typer.Option("--log-level", help="debug|info|warning|error")] = None,
) -> None:
    """Run the agent: polling, detection, incidents, remediation and the API, until SIGTERM."""
    from agent.shell.app import AgentApp

    cfg = load(config)
    setup_logging(log_level or cfg.agent.log_level)
    try:
        AgentApp(cfg).run_forever()
    except AiopsError as e:
        fail(str(e))


@app.command("check-config")
def check_config(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Validate agent.yaml and every file it references; exit 1 listing each problem as file:line: field: message."""
    try:
        cfg = load_config(config)
    except ConfigError as e:
        for issue in e.issues:
            typer.echo(str(issue))
        typer.echo(f"{len(e.issues)} problem(s) found", err=True)
        raise typer.Exit(1) from None
    a = cfg.agent
    typer.echo(
        f"config OK: {len(a.queries)} queries, {len(cfg.services.services)} services, {len(cfg.rules)} rules, "
        f"{len(cfg.catalog.runbooks)} runbooks; dry_run={'on' if a.dry_run else 'OFF'}"
    )


@app.command()
def detect(
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV files with a `timestamp,value` header.", exists=True, dir_okay=False),
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the scored copies (same file names).")],
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector profile from the config, or a detector kind.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse a file whose timestamps go backwards instead of warning.")
    ] = False,
) -> None:
    """Offline: score each CSV through a detector, writing timestamp,value,anomaly_score to OUT/<name>.

    Rows are scored in file order; rows whose timestamp is out of order or repeated are counted in one
    warning (with --strict, a timestamp that goes backwards is an error)."""
    agent = load(config).agent if config.exists() else None
    profiles = agent.detectors if agent is not None else {}
    budget = agent.detection.false_alarm_budget if agent is not None else None
    name = detector or "default"
    if name in profiles:
        kind, params = profiles[name].kind, dict(profiles[name].params)
    elif name in detectors.REGISTRY or name == "default":
        kind, params = (detectors.DEFAULT_KIND if name == "default" else name), {}
    else:
        known = sorted(set(profiles) | set(detectors.REGISTRY))
        fail(f"unknown detector {name!r} (profiles and kinds: {', '.join(known)})")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        fail("two input files share a name; their outputs would overwrite each other in --out")
    started = time.perf_counter()
    typer.echo(f"scoring {len(files)} file(s) with {kind} ...", err=True)
    try:
        streams = detect_files(list(files), out, kind, params, strict=strict, budget=budget)
    except CsvFormatError as e:
        fail(str(e))
    warning = disorder_warning(streams)
    if warning:
        typer.echo(warning, err=True)
    total = sum(len(s.rows) for s in streams)
    took = time.perf_counter() - started
    rate = total / took if took > 0 else float("inf")
    typer.echo(
        f"scored {total} points in {len(files)} file(s) with {kind} in {took:.1f}s ({rate:,.0f}/s) -> {out}",
        err=True,
    )


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
