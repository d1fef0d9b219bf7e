"""A human's decision on a normal change, recorded the same way from the CLI and the HTTP API."""

from __future__ import annotations

from datetime import datetime

from agent.domain import TimelineEntry
from agent.store import Store
from agent.store.tables import Change


def decide_change(
    store: Store, change_id: int, approve: bool, actor: str, at: datetime, note: str = ""
) -> Change:
    """Approve or reject a change awaiting approval; raises InvalidTransition / NotFound otherwise.

    The running agent picks approved changes up within one housekeeping interval.
    """
    change = store.changes.decide(change_id, approve, actor, at, note)
    verb = "approved" if approve else "rejected"
    reason = f"change #{change_id} {verb} by {actor}" + (f": {note}" if note else "")
    store.incidents.add_entries(
        [TimelineEntry(change.incident_id, at, f"change_{verb}", actor, reason, {"change_id": change_id})]
    )
    store.audit.record(
        at, actor, "change.approve" if approve else "change.reject", f"change:{change_id}", {"note": note}
    )
    return change
