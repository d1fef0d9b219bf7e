"""`aiops audit`: who did what to which record, and when (every person's write and the agent's own
decisions, and the configuration each agent started with)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, open_store, since_option
from agent.cli.output import emit_json, table, when
from agent.shell import views


def audit(
    since: Annotated[str, typer.Option("--since", help="How far back (1d, 12h).")] = "1d",
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor, e.g. cli:alice or agent.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only this action or its kind, e.g. silence or change.approve."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many rows.")] = 1000,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """The audit trail, newest first."""
    span = since_option(since)
    rows = open_store(config, store).audit.list(limit, datetime.now(UTC) - span, actor, action)
    docs = [views.audit_view(r) for r in rows]
    if json:
        emit_json(docs)
        return
    if not docs:
        typer.echo(f"no audit entries in the last {since}")
        return
    typer.echo(
        table(
            ["at", "actor", "action", "target", "details"],
            [[when(d["at"]), d["actor"], d["action"], d["target"], _details(d["details"])] for d in docs],
        )
    )


def _details(details: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items() if v not in ("", None, [], {}))
