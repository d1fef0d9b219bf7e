"""The outbox: notifications written with the decision that caused them, delivered after its commit.

A row per notification and sink; a sink that fails is retried with backoff, each sink on its own, and
a row is given up after MAX_ATTEMPTS (recorded with the last error), never silently lost.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import col

from agent.shell.store.engine import writing
from agent.shell.store.fence import Fence
from agent.shell.store.tables import OutboxItem

MAX_ATTEMPTS = 5


class OutboxRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def due(self, now: datetime, limit: int = 100) -> builtins.list[OutboxItem]:
        """What to send now, oldest first. A sink's notifications go out in order: one waiting for its
        retry holds back the later ones of its sink (a resolve must not overtake its trigger)."""
        earlier = aliased(OutboxItem)
        waiting = (
            select(col(earlier.id))
            .where(
                col(earlier.sink) == col(OutboxItem.sink),
                col(earlier.id) < col(OutboxItem.id),
                col(earlier.delivered_at).is_(None),
                col(earlier.attempts) < MAX_ATTEMPTS,
                col(earlier.due_at) > now,
            )
            .exists()
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(OutboxItem)
                .where(
                    col(OutboxItem.delivered_at).is_(None),
                    col(OutboxItem.attempts) < MAX_ATTEMPTS,
                    col(OutboxItem.due_at) <= now,
                    ~waiting,
                )
                .order_by(col(OutboxItem.id))
                .limit(limit)
            ).all()
        return [OutboxItem.model_validate(r._mapping) for r in rows]

    def told(self, sink: str, events: Collection[str], since: datetime) -> set[int]:
        """The incidents `sink` has had one of `events` about (sent, or queued to be) since `since`."""
        about = col(OutboxItem.payload)["incident_id"].as_integer()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(about)
                .distinct()
                .where(
                    col(OutboxItem.sink) == sink,
                    col(OutboxItem.event).in_(list(events)),
                    col(OutboxItem.due_at) >= since,  # indexed; never before the row was created
                )
            ).all()
        return {int(r[0]) for r in rows if r[0] is not None}

    def pending(self) -> int:
        with self.engine.connect() as conn:
            q = select(func.count()).where(
                col(OutboxItem.delivered_at).is_(None),
                col(OutboxItem.attempts) < MAX_ATTEMPTS,
            )
            return int(conn.execute(q).scalar_one())

    def delivered(self, item_id: int, at: datetime, fence: Fence | None) -> None:
        self._set(item_id, fence, delivered_at=at, attempts=col(OutboxItem.attempts) + 1, error="")

    def failed(self, item_id: int, error: str, retry_at: datetime, fence: Fence | None) -> None:
        self._set(item_id, fence, due_at=retry_at, attempts=col(OutboxItem.attempts) + 1, error=error[:2000])

    def _set(self, item_id: int, fence: Fence | None, **values: object) -> None:
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            conn.execute(update(OutboxItem).where(col(OutboxItem.id) == item_id).values(**values))
