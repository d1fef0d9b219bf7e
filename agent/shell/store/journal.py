"""The two records every person's write leaves, inside the caller's transaction: a line in the incident's
timeline and one in the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from agent.shell.store.tables import AuditEntry, IncidentEvent


def timeline(
    conn: Connection, incident_id: int, at: datetime, kind: str, actor: str, reason: str, data: dict[str, Any]
) -> None:
    conn.execute(
        insert(IncidentEvent).values(
            incident_id=incident_id, at=at, kind=kind, actor=actor, reason=reason, data=data
        )
    )


def audit(
    conn: Connection, at: datetime, actor: str, action: str, target: str, details: dict[str, Any]
) -> None:
    conn.execute(insert(AuditEntry).values(at=at, actor=actor, action=action, target=target, details=details))
