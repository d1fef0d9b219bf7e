"""The inbox: events for the leader, written by anyone in the same transaction as what caused them.

Alertmanager's webhook (on any replica), a person's approval or acknowledgement (API or CLI) and the
remediation executor's progress all become inbox rows; the leader applies them in order and deletes
each in the transaction that records what it caused, so each is applied exactly once, whichever
replica took it and whatever crashed in between.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlmodel import col

from agent.core.domain import ChangeKind, ChangeStatus, Priority
from agent.core.events import (
    Acknowledge,
    AlertsReceived,
    ChangeDecided,
    ChangeProgress,
    ChangeRequested,
    CloseIncident,
    Event,
)
from agent.core.records import ChangeBase, ReviewBase
from agent.shell.store.engine import writing
from agent.shell.store.tables import InboxItem
from integrations.alertmanager import ExternalAlert

InboxEvent = AlertsReceived | Acknowledge | ChangeDecided | ChangeProgress | ChangeRequested | CloseIncident


def _alert(a: ExternalAlert) -> dict[str, Any]:
    return {
        "name": a.name,
        "status": a.status,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "starts_at": a.starts_at.isoformat(),
        "ends_at": a.ends_at.isoformat() if a.ends_at else None,
        "generator_url": a.generator_url,
    }


def _external(d: dict[str, Any]) -> ExternalAlert:
    return ExternalAlert(
        name=d["name"],
        status=d["status"],
        labels=d["labels"],
        annotations=d["annotations"],
        starts_at=datetime.fromisoformat(d["starts_at"]),
        ends_at=datetime.fromisoformat(d["ends_at"]) if d["ends_at"] else None,
        generator_url=d["generator_url"],
    )


def encode(event: InboxEvent) -> tuple[str, str, dict[str, Any]]:
    """(kind, actor, payload) of an inbox row."""
    if isinstance(event, AlertsReceived):
        return "alerts", event.actor, {"alerts": [_alert(a) for a in event.alerts]}
    if isinstance(event, Acknowledge):
        return "acknowledge", event.actor, {"incident_id": event.incident_id, "note": event.note}
    if isinstance(event, ChangeDecided):
        return "change_decided", event.actor, {"change_id": event.change_id, "approved": event.approved}
    if isinstance(event, CloseIncident):
        review = event.review.model_dump(mode="json") if event.review is not None else None
        payload = {"incident_id": event.incident_id, "priority": event.priority.value, "review": review}
        return "close_incident", event.actor, payload
    if isinstance(event, ChangeRequested):
        origin = event.origin.model_dump(mode="json")
        payload = {
            "kind": event.kind.value,
            "origin_id": event.origin_id,
            "origin": origin,
            "note": event.note,
        }
        return "change_requested", event.actor, payload
    return (
        "change_progress",
        "agent",
        {
            "change_id": event.change_id,
            "incident_id": event.incident_id,
            "kind": event.kind,
            "at": event.at.isoformat(),
            "reason": event.reason,
            "status": event.status.value,
            "outcome": event.outcome,
            "summary": event.summary,
            "data": dict(event.data),
        },
    )


_DECODERS: dict[str, Callable[[InboxItem], Event]] = {
    "alerts": lambda r: AlertsReceived([_external(a) for a in r.payload["alerts"]], r.actor, inbox_id=r.id),
    "acknowledge": lambda r: Acknowledge(r.payload["incident_id"], r.actor, r.payload["note"], inbox_id=r.id),
    "change_decided": lambda r: ChangeDecided(
        r.payload["change_id"], r.payload["approved"], r.actor, inbox_id=r.id
    ),
    "close_incident": lambda r: CloseIncident(
        r.payload["incident_id"],
        r.actor,
        Priority(r.payload["priority"]),
        ReviewBase.model_validate(r.payload["review"]) if r.payload["review"] is not None else None,
        inbox_id=r.id,
    ),
    "change_requested": lambda r: ChangeRequested(
        ChangeKind(r.payload["kind"]),
        r.payload["origin_id"],
        ChangeBase.model_validate(r.payload["origin"]),
        r.actor,
        r.payload["note"],
        inbox_id=r.id,
    ),
    "change_progress": lambda r: ChangeProgress(
        change_id=r.payload["change_id"],
        incident_id=r.payload["incident_id"],
        kind=r.payload["kind"],
        at=datetime.fromisoformat(r.payload["at"]),
        reason=r.payload["reason"],
        status=ChangeStatus(r.payload["status"]),
        outcome=r.payload["outcome"],
        summary=r.payload["summary"],
        data=r.payload["data"],
        inbox_id=r.id,
    ),
}


def decode(row: InboxItem) -> Event:
    return _DECODERS[row.kind](row)


def put(conn: Connection, event: InboxEvent, at: datetime) -> int:
    """Add `event` inside the caller's transaction; returns its row id."""
    kind, actor, payload = encode(event)
    result = conn.execute(
        insert(InboxItem)
        .values(kind=kind, actor=actor, payload=payload, created_at=at)
        .returning(col(InboxItem.id))
    )
    return int(result.scalar_one() or 0)


def consume(conn: Connection, ids: builtins.list[int]) -> None:
    if ids:
        conn.execute(delete(InboxItem).where(col(InboxItem.id).in_(ids)))


class InboxRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def put(self, event: InboxEvent, at: datetime) -> int:
        with writing(self.engine) as conn:
            return put(conn, event, at)

    def pending(self, limit: int = 100) -> builtins.list[InboxItem]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(InboxItem).order_by(col(InboxItem.id)).limit(limit)).all()
        return [InboxItem.model_validate(r._mapping) for r in rows]

    def contains(self, item_id: int) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(func.count()).where(col(InboxItem.id) == item_id)).scalar())
