"""JSON-ready views of store records, shared by the CLI's --json output and the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.store import Store
from agent.store.tables import (
    Change,
    Incident,
    IncidentEvent,
    Problem,
    RunbookEvent,
    RunbookRun,
    SignalRecord,
)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_summary(row: Incident) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "service": row.service,
        "status": row.status,
        "priority": row.priority,
        "impact": row.impact,
        "urgency": row.urgency,
        "signature": row.signature,
        "started_at": _ts(row.started_at),
        "opened_at": _ts(row.opened_at),
        "updated_at": _ts(row.updated_at),
        "acknowledged_at": _ts(row.acknowledged_at),
        "resolved_at": _ts(row.resolved_at),
        "resolution": row.resolution,
        "resolved_by": row.resolved_by,
        "escalated": row.escalated,
        "sla": {
            "acknowledge_by": _ts(row.ack_due_at),
            "resolve_by": _ts(row.resolve_due_at),
            "acknowledge_breached": row.ack_breached,
            "resolve_breached": row.resolve_breached,
        },
        "parent_id": row.parent_id,
        "problem_id": row.problem_id,
    }


def signal_view(row: SignalRecord) -> dict[str, Any]:
    return {
        "name": row.name,
        "service": row.service,
        "source": row.source,
        "labels": row.labels,
        "detector": row.detector,
        "severity": row.severity,
        "first_at": _ts(row.first_at),
        "last_at": _ts(row.last_at),
        "count": row.count,
        "peak_score": row.peak_score,
        "last_value": row.last_value,
        "expected": row.last_expected,
        "cleared_at": _ts(row.cleared_at),
        "evidence": row.evidence or {},
    }


def event_view(row: IncidentEvent) -> dict[str, Any]:
    return {"at": _ts(row.at), "kind": row.kind, "actor": row.actor, "reason": row.reason, "data": row.data}


def change_view(row: Change) -> dict[str, Any]:
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "rule": row.rule,
        "service": row.service,
        "runbook": row.runbook,
        "playbook": row.playbook,
        "change_type": row.change_type,
        "risk": row.risk,
        "status": row.status,
        "attempt": row.attempt,
        "params": row.params,
        "reason": row.reason,
        "created_at": _ts(row.created_at),
        "decided_at": _ts(row.decided_at),
        "decided_by": row.decided_by,
        "started_at": _ts(row.started_at),
        "finished_at": _ts(row.finished_at),
        "verification": {
            "promql": row.verify_promql,
            "deadline_s": row.verify_deadline_s,
            "verified_at": _ts(row.verified_at),
            "result": row.verification,
        },
        "outcome": row.outcome,
        "rollback_playbook": row.rollback_playbook or None,
    }


def run_view(row: RunbookRun, events: list[RunbookEvent] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "kind": row.kind,
        "playbook": row.playbook,
        "status": row.status,
        "rc": row.rc,
        "started_at": _ts(row.started_at),
        "finished_at": _ts(row.finished_at),
        "duration_s": row.duration_s,
        "failed_tasks": row.failed_tasks,
        "stdout": row.stdout,
    }
    if events is not None:
        out["events"] = [
            {
                "seq": e.seq,
                "kind": e.kind,
                "task": e.task,
                "host": e.host,
                "failed": e.failed,
                "at": _ts(e.at),
            }
            for e in events
        ]
    return out


def incident_detail(store: Store, incident_id: int) -> dict[str, Any]:
    """One incident with everything an on-call engineer needs to review it."""
    row = store.incidents.get(incident_id)
    changes = []
    for ch in reversed(store.changes.list(incident_id=incident_id, limit=1000)):
        view = change_view(ch)
        assert ch.id is not None
        view["runs"] = [run_view(r, store.runs.events(r.id or 0)) for r in store.runs.for_change(ch.id)]
        changes.append(view)
    return {
        **incident_summary(row),
        "signals": [signal_view(s) for s in store.incidents.signals(incident_id)],
        "timeline": [event_view(e) for e in store.incidents.timeline(incident_id)],
        "changes": changes,
    }


def problem_view(row: Problem) -> dict[str, Any]:
    return {
        "id": row.id,
        "signature": row.signature,
        "kind": row.kind,
        "service": row.service,
        "title": row.title,
        "status": row.status,
        "occurrences": row.occurrences,
        "first_seen": _ts(row.first_seen),
        "last_seen": _ts(row.last_seen),
        "root_cause": row.root_cause,
        "workaround": row.workaround,
        "known_error_id": row.known_error_id,
    }


def problem_detail(store: Store, problem_id: int) -> dict[str, Any]:
    return {
        **problem_view(store.problems.get(problem_id)),
        "incidents": [incident_summary(i) for i in store.problems.incidents(problem_id)],
    }
