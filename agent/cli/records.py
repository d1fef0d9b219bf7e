"""`aiops incidents|changes|problems`: review what the agent saw and did, approve or reject changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.common import DEFAULT_CONFIG, ConfigOpt, JsonOpt, StoreOpt, acting_user, fail, load, open_store
from agent.cli.output import emit_json, table, when
from agent.core.domain import ChangeKind, ChangeStatus, IncidentStatus
from agent.errors import InvalidTransition, NotFound
from agent.shell import controls, views
from agent.shell.store.known_errors import PROBLEM_STATUSES

incidents = typer.Typer(help="Incidents the agent opened, newest first.", no_args_is_help=True)
changes = typer.Typer(help="Remediation changes and their approval.", no_args_is_help=True)
problems = typer.Typer(
    help="Problem candidates (recurring and co-occurring incident patterns) and the problems people take on.",
    no_args_is_help=True,
)


def _status(values: Iterable[str]) -> Any:
    """A --status option that accepts only `values` (a typo would otherwise just list nothing)."""
    allowed = list(values)

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not a status; one of: {', '.join(allowed)}")
        return value

    return typer.Option(
        "--status", callback=check, help=f"Only records with this status: {', '.join(allowed)}."
    )


IncidentStatusOpt = Annotated[str | None, _status(IncidentStatus)]
ChangeStatusOpt = Annotated[str | None, _status(ChangeStatus)]
ProblemStatusOpt = Annotated[str | None, _status(PROBLEM_STATUSES)]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=10000, help="At most this many rows.")]


@incidents.command("list")
def incidents_list(
    status: IncidentStatusOpt = None,
    limit: LimitOpt = 50,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """List incidents, newest first."""
    rows = [
        views.incident_summary(i)
        for i in open_store(config, store).incidents.list(status=status, limit=limit)
    ]
    if json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no incidents" + (f" with status {status}" if status else ""))
        return
    typer.echo(
        table(
            ["id", "pri", "status", "service", "opened", "title"],
            [
                [
                    r["id"],
                    r["priority"],
                    r["status"] + (" !" if r["escalated"] else ""),
                    r["service"],
                    when(r["opened_at"]),
                    r["title"],
                ]
                for r in rows
            ],
        )
    )


@incidents.command("show")
def incidents_show(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """One incident with its signals, timeline, changes and runbook runs."""
    try:
        doc = views.incident_detail(open_store(config, store), incident_id, _dependencies(config))
    except NotFound as e:
        fail(str(e))
    if json:
        emit_json(doc)
        return
    typer.echo(_render_incident(doc))


def _dependencies(config: Path) -> list[tuple[str, str]]:
    """services.yaml's (caller, callee) pairs for the root-cause ranking; none without a config."""
    if not config.exists():
        return []
    return [(s.name, d) for s in load(config).services.services for d in s.depends_on]


