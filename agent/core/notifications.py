"""What the core tells notification sinks: which timeline entries notify, and the document an
incident's notifications carry.

The document is a function of the incident's state (plus the time and reason of the event), so a sink
that mirrors state (Alertmanager) gets the same document from an event as from a re-send of the
incident as the store holds it. `incident_id` and `signature` identify the incident for a sink's
dedup key: neither changes during its life.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.core.domain import Actor, Severity
from agent.core.incidents import Entry, IncidentState, SignalState
from agent.core.known_errors import KnownError

EVENTS = {
    "opened": "incident_opened",
    "reopened": "incident_reopened",
    "escalated": "escalation",
    "circuit_breaker_opened": "escalation",
    "sla_breach": "sla_breach",
    "sla_warning": "sla_warning",
    "acknowledged": "incident_acknowledged",
    "resolved": "incident_resolved",
}
"""Timeline entry kind -> notification event."""

FOLLOW_UPS = frozenset({"incident_acknowledged", "incident_resolved"})
"""Events that only mean something to a sink told about the incident before (by any other event)."""


def event_of(entry: Entry) -> str | None:
    """The notification a timeline entry makes, if any. A person's acknowledgement notifies; the
    agent putting an incident back to `acknowledged` after a failed remediation does not (the
    escalation that follows does)."""
    if entry.kind == "acknowledged" and entry.actor == Actor.AGENT.value:
        return None
    return EVENTS.get(entry.kind)


def incident_payload(
    inc: IncidentState, at: datetime, reason: str, known: KnownError | None = None
) -> dict[str, Any]:
    """The incident as sinks see it, at `at`, with the reason of the event that notifies, and the
    workaround of the known error it matched (`known`, the one its `known_error_id` names)."""
    return {
        "incident_id": inc.id,
        "signature": inc.signature,
        "title": inc.title,
        "service": inc.service,
        "priority": inc.priority.value,
        "severity": _severity(inc).value,
        "status": inc.status.value,
        "escalated": inc.escalated,
        "reason": reason,
        "at": at.isoformat(),
        "opened_at": inc.opened_at.isoformat(),
        "acknowledged_at": _iso(inc.acknowledged_at),
        "resolved_at": _iso(inc.resolved_at),
        "signals": [_signal_payload(s) for s in inc.signals.values()],
        "known_error": _known_error_payload(known) if known is not None else None,
    }


def _known_error_payload(known: KnownError) -> dict[str, Any]:
    return {
        "id": known.id,
        "title": known.title,
        "workaround": known.workaround,
        "workaround_runbook": known.workaround_runbook or None,
    }


def _severity(inc: IncidentState) -> Severity:
    """The most severe of the incident's signals (warning for an incident that holds none)."""
    return max((s.severity for s in inc.signals.values()), key=lambda s: s.rank, default=Severity.WARNING)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _signal_payload(s: SignalState) -> dict[str, Any]:
    return {
        "name": s.name,
        "labels": dict(s.labels),
        "value": s.last_value,
        "expected": s.last_expected,
        "score": s.peak_score,
    }
