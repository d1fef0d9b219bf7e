"""Reading incidents, their signals and timelines; loading the core's working set."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, col, select

from agent.core.domain import IncidentStatus
from agent.core.incidents import IncidentState, SignalState
from agent.core.problems import Opening
from agent.core.records import IncidentBase, SignalBase
from agent.errors import NotFound
from agent.shell.store.search import contains
from agent.shell.store.tables import Incident, IncidentEvent, SignalRecord

INCIDENT_FIELDS = list(IncidentBase.model_fields)
SIGNAL_FIELDS = list(SignalBase.model_fields)
ACTIVE = [s.value for s in IncidentStatus if s.active]
T = TypeVar("T")


class IncidentRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, incident_id: int) -> Incident:
        with Session(self.engine) as s:
            row = s.get(Incident, incident_id)
            if row is None:
                raise NotFound(f"no incident {incident_id}")
            return row

    def list(
        self,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        priority: str | None = None,
        service: str | None = None,
        search: str | None = None,
    ) -> builtins.list[Incident]:
        """Newest first; `search` is part of the title, service or signature, in any case."""
        with Session(self.engine) as s:
            q = select(Incident)
            if status:
                q = q.where(Incident.status == status)
            if priority:
                q = q.where(Incident.priority == priority)
            if service:
                q = q.where(Incident.service == service)
            if search:
                q = q.where(contains(search, Incident.title, Incident.service, Incident.signature))
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

    def of_known_error(self, known_error_id: int, limit: int = 1000) -> builtins.list[Incident]:
        """The incidents linked to a known error when they opened, newest first."""
        with Session(self.engine) as s:
            q = select(Incident).where(col(Incident.known_error_id) == known_error_id)
            return list(s.exec(q.order_by(col(Incident.opened_at).desc()).limit(limit)).all())

    def openings_of(
        self, signatures: Collection[str], since: datetime
    ) -> builtins.list[tuple[str, datetime]]:
        """(signature, opened_at) of the incidents of `signatures` opened since `since`."""
        if not signatures:
            return []
        with Session(self.engine) as s:
            q = select(Incident.signature, Incident.opened_at).where(
                col(Incident.signature).in_(sorted(signatures)), col(Incident.opened_at) >= since
            )
            return [(sig, at) for sig, at in s.exec(q).all()]

    def signals(self, incident_id: int) -> builtins.list[SignalRecord]:
        with Session(self.engine) as s:
            q = (
                select(SignalRecord)
                .where(SignalRecord.incident_id == incident_id)
                .order_by(col(SignalRecord.first_at), col(SignalRecord.id))
            )
            return list(s.exec(q).all())

    def children(self, incident_id: int) -> builtins.list[Incident]:
        """Incidents linked under this one by the topology (downstream symptoms of its cause)."""
        with Session(self.engine) as s:
            q = select(Incident).where(Incident.parent_id == incident_id).order_by(col(Incident.id))
            return list(s.exec(q).all())

    def timeline(self, incident_id: int) -> builtins.list[IncidentEvent]:
        with Session(self.engine) as s:
            q = (
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(col(IncidentEvent.id))
            )
            return list(s.exec(q).all())

    def count_active_by_priority(self) -> dict[str, int]:
        with Session(self.engine) as s:
            q = (
                select(Incident.priority, func.count())
                .where(col(Incident.status).in_(ACTIVE))
                .group_by(Incident.priority)
            )
            return {str(p): int(n) for p, n in s.exec(q).all()}

    # ------------------------------------------------------------------ the core's working set

    def working_set(self, resolved_since: datetime) -> builtins.list[IncidentState]:
        """Active incidents, plus those resolved after `resolved_since` (they may still be reopened),
        with their signals: two indexed queries (and one per thousand incidents), not one per incident."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(Incident).where(
                    or_(
                        col(Incident.status).in_(ACTIVE),
                        and_(
                            col(Incident.status) == IncidentStatus.RESOLVED.value,
                            col(Incident.resolved_at) >= resolved_since,
                        ),
                    )
                )
            ).all()
            states = {row.id: _state(row) for row in rows if row.id is not None}
            for chunk in _chunks(list(states), 1000):
                for r in s.exec(select(SignalRecord).where(col(SignalRecord.incident_id).in_(chunk))).all():
                    states[r.incident_id].signals[r.fingerprint] = SignalState(
                        **{name: getattr(r, name) for name in SIGNAL_FIELDS}
                    )
            return list(states.values())

    def openings(self, since: datetime) -> builtins.list[Opening]:
        """The incidents opened since `since`, for problem candidates (recurrence, co-occurrence)."""
        with Session(self.engine) as s:
            q = select(Incident.signature, Incident.service, Incident.opened_at, Incident.id).where(
                col(Incident.opened_at) >= since
            )
            return [Opening(sig, svc, at, int(i)) for sig, svc, at, i in s.exec(q).all() if i is not None]


def _state(row: Incident) -> IncidentState:
    fields: dict[str, Any] = {name: getattr(row, name) for name in INCIDENT_FIELDS}
    return IncidentState(id=row.id, **fields)


def _chunks(items: builtins.list[T], n: int) -> Iterator[builtins.list[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def incident_row(inc: IncidentState) -> dict[str, Any]:
    """The column values of an incident the core holds."""
    return {name: getattr(inc, name) for name in INCIDENT_FIELDS}


def signal_row(sig: SignalState) -> dict[str, Any]:
    return {name: getattr(sig, name) for name in SIGNAL_FIELDS}
