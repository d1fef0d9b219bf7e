"""Incidents and their signals as the core holds them, and the lifecycle every status change goes through."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.core.domain import IncidentStatus, Signal
from agent.core.records import IncidentBase, SignalBase
from agent.errors import InvalidTransition

S = IncidentStatus
_ALLOWED: dict[IncidentStatus, set[IncidentStatus]] = {
    S.OPEN: {S.ACKNOWLEDGED, S.REMEDIATING, S.RESOLVED},
    S.ACKNOWLEDGED: {S.REMEDIATING, S.RESOLVED},
    S.REMEDIATING: {S.OPEN, S.ACKNOWLEDGED, S.RESOLVED},
    S.RESOLVED: {S.OPEN, S.CLOSED},
    S.CLOSED: set(),
}

Text = str | Callable[[], str]


def can_become(status: IncidentStatus, to: IncidentStatus) -> bool:
    """Whether the lifecycle lets an incident in `status` move to `to`."""
    return to in _ALLOWED[status]


"""A timeline reason, or a function giving it once the store has assigned the ids it names."""


class _Held:
    """A record held and changed by the core alone: a field assignment writes the field (the generic
    SQLModel and pydantic assignment, built for table rows and validation, would triple the cost of a
    repeated signal); anything that is not a field still goes through them (and is refused)."""

    _fields: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._fields:
            self.__dict__[name] = value
        else:
            super().__setattr__(name, value)


class SignalState(_Held, SignalBase):
    """One signature (series) inside an incident: its record, updated in place by repeats."""

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
            evidence=dict(sig.details),
        )

    def repeat(self, sig: Signal, reactivate: bool = True) -> bool:
        """Count a repeat of this signature; `reactivate=False` records late evidence without undoing a
        clear. Returns True when the repeat raised the signal's severity. (The hottest path of an alert
        storm: it writes its own fields directly, see `_Held`.)"""
        d = self.__dict__
        d["count"] += 1
        if sig.at >= d["last_at"]:
            d["last_at"] = sig.at
            d["last_value"] = sig.value
            d["last_score"] = sig.score
            d["last_expected"] = sig.expected
            if sig.details:
                d["evidence"] = dict(sig.details)
            if reactivate:
                d["cleared_at"] = None
        if sig.score > d["peak_score"]:
            d["peak_score"] = sig.score
        if sig.severity is not d["severity"] and sig.severity.rank > d["severity"].rank:
            d["severity"] = sig.severity
            return True
        return False

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class IncidentState(_Held, IncidentBase):
    """An incident in the core's working set: its record, its signals by fingerprint, and `ref`, the
    core's own key for it (the store assigns `id` when the incident is first committed)."""

    id: int | None = None
    ref: int = 0
    parent_ref: int | None = None
    signals: dict[str, SignalState] = {}

    @property
    def number(self) -> str:
        return f"#{self.id}" if self.id is not None else "(new)"

    def transition(self, to: IncidentStatus, at: datetime, actor: str, reason: str) -> Entry:
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
        return Entry(self, at, kind, actor, reason, {"from": before.value, "to": to.value})


SignalState._fields = frozenset(SignalState.model_fields)
IncidentState._fields = frozenset(IncidentState.model_fields)


@dataclass
class Entry:
    """A timeline entry the core decided on, for an incident it holds or (by id) one it no longer does."""

    incident: IncidentState | int
    at: datetime
    kind: str
    actor: str
    reason: Text
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def incident_id(self) -> int | None:
        return self.incident if isinstance(self.incident, int) else self.incident.id

    def text(self) -> str:
        return self.reason() if callable(self.reason) else self.reason

    def details(self) -> dict[str, object]:
        """`data` with values that name new records (functions) evaluated."""
        return {k: v() if callable(v) else v for k, v in self.data.items()}
