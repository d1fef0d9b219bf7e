"""Small builders of domain states and store rows, so tests say only what matters to them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from agent.core.decisions import Decisions, ProblemLink
from agent.core.domain import ChangeStatus, IncidentStatus, Level, Priority, Severity
from agent.core.incidents import Entry, IncidentState, SignalState
from agent.shell.store import Store
from agent.shell.store.tables import Change

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
        "ref": incident_id,
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


def opened_entry(st: IncidentState) -> Entry:
    return Entry(st, st.opened_at, "opened", "agent", f"{st.title}", {"signals": len(st.signals)})


def save_incidents(store: Store, *states: IncidentState) -> None:
    """Store incidents (with their signals and `opened` timeline entries) as the core's decisions are
    stored. The store assigns ids: each state must be the next one, `incident_state(n)` its `n`."""
    for st in states:
        wanted = st.ref
        out = Decisions(at=st.opened_at)
        out.incident(st)
        for sig in st.signals.values():
            out.signal(st, sig)
        out.entry(opened_entry(st))
        store.committer({}, None).commit(out, 0)
        assert st.id == wanted, f"the store gave id {st.id} to the incident meant as #{wanted}"


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
        "status": status,
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
    with Session(store.engine) as s:
        change = change_row(incident_id, status, **kw)
        s.add(change)
        s.commit()
        assert change.id is not None
        return change.id


def link_problem(store: Store, signature: str, title: str, incident_ids: list[int], at: datetime = T0) -> int:
    """Record a problem candidate linking incidents already stored, as the core's decisions do."""
    note = incident_ids[-1]
    return commit_link(store, ProblemLink(signature, "demo-web", title, tuple(incident_ids), at, note))


def cooccurrence_link(
    incident_ids: tuple[int, ...], count: int, p_value: float, at: datetime = T0, expected: float = 0.5
) -> ProblemLink:
    """A co-occurrence candidate of db:Down and demo-web's latency, as the core raises one."""
    return ProblemLink(
        "db:Down + demo-web:demo_latency_p99",
        "db, demo-web",
        f"db:Down and demo-web:demo_latency_p99 co-occurring ({count}x)",
        incident_ids,
        at,
        incident_ids[-1],
        kind="cooccurrence",
        services=("db", "demo-web"),
        signatures=("db:Down", "demo-web:demo_latency_p99"),
        count=count,
        expected=expected,
        lift=count / expected,
        p_value=p_value,
    )


def commit_link(store: Store, link: ProblemLink) -> int:
    """Commit a problem link as the core's decisions do; the candidate's id."""
    out = Decisions(at=link.at)
    out.problems.append(link)
    return store.committer({}, None).commit(out, 0).problems[link.signature]


def approvals_in_inbox(store: Store) -> list[int]:
    """Approvals that reached the leader's inbox (and so will be executed)."""
    return [
        r.payload["change_id"]
        for r in store.inbox.pending()
        if r.kind == "change_decided" and r.payload["approved"]
    ]
