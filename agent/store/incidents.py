"""Persistence of incidents, their signals and timelines."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, SQLModel, col, select

from agent.domain import IncidentStatus, Level, Priority, Severity, TimelineEntry
from agent.errors import NotFound
from agent.incidents import IncidentState, SignalState
from agent.store.tables import Incident, IncidentEvent, SignalRecord

_COPIED = [
    "service",
    "signature",
    "title",
    "started_at",
    "opened_at",
    "updated_at",
    "ack_due_at",
    "resolve_due_at",
    "acknowledged_at",
    "remediation_started_at",
    "resolved_at",
    "ack_breached",
    "resolve_breached",
    "escalated",
    "parent_id",
    "problem_id",
    "resolution",
    "resolved_by",
]
_SIGNAL_COPIED = [
    "name",
    "service",
    "source",
    "detector",
    "labels",
    "first_at",
    "last_at",
    "count",
    "peak_score",
    "last_value",
    "last_expected",
    "last_score",
    "cleared_at",
]


class IncidentRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def save(self, states: Iterable[IncidentState], entries: Iterable[TimelineEntry] = ()) -> None:
        """Write incident snapshots and timeline entries in one transaction: all of a tick, or none of it."""
        with Session(self.engine) as s:
            for st in states:
                fields = {name: getattr(st, name) for name in _COPIED}
                fields |= {
                    "status": st.status.value,
                    "priority": st.priority.value,
                    "impact": st.impact.value,
                    "urgency": st.urgency.value,
                }
                _upsert(s, s.get(Incident, st.id), Incident, {"id": st.id, **fields})
                s.flush()
                existing = {
                    r.fingerprint: r
                    for r in s.exec(select(SignalRecord).where(SignalRecord.incident_id == st.id)).all()
                }
                for sig in st.signals.values():
                    values = {name: getattr(sig, name) for name in _SIGNAL_COPIED}
                    values |= {
                        "labels": dict(sig.labels),
                        "severity": sig.severity.value,
                        "evidence": dict(sig.details),
                    }
                    key = {"incident_id": st.id, "fingerprint": sig.fingerprint}
                    _upsert(s, existing.get(sig.fingerprint), SignalRecord, {**key, **values})
            for e in entries:
                s.add(
                    IncidentEvent(
                        incident_id=e.incident_id,
                        at=e.at,
                        kind=e.kind,
                        actor=e.actor,
                        reason=e.reason,
                        data=dict(e.data),
                    )
                )
            s.commit()

    def add_entries(self, entries: Iterable[TimelineEntry]) -> None:
        self.save((), entries)

    def load_working_set(self, resolved_since: datetime) -> builtins.list[IncidentState]:
        """Active incidents, plus those resolved after `resolved_since` (they may still be reopened)."""
        active = [s.value for s in IncidentStatus if s.active]
        with Session(self.engine) as s:
            rows = s.exec(
                select(Incident).where(
                    or_(
                        col(Incident.status).in_(active),
                        and_(
                            col(Incident.status) == IncidentStatus.RESOLVED.value,
                            col(Incident.resolved_at) >= resolved_since,
                        ),
                    )
                )
            ).all()
            out = []
            for row in rows:
                sigs = s.exec(select(SignalRecord).where(SignalRecord.incident_id == row.id)).all()
                out.append(_to_state(row, sigs))
            return out

    def max_id(self) -> int:
        with Session(self.engine) as s:
            return int(s.exec(select(func.max(Incident.id))).one() or 0)

    def get(self, incident_id: int) -> Incident:
        with Session(self.engine) as s:
            row = s.get(Incident, incident_id)
            if row is None:
                raise NotFound(f"no incident {incident_id}")
            return row

    def list(self, status: str | None = None, limit: int = 100, offset: int = 0) -> builtins.list[Incident]:
        with Session(self.engine) as s:
            q = select(Incident)
            if status:
                q = q.where(Incident.status == status)
            q = (
                q.order_by(col(Incident.opened_at).desc(), col(Incident.id).desc())
                .offset(offset)
                .limit(limit)
            )
            return list(s.exec(q).all())

    def opened_between(self, since: datetime, until: datetime) -> builtins.list[Incident]:
        with Session(self.engine) as s:
            q = select(Incident).where(col(Incident.opened_at) >= since, col(Incident.opened_at) <= until)
            return list(s.exec(q.order_by(col(Incident.opened_at), col(Incident.id))).all())

    def signals(self, incident_id: int) -> builtins.list[SignalRecord]:
        with Session(self.engine) as s:
            q = (
                select(SignalRecord)
                .where(SignalRecord.incident_id == incident_id)
                .order_by(col(SignalRecord.first_at))
            )
            return list(s.exec(q).all())

    def timeline(self, incident_id: int) -> builtins.list[IncidentEvent]:
        with Session(self.engine) as s:
            q = (
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(col(IncidentEvent.id))
            )
            return list(s.exec(q).all())

    def count_by_signature(self, signature: str, since: datetime) -> builtins.list[Incident]:
        with Session(self.engine) as s:
            q = select(Incident).where(Incident.signature == signature, col(Incident.opened_at) >= since)
            return list(s.exec(q.order_by(col(Incident.opened_at))).all())

    def count_active_by_priority(self) -> dict[str, int]:
        active = [s.value for s in IncidentStatus if s.active]
        with Session(self.engine) as s:
            q = (
                select(Incident.priority, func.count())
                .where(col(Incident.status).in_(active))
                .group_by(Incident.priority)
            )
            return {p: int(n) for p, n in s.exec(q).all()}


def _upsert(s: Session, row: SQLModel | None, model: type[SQLModel], values: dict[str, Any]) -> None:
    if row is None:
        s.add(model(**values))
        return
    for name, value in values.items():
        setattr(row, name, value)
    s.add(row)


def _to_state(row: Incident, sigs: Iterable[SignalRecord]) -> IncidentState:
    st = IncidentState(
        id=row.id,
        status=IncidentStatus(row.status),
        priority=Priority(row.priority),
        impact=Level(row.impact),
        urgency=Level(row.urgency),
        **{name: getattr(row, name) for name in _COPIED},
    )
    for r in sigs:
        st.signals[r.fingerprint] = SignalState(
            fingerprint=r.fingerprint,
            severity=Severity(r.severity),
            details=dict(r.evidence or {}),
            **{name: getattr(r, name) for name in _SIGNAL_COPIED},
        )
    return st
