"""`aiops report`: the KPIs of a period, for the team's service review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, open_store, since_option
from agent.cli.output import emit_json, table, when
from agent.core.kpis import Rate, Report, compute
from agent.durations import format_duration

SinceOpt = Annotated[
    str,
    typer.Option("--since", help="How far back: incidents opened and changes created since then (7d, 24h)."),
]


def report(
    since: SinceOpt = "7d",
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """KPIs: MTTD, MTTA, MTTR, auto-remediation rate and success, change success, SLA compliance, repeats."""
    span = since_option(since)
    until = datetime.now(UTC)
    db = open_store(config, store)
    start = until - span
    kpis = compute(
        db.incidents.opened_between(start, until), db.changes.created_between(start, until), start, until
    )
    if json:
        emit_json(kpis.to_json())
        return
    typer.echo(_render(kpis, since))


def _render(k: Report, since: str) -> str:
    priorities = ", ".join(f"{p} {n}" for p, n in k.by_priority.items()) or "none"
    rows: list[list[Any]] = [
        ["incidents", k.incidents, f"{k.resolved} resolved, {k.open} active; {priorities}"],
        ["MTTD", _duration(k.mttd_s), "first anomalous sample -> incident opened"],
        ["MTTA", _duration(k.mtta_s), "opened -> acknowledged by a person"],
        ["MTTR", _duration(k.mttr_s), "first anomalous sample -> resolved"],
        ["auto-remediation rate", _rate(k.auto_remediation), "incidents the agent ran a standard change on"],
        ["auto-remediation success", _rate(k.auto_remediation_success), "of those, fixed and verified"],
        ["change success rate", _rate(k.change_success), "executed changes that succeeded"],
        ["SLA: acknowledge", _rate(k.ack_sla), "met the acknowledge target"],
        ["SLA: resolve", _rate(k.resolve_sla), "met the resolve target"],
        ["repeat incidents", _rate(k.repeat_incidents), "signature seen earlier in the period"],
    ]
    out = [
        f"KPIs for the last {since}: {when(k.since)} .. {when(k.until)}",
        "",
        table(["kpi", "value", "what"], rows),
    ]
    if k.changes_by_status:
        out += ["", "changes: " + ", ".join(f"{s} {n}" for s, n in k.changes_by_status.items())]
    if k.top_repeats:
        out += ["", "most repeated:"] + [f"  {n} x {sig}" for sig, n in k.top_repeats]
    return "\n".join(out)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(timedelta(seconds=seconds))


def _rate(r: Rate) -> str:
    return "-" if r.value is None else f"{r.value:.0%} ({r.part}/{r.whole})"
