"""The end of incidents' lives: a person's request to close one (through the leader's inbox, since the
core may still hold it and could otherwise reopen it), post-incident reviews, and the leader's sweep
that closes incidents resolved long ago (longer than the core holds them, see `incidents.auto_close`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from agent.core.domain import Actor, IncidentStatus, Priority
from agent.core.events import CloseIncident
from agent.core.records import ReviewBase
from agent.errors import InvalidTransition, NotFound
from agent.shell.store import inbox, journal
from agent.shell.store.engine import writing
from agent.shell.store.fence import Fence
from agent.shell.store.tables import Incident, Review

AGENT = Actor.AGENT.value


class ClosingRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def request(
        self,
        incident_id: int,
        actor: str,
        at: datetime,
        review: ReviewBase | None,
        review_required: Collection[Priority],
    ) -> int:
        """Checked against the store now (NotFound; InvalidTransition when it is not resolved or needs a
        review it was not given), then put in the leader's inbox; returns the inbox item."""
        with Session(self.engine) as s:
            row = s.get(Incident, incident_id)
            if row is None:
                raise NotFound(f"no incident {incident_id}")
        status, priority = IncidentStatus(row.status), Priority(row.priority)
        if status is not IncidentStatus.RESOLVED:
            raise InvalidTransition(f"incident {incident_id} is {status}; only a resolved incident is closed")
        if review is None and priority in review_required:
            raise InvalidTransition(
                f"incident {incident_id} is {priority}: it needs a post-incident review to be closed (--review FILE)"
            )
        with writing(self.engine) as conn:
            return inbox.put(conn, CloseIncident(incident_id, actor, priority, review), at)

    def review(self, incident_id: int) -> Review | None:
        with Session(self.engine) as s:
            return s.exec(select(Review).where(col(Review.incident_id) == incident_id)).first()

    def auto_close(
        self,
        now: datetime,
        after: datetime,
        review_required: Collection[Priority],
        fence: Fence | None,
        reason: str = "closed: resolved long enough ago",
    ) -> list[int]:
        """Close incidents resolved before `after` that need no review (or have one): one transaction,
        each with its timeline entry and audit line; returns their ids."""
        needs = [p.value for p in review_required]
        reviewed = select(Review.incident_id)
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            ids = [
                int(i)
                for i in conn.execute(
                    update(Incident)
                    .where(
                        col(Incident.status) == IncidentStatus.RESOLVED.value,
                        col(Incident.resolved_at) < after,
                        col(Incident.priority).not_in(needs) | col(Incident.id).in_(reviewed),
                    )
                    .values(
                        status=IncidentStatus.CLOSED.value, closed_at=now, closed_by=AGENT, updated_at=now
                    )
                    .returning(col(Incident.id))
                ).scalars()
                if i is not None
            ]
            for incident_id in ids:
                journal.timeline(conn, incident_id, now, "closed", AGENT, reason, {})
                journal.audit(conn, now, AGENT, "incident.close", f"incident:{incident_id}", {"auto": True})
        return sorted(ids)
