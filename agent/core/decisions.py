"""What the core decides for one event: everything the shell must record, in one transaction, and do after.

Records that are new to the store (incidents, changes) carry no id yet; the store assigns ids when it
commits them, and texts that name those ids are functions evaluated once they exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.core.domain import ChangeStatus, Signal
from agent.core.incidents import Entry, IncidentState, SignalState, Text
from agent.core.ledger import Tracked
from agent.core.records import ChangeBase, ReviewBase


@dataclass(frozen=True)
class Audit:
    """A line of the audit log; `target` may name a record the store creates in the same commit."""

    at: datetime
    actor: str
    action: str
    target: Text
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """An event for the notification sinks, rendered once ids exist and delivered after the commit."""

    event: str
    payload: Callable[[], dict[str, Any]]


@dataclass
class NewChange:
    """A change to create for an incident; `id` is set by the store when it is created, and stays None
    when the store refuses it (one open change per incident and rule). Its timeline entries, audit line
    and notifications are recorded with it, or not at all."""

    incident: IncidentState | int  # an id when the core no longer holds the incident (a late rollback)
    record: ChangeBase
    tracked: Tracked
    note: str  # what happens to it next, for the logs: "dry-run: recorded, not executed", ...
    entries: list[Entry] = field(default_factory=list)
    audit: list[Audit] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    id: int | None = None

    @property
    def status(self) -> ChangeStatus:
        return ChangeStatus(self.record.status)

    @property
    def incident_id(self) -> int | None:
        return self.incident if isinstance(self.incident, int) else self.incident.id


@dataclass(frozen=True)
class Closure:
    """Close incident `incident_id` if (and only if) it is still resolved, with its review if any; the
    entry and audit line are recorded only when it was."""

    incident_id: int
    entry: Entry
    audit: Audit
    review: ReviewBase | None = None


@dataclass(frozen=True)
class CancelChange:
    """Withdraw a change if (and only if) it is still in one of `allowed_from`; `entry` goes on the
    incident's timeline only when it was."""

    change_id: int
    allowed_from: tuple[ChangeStatus, ...]
    outcome: str
    entry: Entry


@dataclass(frozen=True)
class ProblemLink:
    """Incidents that make a problem candidate: one signature recurring often enough, or signatures on
    different services co-occurring more often than chance (with the numbers that say how much)."""

    signature: str  # the candidate's key: the incident signature, or the co-occurring ones joined
    service: str
    title: str
    incidents: tuple[IncidentState | int, ...]  # held ones, or ids of those the core no longer holds
    at: datetime
    note: IncidentState | int  # the incident whose timeline records the link
    kind: str = "recurrence"
    services: tuple[str, ...] = ()  # () for a recurrence: (service,)
    signatures: tuple[str, ...] = ()  # () for a recurrence: (signature,)
    count: int | None = None  # co-occurrences; None: the number of incidents linked
    expected: float | None = None
    lift: float | None = None
    p_value: float | None = None


@dataclass
class Decisions:
    """One event's decisions, made `at` (the event's `now`). Incidents and signals listed here are
    written as they are at commit time."""

    at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    incidents: dict[int, IncidentState] = field(default_factory=dict)
    signals: dict[tuple[int, str], tuple[IncidentState, SignalState]] = field(default_factory=dict)
    timeline: list[Entry] = field(default_factory=list)
    changes: list[NewChange] = field(default_factory=list)
    cancels: list[CancelChange] = field(default_factory=list)
    closes: list[Closure] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    problems: list[ProblemLink] = field(default_factory=list)
    audit: list[Audit] = field(default_factory=list)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbox: list[int] = field(default_factory=list)
    # For the shell to act on after the commit (not written to the store):
    run: list[int] = field(default_factory=list)  # approved changes to hand to the executor
    wants_history: set[str] = field(default_factory=set)  # queries whose next poll should fetch history
    consumed: bool = True  # False: a log read was not used (the source re-reads the same lines)
    # What happened, for the shell's logs and metrics, and the core's own bookkeeping:
    opened: list[IncidentState] = field(default_factory=list)
    forgotten: list[int] = field(default_factory=list)  # refs of incidents the core let go
    onsets: list[Signal] = field(default_factory=list)
    signal_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: int = 0
    series: tuple[int, int] | None = None  # (warm, warming) series of the detectors, on ticks
    alarms: tuple[int, float] | None = None  # (detector alarms, series-days judged) since start, on ticks
    seconds: float = 0.0  # how long the core took (set by its owner, for the agent's metrics)

    def incident(self, inc: IncidentState) -> None:
        self.incidents[inc.ref] = inc

    def signal(self, inc: IncidentState, sig: SignalState) -> None:
        self.signals[(inc.ref, sig.fingerprint)] = (inc, sig)

    def entry(self, entry: Entry) -> None:
        self.timeline.append(entry)

    def extend(self, entries: Iterable[Entry]) -> None:
        self.timeline.extend(entries)

    def writes(self) -> bool:
        """Whether anything must be written to the store."""
        return bool(
            self.incidents
            or self.signals
            or self.timeline
            or self.changes
            or self.cancels
            or self.closes
            or self.notifications
            or self.problems
            or self.audit
            or self.state
            or self.inbox
        )


@dataclass
class Committed:
    """What the store reports back after committing one event's decisions."""

    cancelled: set[int] = field(default_factory=set)  # change ids actually withdrawn
    problems: dict[str, int] = field(default_factory=dict)  # problem id per linked signature
