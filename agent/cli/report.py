"""`aiops report`: the KPIs of a period, for the team's service review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, open_store, since_option
from agent.cli.output import emit_json, table, when
from agent.core.kpis import Rate, Report, compute
from agent.core.problem_kpis import ProblemReport, Recorded, compute_problems
from agent.durations import format_duration
from agent.shell.store import Store

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
    """KPIs: MTTD, MTTA, MTTR, auto-remediation rate and success, change success, SLA compliance, repeats,
    and problem management (open problems, known errors, incidents they caught, repeats before and after)."""
    span = since_option(since)
    until = datetime.now(UTC)
    db = open_store(config, store)
    start = until - span
    opened = db.incidents.opened_between(start, until)
    kpis = compute(opened, db.changes.created_between(start, until), start, until)
    problems = _problems(db, opened, span, until)
    if json:
        emit_json({**kpis.to_json(), "problems": problems.to_json()})
        return
    typer.echo(_render(kpis, since) + "\n\n" + _render_problems(problems))


def _problems(db: Store, opened: list[Any], span: timedelta, until: datetime) -> ProblemReport:
    known = [
        Recorded(k.id or 0, k.title, tuple(k.signatures or ()) or (k.signature,), k.created_at)
        for k in db.known_errors.list(limit=100_000)
    ]
    oldest = min((k.created_at for k in known), default=until)
    openings = db.incidents.openings_of({s for k in known for s in k.signatures}, oldest - span)
    return compute_problems(db.problems.count_by_status(), known, opened, openings, span, until)


def _render_problems(p: ProblemReport) -> str:
    rows: list[list[Any]] = [
        ["problem candidates", p.candidates, "recurring patterns nobody took on yet"],
        ["open problems", p.open_problems, "promoted, no workaround yet"],
        ["known errors", p.known_errors, "root cause and workaround recorded"],
        ["linked incidents", _rate(p.linked_incidents), "incidents that matched a known error on opening"],
        [
            "repeats before",
            _per_week(p.before.per_week),
            "incidents of known errors' signatures before recording",
        ],
        ["repeats after", _per_week(p.after.per_week), "the same, since they were recorded"],
    ]
    out = ["Problem management:", "", table(["kpi", "value", "what"], rows)]
    for e in p.effects:
        before, after = _per_week(e.before.per_week), _per_week(e.after.per_week)
        out.append(f"  known error #{e.known_error_id} ({e.title}): {before} before, {after} after")
    return "\n".join(out)


def _per_week(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}/week"


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
