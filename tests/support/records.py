"""Small builders of domain states and store rows, so tests say only what matters to them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.domain import ChangeStatus, IncidentStatus, Level, Priority, Severity, TimelineEntry
from agent.incidents import IncidentState, SignalState
from agent.store import Store
from agent.store.tables import Change

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def signal_state(fingerprint: str = "fp-latency", at: datetime = T0, **overrides: Any) -> SignalState:
    fields: dict[str, Any] = {
        "fingerprint": fingerprint,
        "name": "demo_latency_p99",
        "service": "demo-web",
        "source": "prometheus",
        "detector": "robust",
        "severity": Severity.WARNING,
        "labels": {"instance": "10.0.0.1:8000", "job": "demo"},
        "first_at": at,
        "last_at": at,
        "last_value": 0.75,
        "last_score": 0.91,
        "peak_score": 0.91,
        "last_expected": 0.12,
    }
    fields.update(overrides)
    return SignalState(**fields)


def incident_state(
    incident_id: int,
    at: datetime = T0,
    status: IncidentStatus = IncidentStatus.OPEN,
    signals: list[SignalState] | None = None,
    **overrides: Any,
) -> IncidentState:
    fields: dict[str, Any] = {
        "id": incident_id,
        "service": "demo-web",
        "signature": "demo-web:demo_latency_p99",
        "title": f"demo-web latency high (#{incident_id})",
        "status": status,
        "priority": Priority.P2,
        "impact": Level.HIGH,
        "urgency": Level.MEDIUM,
        "started_at": at - timedelta(seconds=30),
        "opened_at": at,
        "updated_at": at,
        "ack_due_at": at + timedelta(minutes=15),
        "resolve_due_at": at + timedelta(hours=4),
    }
    if status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        fields |= {
            "resolved_at": at + timedelta(minutes=5),
            "resolution": "signals cleared",
            "resolved_by": "agent",
        }
    fields.update(overrides)
    st = IncidentState(**fields)
    for sig in signals if signals is not None else [signal_state(at=at)]:
        st.signals[sig.fingerprint] = sig
    return st


def opened_entry(st: IncidentState) -> TimelineEntry:
    return TimelineEntry(st.id, st.opened_at, "opened", "agent", f"{st.title}", {"signals": len(st.signals)})


def save_incidents(store: Store, *states: IncidentState) -> None:
    """Save incidents with their `opened` timeline entries, as the pipeline does on a tick."""
    store.incidents.save(states, [opened_entry(st) for st in states])


def change_row(
    incident_id: int,
    status: ChangeStatus = ChangeStatus.AWAITING_APPROVAL,
    at: datetime = T0,
    rule: str = "recycle-demo-workers",
    service: str = "demo-web",
    **overrides: Any,
) -> Change:
    fields: dict[str, Any] = {
        "incident_id": incident_id,
        "rule": rule,
        "service": service,
        "runbook": "recycle_workers",
        "playbook": "recycle_workers.yml",
        "change_type": "normal",
        "risk": "low",
        "status": status.value,
        "params": {"url": "http://10.0.0.1:8000/admin/recycle"},
        "reason": "latency above expected",
        "created_at": at,
        "verify_promql": "demo_latency_p99 < 0.25",
        "verify_deadline_s": 300.0,
    }
    fields.update(overrides)
    return Change(**fields)


def add_change(
    store: Store, incident_id: int, status: ChangeStatus = ChangeStatus.AWAITING_APPROVAL, **kw: Any
) -> int:
    change = store.changes.create(change_row(incident_id, status, **kw))
    assert change.id is not None
    return change.id