def _render_incident(d: dict[str, Any]) -> str:
    out = [
        f"Incident #{d['id']}: {d['title']}",
        f"  service {d['service']}   priority {d['priority']} (impact {d['impact']}, urgency {d['urgency']})   "
        f"status {d['status']}{'   ESCALATED' if d['escalated'] else ''}",
        f"  started {when(d['started_at'])}   opened {when(d['opened_at'])}   resolved {when(d['resolved_at'])}",
        f"  SLA: acknowledge by {when(d['sla']['acknowledge_by'])}{' (missed)' if d['sla']['acknowledge_breached'] else ''}, "
        f"resolve by {when(d['sla']['resolve_by'])}{' (missed)' if d['sla']['resolve_breached'] else ''}",
    ]
    if d["resolution"]:
        out.append(f"  resolution: {d['resolution']}")
    if d["problem_id"]:
        out.append(f"  problem candidate #{d['problem_id']}")
    known = d.get("known_error")
    if known:
        out.append(f"  known error #{known['id']}: {known['title']}")
        out.append(f"    workaround: {known['workaround']}")
        if known["workaround_runbook"]:
            out.append(f"    workaround runbook: {known['workaround_runbook']}")
    out += ["", "Signals:"]
    out.append(
        table(
            [
                "signal",
                "labels",
                "detector",
                "severity",
                "count",
                "peak",
                "last value",
                "expected",
                "cleared",
            ],
            [
                [
                    s["name"],
                    ",".join(f"{k}={v}" for k, v in sorted(s["labels"].items())),
                    s["detector"],
                    s["severity"],
                    s["count"],
                    f"{s['peak_score']:.2f}",
                    f"{s['last_value']:.4g}",
                    "-" if s["expected"] is None else f"{s['expected']:.4g}",
                    when(s["cleared_at"]),
                ]
                for s in d["signals"]
            ],
        )
    )
    if d["signals_dropped"]:
        out.append(
            f"  ... and {d['signals_dropped']} more signal(s) beyond correlation.max_signals, counted only"
        )
    for sig in d["signals"]:
        ev = sig.get("evidence") or {}
        if ev.get("template"):
            out.append(f"  {sig['name']}: template `{ev['template']}` ({ev.get('count', '?')} lines)")
            out += [f"    > {line[:200]}" for line in ev.get("samples", [])]
    if d.get("root_causes"):
        out += ["", "Root-cause candidates (best first):"]
        for i, c in enumerate(d["root_causes"], start=1):
            out.append(f"  {i}. {c['service']} (score {c['score']:.2f}): {'; '.join(c['reasons'])}")
    out += ["", "Timeline:"]
    out += [f"  {when(e['at'])}  {e['kind']:<20} {e['actor']:<8} {e['reason']}" for e in d["timeline"]]
    for c in d["changes"]:
        out += [
            "",
            f"Change #{c['id']}: runbook {c['runbook']} ({c['change_type']}, risk {c['risk']}) - {c['status']}",
        ]
        out.append(f"  rule {c['rule']}; params {c['params']}")
        out.append(f"  decided by {c['decided_by'] or '-'} at {when(c['decided_at'])}")
        if c["verification"]["promql"]:
            out.append(
                f"  verify `{c['verification']['promql']}` within {c['verification']['deadline_s']:g}s: "
                f"{c['verification']['result'] or '-'}"
            )
        if c["outcome"]:
            out.append(f"  outcome: {c['outcome']}")
        for r in c["runs"]:
            dur = "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
            out.append(f"  run #{r['id']} ({r['kind']}): {r['status']} rc={r['rc']} in {dur}")
            out += [f"    | {line}" for line in (r["stdout"] or "").splitlines()]
    return "\n".join(out)


