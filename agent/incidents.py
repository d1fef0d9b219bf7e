"""Incident and signal state, and the lifecycle rules every status change goes through."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from agent.domain import IncidentStatus, Level, Priority, Severity, Signal, TimelineEntry
from agent.errors import InvalidTransition

S = IncidentStatus
_ALLOWED: dict[IncidentStatus, set[IncidentStatus]] = {
    S.OPEN: {S.ACKNOWLEDGED, S.REMEDIATING, S.RESOLVED},
    S.ACKNOWLEDGED: {S.REMEDIATING, S.RESOLVED},
    S.REMEDIATING: {S.OPEN, S.ACKNOWLEDGED, S.RESOLVED},
    S.RESOLVED: {S.OPEN, S.CLOSED},
    S.CLOSED: set(),
}


@dataclass
class SignalState:
    """One signature (series) inside an incident; repeats update it rather than piling up rows."""

    fingerprint: str
    name: str
    service: str
    source: str
    detector: str
    severity: Severity
    labels: Mapping[str, str]
    first_at: datetime
    last_at: datetime
    last_value: float
    last_score: float
    peak_score: float
    last_expected: float | None = None
    count: int = 1
    cleared_at: datetime | None = None
    details: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def first(cls, sig: Signal) -> SignalState:
        return cls(
            fingerprint=sig.fingerprint,
            name=sig.name,
            service=sig.service,
            source=sig.source,
            detector=sig.detector,
            severity=sig.severity,
            labels=dict(sig.labels),
            first_at=sig.at,
            last_at=sig.at,
            last_value=sig.value,
            last_score=sig.score,
            peak_score=sig.score,
            last_expected=sig.expected,
            details=dict(sig.details),
        )

    def repeat(self, sig: Signal, reactivate: bool = True) -> None:
        """Count a repeat of this signature; `reactivate=False` records late evidence without undoing a clear."""
        self.count += 1
        if sig.at >= self.last_at:
            self.last_at = sig.at
            self.last_value = sig.value
            self.last_score = sig.score
            self.last_expected = sig.expected
            if sig.details:
                self.details = dict(sig.details)
            if reactivate:
                self.cleared_at = None
        self.peak_score = max(self.peak_score, sig.score)
        if sig.severity.rank > self.severity.rank:
            self.severity = sig.severity

    @property
    def active(self) -> bool:
        return self.cleared_at is None


@dataclass
class IncidentState:
    id: int
    service: str
    signature: str
    title: str
    status: IncidentStatus
    priority: Priority
    impact: Level
    urgency: Level
    started_at: datetime
    opened_at: datetime
    updated_at: datetime
    ack_due_at: datetime
    resolve_due_at: datetime
    acknowledged_at: datetime | None = None
    remediation_started_at: datetime | None = None
    resolved_at: datetime | None = None
    ack_breached: bool = False
    resolve_breached: bool = False
    escalated: bool = False
    parent_id: int | None = None
    problem_id: int | None = None
    resolution: str = ""
    resolved_by: str = ""
    signals: dict[str, SignalState] = field(default_factory=dict)

    @property
    def last_signal_at(self) -> datetime:
        return max(s.last_at for s in self.signals.values())

    @property
    def instances(self) -> int:
        return len({s.labels.get("instance", "") for s in self.signals.values()}) or 1

    def transition(self, to: IncidentStatus, at: datetime, actor: str, reason: str) -> TimelineEntry:
        """Move to `to` if the lifecycle allows it, stamping the matching time; returns the timeline entry."""
        if to not in _ALLOWED[self.status]:
            raise InvalidTransition(f"incident {self.id} cannot go from {self.status} to {to}")
        before = self.status
        self.status = to
        self.updated_at = at
        if to is S.ACKNOWLEDGED and self.acknowledged_at is None:
            self.acknowledged_at = at
        elif to is S.REMEDIATING and self.remediation_started_at is None:
            self.remediation_started_at = at
        elif to is S.RESOLVED:
            self.resolved_at = at
            self.resolution = reason
            self.resolved_by = actor
        elif to is S.OPEN and before is S.RESOLVED:
            self.resolved_at = None
            self.resolution = ""
            self.resolved_by = ""
        kind = "reopened" if before is S.RESOLVED and to is S.OPEN else to.value
        return TimelineEntry(self.id, at, kind, actor, reason, {"from": before.value, "to": to.value})
