"""The typed events the core is fed: everything that happens to the agent, as data.

The shell produces them (polls, the webhook, the inbox of human decisions, the remediation executor,
the clock); the core applies them one at a time, in order, with the time at which they are applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.core.domain import ChangeKind, ChangeStatus, Priority
from agent.core.envelope import Silence, Switch
from agent.core.known_errors import KnownError
from agent.core.records import ChangeBase, ReviewBase
from integrations.alertmanager import ExternalAlert
from integrations.logs.records import LogRecord
from integrations.prometheus import Matrix


@dataclass(frozen=True)
class MetricsPolled:
    """The samples of one poll of one query, up to `end` (the poll's window end, where the next poll
    starts once this one is recorded). `history`, when the shell fetched it, is the query's recent past
    for detectors to learn from without judging it; a warm-up too large for one event comes as events
    with history only (`end` None)."""

    query: str
    samples: Matrix
    end: float | None
    history: Matrix | None = None


@dataclass(frozen=True)
class LogsRead:
    """Lines read from one log source; `checkpoint` is the source position just after them."""

    source: str
    records: Sequence[LogRecord]
    checkpoint: Mapping[str, Any]


@dataclass(frozen=True)
class AlertsReceived:
    """Alerts pushed by Alertmanager, as stored in the inbox (`inbox_id`) by whichever replica took them."""

    alerts: Sequence[ExternalAlert]
    actor: str
    inbox_id: int | None = None


@dataclass(frozen=True)
class ChangeProgress:
    """A remediation step happened. `status` is the change's status after it; a final status ends it.

    `kind` names the step for the incident's timeline (remediation_started, remediation_finished,
    verification, rollback_started, ...); `started`, `verified` and `failed` move the incident too.
    """

    change_id: int
    incident_id: int
    kind: str
    at: datetime
    reason: str
    status: ChangeStatus
    outcome: str = ""  # "started" | "verified" | "failed" | "" (a step that moves nothing)
    summary: str = ""  # for the incident's own transition when `outcome` moves it
    data: Mapping[str, object] = field(default_factory=dict)
    inbox_id: int | None = None


@dataclass(frozen=True)
class Acknowledge:
    """A person takes an incident (stops its acknowledge SLA clock)."""

    incident_id: int
    actor: str
    note: str
    inbox_id: int | None = None


@dataclass(frozen=True)
class ChangeDecided:
    """A person approved or rejected a change; the store already holds the decision."""

    change_id: int
    approved: bool
    actor: str
    inbox_id: int | None = None


@dataclass(frozen=True)
class ChangeRequested:
    """A person asked to retry or roll back change `origin.id` (`origin` is the store's record of it,
    read when the request was taken); the core decides whether it may and makes the new change."""

    kind: ChangeKind
    origin_id: int
    origin: ChangeBase
    actor: str
    note: str = ""
    inbox_id: int | None = None


@dataclass(frozen=True)
class CloseIncident:
    """A person closes a resolved incident, with a post-incident review or not (`priority`: the
    incident's as the store had it, for incidents the core no longer holds)."""

    incident_id: int
    actor: str
    priority: Priority
    review: ReviewBase | None = None
    inbox_id: int | None = None


@dataclass(frozen=True)
class Tick:
    """Time passed: quiet periods, SLA timers, log buckets and idle series are judged on ticks. The
    leader's ticks also carry the store's current silences, kill-switch log and known errors (None:
    unchanged), so what a person sets with the CLI or API takes effect within one housekeeping interval."""

    silences: tuple[Silence, ...] | None = None
    switches: tuple[Switch, ...] | None = None
    known_errors: tuple[KnownError, ...] | None = None


@dataclass(frozen=True)
class IncidentsStored:
    """The store gave ids to incidents the core opened (`refs`): rules may now plan for them, since
    a runbook parameter may name the incident's id."""

    refs: tuple[int, ...]


Event = (
    MetricsPolled
    | LogsRead
    | AlertsReceived
    | ChangeProgress
    | Acknowledge
    | ChangeDecided
    | ChangeRequested
    | CloseIncident
    | Tick
    | IncidentsStored
)
