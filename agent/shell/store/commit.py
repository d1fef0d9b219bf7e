"""Writing one event's decisions: everything in one transaction, only what changed, fenced when leading.

New incidents and changes get their ids from the database here (set on the core's records, and
reset if the transaction fails, so a retry inserts them again); texts that name those ids are
rendered after. A second open change for the same incident and rule is refused by the database
itself (a partial unique index), not by a check that could race.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from agent.core.decisions import Committed, Decisions, NewChange, Notification, ProblemLink
from agent.core.domain import IncidentStatus
from agent.core.incidents import Entry, IncidentState
from agent.shell.store import inbox
from agent.shell.store.engine import writing
from agent.shell.store.fence import Fence
from agent.shell.store.incidents import INCIDENT_FIELDS, incident_row, signal_row
from agent.shell.store.tables import (
    ONE_OPEN_CHANGE,
    AuditEntry,
    Change,
    Incident,
    IncidentEvent,
    OutboxItem,
    Problem,
    ProblemIncident,
    Review,
    SignalRecord,
    SourceState,
)
from agent.shell.store.upsert import upsert

_UPDATE_INCIDENT = (
    update(Incident)
    .where(col(Incident.id) == bindparam("incident_key"))
    .values({name: bindparam(name) for name in INCIDENT_FIELDS})
)


class Committer:
    """`routes` names the sinks subscribed to each notification event (one outbox row per sink)."""

    def __init__(self, engine: Engine, routes: Mapping[str, Sequence[str]], fence: Fence | None = None):
        self.engine = engine
        self.routes = routes
        self.fence = fence

    def commit(self, out: Decisions, seq: int) -> Committed:
        """Raises Fenced (another agent leads), AlreadyCommitted (an earlier attempt with this `seq`
        went through) or a database error (nothing was written; the caller retries)."""
        new_incidents = sorted((i for i in out.incidents.values() if i.id is None), key=lambda i: i.ref)
        try:
            with writing(self.engine) as conn:
                if self.fence is not None:
                    self.fence.claim(conn, seq)
                return self._write(conn, out, new_incidents)
        except BaseException:
            for inc in new_incidents:
                inc.id = None
            for new in out.changes:
                new.id = None
            raise

    def _write(self, conn: Connection, out: Decisions, new_incidents: list[IncidentState]) -> Committed:
        result = Committed()
        for inc in new_incidents:
            inc.id = conn.execute(
                insert(Incident).values(incident_row(inc)).returning(col(Incident.id))
            ).scalar_one()
        for inc in out.incidents.values():
            parent = out.incidents.get(inc.parent_ref) if inc.parent_ref is not None else None
            if inc.parent_id is None and parent is not None:
                inc.parent_id = parent.id
        if out.incidents:
            rows = [{"incident_key": i.id, **incident_row(i)} for i in out.incidents.values()]
            conn.execute(_UPDATE_INCIDENT, rows)
        upsert(
            conn,
            SignalRecord,
            ["incident_id", "fingerprint"],
            [{"incident_id": inc.id, **signal_row(sig)} for inc, sig in out.signals.values()],
        )
        entries = list(out.timeline)
        audit = list(out.audit)
        notifications = list(out.notifications)
        for new in out.changes:
            new.id = self._create_change(conn, new)
            if new.id is not None:
                entries += new.entries
                audit += new.audit
                notifications += new.notifications
        for cancel in out.cancels:
            moved = conn.execute(
                update(Change)
                .where(
                    col(Change.id) == cancel.change_id,
                    col(Change.status).in_([s.value for s in cancel.allowed_from]),
                )
                .values(status="cancelled", finished_at=cancel.entry.at, outcome=cancel.outcome)
            )
            if moved.rowcount == 1:
                result.cancelled.add(cancel.change_id)
                entries.append(cancel.entry)
        for close in out.closes:
            at = close.entry.at
            closed = conn.execute(
                update(Incident)
                .where(
                    col(Incident.id) == close.incident_id,
                    col(Incident.status) == IncidentStatus.RESOLVED.value,
                )
                .values(
                    status=IncidentStatus.CLOSED.value,
                    closed_at=at,
                    closed_by=close.entry.actor,
                    updated_at=at,
                )
            )
            if closed.rowcount == 1:
                entries.append(close.entry)
                audit.append(close.audit)
                if close.review is not None:
                    conn.execute(insert(Review).values(close.review.model_dump()))
        for link in out.problems:
            problem_id = self._link_problem(conn, link)
            result.problems[link.signature] = problem_id
            entries.append(
                Entry(
                    link.note,
                    link.at,
                    "problem",
                    "agent",
                    f"linked to problem candidate #{problem_id}: {link.title}",
                )
            )
        _insert(conn, IncidentEvent, [_entry_row(e) for e in entries])
        _insert(
            conn,
            AuditEntry,
            [
                {
                    "at": a.at,
                    "actor": a.actor,
                    "action": a.action,
                    "target": _text(a.target),
                    "details": a.details,
                }
                for a in audit
            ],
        )
        _insert(conn, OutboxItem, self._outbox_rows(notifications, out.at))
        upsert(
            conn,
            SourceState,
            ["name"],
            [{"name": name, "data": data, "updated_at": out.at} for name, data in out.state.items()],
        )
        inbox.consume(conn, out.inbox)
        return result

    def _create_change(self, conn: Connection, new: NewChange) -> int | None:
        new.record.incident_id = new.incident_id or 0
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(Change)
            .values(new.record.model_dump())
            .on_conflict_do_nothing(index_elements=["incident_id", "rule"], index_where=text(ONE_OPEN_CHANGE))
            .returning(col(Change.id))
        )
        return conn.execute(stmt).scalar_one_or_none()

    def _link_problem(self, conn: Connection, link: ProblemLink) -> int:
        """Create the candidate, or bring an existing one's numbers up to date (one row per signature)."""
        found = conn.execute(
            select(col(Problem.id)).where(col(Problem.signature) == link.signature)
        ).scalar_one_or_none()
        at = link.at
        if found is None:
            found = conn.execute(
                insert(Problem)
                .values(
                    signature=link.signature,
                    kind=link.kind,
                    service=link.service,
                    services=list(link.services or (link.service,)),
                    signatures=list(link.signatures or (link.signature,)),
                    title=link.title,
                    first_seen=at,
                    last_seen=at,
                    created_at=at,
                    updated_at=at,
                )
                .returning(col(Problem.id))
            ).scalar_one()
        problem_id = int(found or 0)
        linked = set(
            conn.execute(
                select(col(ProblemIncident.incident_id)).where(col(ProblemIncident.problem_id) == problem_id)
            ).scalars()
        )
        ids = {i if isinstance(i, int) else i.id for i in link.incidents}
        for incident_id in sorted(i for i in ids if i is not None and i not in linked):
            conn.execute(insert(ProblemIncident).values(problem_id=problem_id, incident_id=incident_id))
            if link.kind == "recurrence":  # an incident's own problem is its signature's
                conn.execute(
                    update(Incident).where(col(Incident.id) == incident_id).values(problem_id=problem_id)
                )
        occurrences = (
            link.count if link.count is not None else len(linked | {i for i in ids if i is not None})
        )
        numbers = {"title": link.title, "expected": link.expected, "lift": link.lift, "p_value": link.p_value}
        conn.execute(
            update(Problem)
            .where(col(Problem.id) == problem_id)
            .values(
                occurrences=occurrences,
                last_seen=at,
                updated_at=at,
                **(numbers if link.kind == "cooccurrence" else {}),
            )
        )
        return problem_id

    def _outbox_rows(self, notifications: list[Notification], at: datetime) -> list[dict[str, Any]]:
        rows = []
        for n in notifications:
            sinks = self.routes.get(n.event, ())
            if not sinks:
                continue
            payload = json.loads(json.dumps({"event": n.event, **n.payload()}, default=str))
            rows += [
                {"sink": sink, "event": n.event, "payload": payload, "created_at": at, "due_at": at}
                for sink in sinks
            ]
        return rows


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), rows)


def _entry_row(e: Entry) -> dict[str, Any]:
    return {
        "incident_id": e.incident_id,
        "at": e.at,
        "kind": e.kind,
        "actor": e.actor,
        "reason": e.text(),
        "data": e.details(),
    }


def _text(value: Any) -> str:
    return str(value()) if callable(value) else str(value)