@changes.command("list")
def changes_list(
    status: ChangeStatusOpt = None,
    limit: LimitOpt = 50,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """List remediation changes, newest first."""
    rows = [views.change_view(c) for c in open_store(config, store).changes.list(status=status, limit=limit)]
    if json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no changes" + (f" with status {status}" if status else ""))
        return
    typer.echo(
        table(
            ["id", "incident", "status", "type", "runbook", "rule", "created", "decided by"],
            [
                [
                    r["id"],
                    r["incident_id"],
                    r["status"],
                    r["change_type"],
                    r["runbook"],
                    r["rule"],
                    when(r["created_at"]),
                    r["decided_by"],
                ]
                for r in rows
            ],
        )
    )


def _decide(change_id: int, approve: bool, note: str, config: Any, store: str | None, json: bool) -> None:
    who = acting_user(config, store)
    s = open_store(config, store)
    try:
        change = s.changes.decide(change_id, approve, who, datetime.now(UTC), note)
    except (NotFound, InvalidTransition) as e:
        fail(str(e))
    if json:
        emit_json(views.change_view(change))
    else:
        if change.reviewed_by == who:
            typer.echo(f"emergency change #{change_id} {change.review} in retrospective review")
        else:
            verb = "approved: the agent runs it within one housekeeping interval" if approve else "rejected"
            typer.echo(f"change #{change_id} {verb}")


NoteOpt = Annotated[str, typer.Option("--note", help="Why; kept in the timeline and audit log.")]


@changes.command("approve")
def changes_approve(
    change_id: int,
    note: NoteOpt = "",
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Approve a change that awaits approval (or, after it ran, an emergency change in review)."""
    _decide(change_id, True, note, config, store, json)


@changes.command("reject")
def changes_reject(
    change_id: int,
    note: NoteOpt = "",
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Reject a change that awaits approval (or, after it ran, an emergency change in review)."""
    _decide(change_id, False, note, config, store, json)


WaitOpt = Annotated[
    float, typer.Option("--wait", min=0, max=600, help="Seconds to wait for the running agent to act on it.")
]


def _request(
    change_id: int, kind: ChangeKind, note: str, wait: float, config: Any, store: str | None, json: bool
) -> None:
    who = acting_user(config, store)
    s = open_store(config, store)
    try:
        made, refused = controls.request_change(s, change_id, kind, who, note, datetime.now(UTC), wait)
    except (NotFound, InvalidTransition) as e:
        fail(str(e))
    if refused:
        fail(refused)
    if json:
        emit_json(views.change_view(made) if made is not None else {"requested": kind.value, "change": None})
    elif made is not None:
        typer.echo(f"change #{made.id} created: {kind} of change #{change_id} ({made.status})")
    else:
        typer.echo(
            f"{kind} of change #{change_id} requested: no agent answered within {wait:g}s; it acts when one leads"
        )


def _request_command(kind: ChangeKind, doc: str) -> Callable[..., None]:
    def command(
        change_id: int,
        note: NoteOpt = "",
        wait: WaitOpt = 15,
        json: JsonOpt = False,
        config: ConfigOpt = DEFAULT_CONFIG,
        store: StoreOpt = None,
    ) -> None:
        _request(change_id, kind, note, wait, config, store, json)

    command.__doc__ = doc
    return command


changes.command("retry")(
    _request_command(
        ChangeKind.RETRY,
        "Run a finished change again, as a new change linked to it (you approve it by asking).",
    )
)
changes.command("rollback")(
    _request_command(
        ChangeKind.ROLLBACK,
        "Run the catalog's rollback playbook of a change that ran, as a new change linked to it.",
    )
)


@problems.command("list")
def problems_list(
    status: ProblemStatusOpt = None,
    json: JsonOpt = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    store: StoreOpt = None,
) -> None:
    """Problem candidates and problems, costliest first (cost: priority-weighted hours open, failed and
    manual changes, SLA breaches; trend: this week's incidents against the four weeks before)."""
    rows = views.ranked_problems(open_store(config, store), datetime.now(UTC), status)
    if json:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no problems")
        return
    typer.echo(
        table(
            ["id", "kind", "status", "cost", "trend", "occurrences", "services", "last seen", "title"],
            [
                [
                    r["id"],
                    r["kind"],
                    r["status"],
                    f"{r['cost']['total']:.1f}",
                    r["trend"]["label"],
                    r["occurrences"],
                    ", ".join(r["services"]) or r["service"],
                    when(r["last_seen"]),
                    r["title"],
                ]
                for r in rows
            ],
        )
    )


@problems.command("show")
def problems_show(
    problem_id: int, json: JsonOpt = False, config: ConfigOpt = DEFAULT_CONFIG, store: StoreOpt = None
) -> None:
    """One problem with the incidents linked to it."""
    try:
        doc = views.problem_detail(open_store(config, store), problem_id, datetime.now(UTC))
    except NotFound as e:
        fail(str(e))
    if json:
        emit_json(doc)
        return
    typer.echo(
        f"Problem #{doc['id']} ({doc['kind']}, {doc['status']}): {doc['title']}\n  signature {doc['signature']}, "
        f"{doc['occurrences']} occurrences, first {when(doc['first_seen'])}, last {when(doc['last_seen'])}"
    )
    if doc["kind"] == "cooccurrence":
        typer.echo(
            f"  services {', '.join(doc['services'])}: {doc['expected']:.3g} co-occurrences expected by "
            f"chance, lift {doc['lift']:.1f}, p-value {doc['p_value']:.2e}"
        )
    cost, trend = doc["cost"], doc["trend"]
    typer.echo(
        f"  cost {cost['total']:.1f}: {cost['open_hours']:.1f} priority-weighted hours open, "
        f"{cost['failed_changes']} failed and {cost['manual_changes']} manual changes, "
        f"{cost['sla_breaches']} SLA breaches"
    )
    typer.echo(
        f"  trend {trend['label']}: {trend['this_week']} incidents this week, "
        f"{trend['weekly_mean']:.2f} a week over the four before"
    )
    if doc["owner"]:
        typer.echo(f"  owner {doc['owner']}")
    for label, key in (("root cause", "root_cause"), ("workaround", "workaround")):
        if doc[key]:
            typer.echo(f"  {label}: {doc[key]}")
    if doc["known_error_id"] is not None:
        typer.echo(
            f"  known error #{doc['known_error_id']} (aiops known-errors show {doc['known_error_id']})"
        )
    typer.echo("")
    typer.echo(
        table(
            ["incident", "pri", "status", "opened", "resolution"],
            [
                [i["id"], i["priority"], i["status"], when(i["opened_at"]), i["resolution"]]
                for i in doc["incidents"]
            ],
        )
    )
