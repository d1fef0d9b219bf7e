"""Immutable records and vocabularies shared by every stage of the pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Level(StrEnum):
    """Impact and urgency levels of the ITIL priority matrix."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    def raised(self) -> Level:
        return Level.HIGH if self is not Level.LOW else Level.MEDIUM


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """1 is the most urgent."""
        return int(self.value[1])

    def at_least(self, other: Priority) -> bool:
        """True when this priority is as urgent as `other` or more (P1 is at least P3)."""
        return self.rank <= other.rank


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    REMEDIATING = "remediating"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        return self in _ACTIVE_INCIDENT


_ACTIVE_INCIDENT = frozenset({IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.REMEDIATING})


class ChangeType(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class ChangeStatus(StrEnum):
    DRY_RUN = "dry_run"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    RUNNING = "running"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in _FINAL_CHANGE


_FINAL_CHANGE = {
    ChangeStatus.DRY_RUN,
    ChangeStatus.REJECTED,
    ChangeStatus.SUCCEEDED,
    ChangeStatus.FAILED,
    ChangeStatus.ROLLED_BACK,
    ChangeStatus.CANCELLED,
}


class ChangeKind(StrEnum):
    """Why a change exists: a rule planned it, or a person asked to retry or roll back another."""

    REMEDIATION = "remediation"
    RETRY = "retry"
    ROLLBACK = "rollback"


class Review(StrEnum):
    """The retrospective review an emergency change that ran without approval awaits."""

    NONE = ""
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELED = "canceled"
    INTERRUPTED = "interrupted"


class Actor(StrEnum):
    AGENT = "agent"


def fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """Stable identity of a signal's source series: same name and labels, same fingerprint.

    The hashed text prefixes every string with its length, so it parses back to exactly one (name,
    labels): no label text, NUL and other separators included, can make two different label sets
    share an identity (a separator-joined text could). Lone surrogates are encoded, not refused."""
    parts = [f"{len(name)}:{name}"]
    for k in sorted(labels):
        v = labels[k]
        parts.append(f"{len(k)}:{k}{len(v)}:{v}")
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Signal:
    """An anomaly with its evidence: what was seen, what was expected, and which detector judged it."""

    name: str
    service: str
    source: str
    labels: Mapping[str, str]
    at: datetime
    value: float
    score: float
    detector: str
    severity: Severity
    expected: float | None = None
    fingerprint: str = field(default="")
    details: Mapping[str, object] = field(default_factory=dict)  # e.g. a log template and sample lines

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.name, self.labels))

    def describe(self) -> str:
        """One line of evidence; for a static threshold the reference value is the limit, not a forecast."""
        word = "limit" if self.detector == "static" else "expected"
        ref = f" {word} {self.expected:.4g}" if self.expected is not None else ""
        return f"{self.name} value {self.value:.4g}{ref} score {self.score:.2f} ({self.detector})"


@dataclass(frozen=True)
class SignalClear:
    """Positive evidence that a series is normal again at `at` (missing data is never evidence)."""

    fingerprint: str
    at: datetime
