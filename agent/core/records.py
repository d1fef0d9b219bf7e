"""The record model of every stored entity, declared once (the SQLModel base/table/public pattern).

Each `XBase` here holds the fields of one entity with their column types; the store's tables
(`agent/shell/store/tables.py`) add keys and constraints to it, the core's working state
(`agent/core/incidents.py`) adds behaviour, and the API's public views add computed fields. A field
added here reaches the store, the core and the API together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text
from sqlmodel import Field, SQLModel

from agent.core.columns import EnumText, UTCDateTime
from agent.core.domain import ChangeKind, ChangeStatus, IncidentStatus, Level, Priority, Review, Severity


def when(index: bool = False, nullable: bool = False) -> Any:
    """A UTC timestamp column (required unless `nullable`)."""
    return Field(default=None if nullable else ..., sa_type=UTCDateTime, index=index, nullable=nullable)


def text(default: str = "") -> Any:
    """Free text of any length (reasons, outputs)."""
    return Field(default=default, sa_type=Text)


def vocabulary(enum: Any, default: Any = ..., index: bool = False) -> Any:
    return Field(default=default, sa_type=EnumText(enum), index=index)  # type: ignore[arg-type]


class IncidentBase(SQLModel):
    """An incident: what is wrong with which service, how urgent, and where it is in its lifecycle."""

    service: str = Field(index=True)
    signature: str = Field(index=True)
    title: str = text()
    status: IncidentStatus = vocabulary(IncidentStatus, IncidentStatus.OPEN, index=True)
    priority: Priority = vocabulary(Priority)
    impact: Level = vocabulary(Level)
    urgency: Level = vocabulary(Level)
    started_at: datetime = when()
    opened_at: datetime = when(index=True)
    updated_at: datetime = when()
    ack_due_at: datetime = when()
    resolve_due_at: datetime = when()
    acknowledged_at: datetime | None = when(nullable=True)
    remediation_started_at: datetime | None = when(nullable=True)
    resolved_at: datetime | None = when(index=True, nullable=True)
    ack_breached: bool = False
    resolve_breached: bool = False
    escalated: bool = False
    parent_id: int | None = None
    problem_id: int | None = Field(default=None, index=True)
    resolution: str = text()
    resolved_by: str = ""
    signals_dropped: int = 0  # signals beyond `correlation.max_signals`: counted, not kept
    flapping: bool = False  # its signals keep coming and going: automation holds
    ack_warned: bool = False  # the SLA near-breach warnings were given
    resolve_warned: bool = False
    closed_at: datetime | None = when(nullable=True)
    closed_by: str = ""
    known_error_id: int | None = Field(default=None, index=True)  # the known error it matched on opening


class SignalBase(SQLModel):
    """One signature (series) within one incident; repeats update it instead of adding rows."""

    fingerprint: str = Field(index=True)
    name: str
    service: str
    source: str
    detector: str
    severity: Severity = vocabulary(Severity)
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    first_at: datetime = when()
    last_at: datetime = when()
    count: int = 1
    peak_score: float
    last_value: float
    last_expected: float | None = None
    last_score: float
    cleared_at: datetime | None = when(nullable=True)
    muted: str = ""  # why it acts on nothing now (a silence, a maintenance window), "" when it does not
    evidence: dict[str, Any] | None = Field(
        default=None, sa_type=JSON
    )  # a log template, samples, annotations


class IncidentEventBase(SQLModel):
    """One line of an incident's timeline: every transition names when, who and why."""

    at: datetime = when()
    kind: str
    actor: str
    reason: str = text()
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class ChangeBase(SQLModel):
    """A remediation as a change record: what was planned, who approved it, what happened."""

    incident_id: int = Field(index=True, foreign_key="incidents.id")
    rule: str = Field(index=True)
    service: str = Field(index=True)
    runbook: str
    playbook: str
    change_type: str
    risk: str
    status: ChangeStatus = vocabulary(ChangeStatus, index=True)
    attempt: int = 1
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reason: str = text()
    created_at: datetime = when(index=True)
    decided_at: datetime | None = when(nullable=True)
    decided_by: str = ""
    started_at: datetime | None = when(nullable=True)
    finished_at: datetime | None = when(nullable=True)
    verify_promql: str = text()
    verify_deadline_s: float = 0.0
    verified_at: datetime | None = when(nullable=True)
    verification: str = text()
    outcome: str = text()
    rollback_playbook: str = ""
    epoch: int | None = None  # the leader term that claimed it for execution (a takeover finds orphans)
    kind: ChangeKind = vocabulary(ChangeKind, ChangeKind.REMEDIATION)
    origin_id: int | None = Field(default=None, index=True)  # the change a retry or rollback is of
    decision_note: str = text()  # the approver's (or requester's) note, beside the agent's reason
    review: Review = vocabulary(Review, Review.NONE)  # an emergency change's retrospective review
    reviewed_by: str = ""
    reviewed_at: datetime | None = when(nullable=True)
    review_note: str = text()


class RunBase(SQLModel):
    """One execution of a playbook (remediation or rollback) for a change."""

    change_id: int = Field(index=True, foreign_key="changes.id")
    kind: str = "remediation"
    playbook: str
    status: str = Field(index=True)
    rc: int | None = None
    started_at: datetime = when()
    finished_at: datetime | None = when(nullable=True)
    duration_s: float | None = None
    stdout: str = text()
    failed_tasks: list[str] = Field(default_factory=list, sa_type=JSON)


class RunEventBase(SQLModel):
    """An Ansible event, written as it arrives so a hung or crashed run still shows how far it got."""

    seq: int
    kind: str
    task: str = ""
    host: str = ""
    failed: bool = False
    changed: bool = False
    stdout: str = text()
    at: datetime = when()


class ProblemBase(SQLModel):
    """A problem candidate (a recurring signature, or signatures co-occurring across services) or a
    problem a person took on: `candidate`, then `problem` once promoted (owner, title), then
    `known_error` once a workaround is recorded. `occurrences` counts the incidents of a recurrence, the
    co-occurrences of a co-occurrence; `expected`, `lift` and `p_value` (co-occurrence only) say how far
    beyond chance."""

    signature: str = Field(index=True, unique=True)
    kind: str = "recurrence"  # or "cooccurrence"
    service: str = Field(index=True)
    services: list[str] = Field(default_factory=list, sa_type=JSON)
    signatures: list[str] = Field(default_factory=list, sa_type=JSON)
    title: str
    status: str = Field(default="candidate", index=True)
    occurrences: int = 0
    expected: float | None = None
    lift: float | None = None
    p_value: float | None = None
    first_seen: datetime = when()
    last_seen: datetime = when()
    created_at: datetime = when()
    updated_at: datetime = when()
    root_cause: str = text()
    workaround: str = text()
    known_error_id: int | None = None
    owner: str = ""  # who took the problem on (set on promotion)


class KnownErrorBase(SQLModel):
    """A problem whose root cause and workaround are known: new incidents of its signatures are linked
    to it when they open, show its workaround, and rules may run its `workaround_runbook`."""

    signature: str = Field(index=True)
    title: str
    root_cause: str = text()
    workaround: str = text()
    workaround_runbook: str = ""
    created_at: datetime = when()
    problem_id: int | None = None  # the problem it was recorded for (at most one known error each)
    signatures: list[str] = Field(default_factory=list, sa_type=JSON)  # every signature it matches
    created_by: str = ""


class ReviewBase(SQLModel):
    """A post-incident review: what happened, what it cost, why, and what will be done about it."""

    incident_id: int = Field(foreign_key="incidents.id", unique=True)
    summary: str = text()
    impact: str = text()
    root_cause: str = text()
    actions: list[str] = Field(default_factory=list, sa_type=JSON)
    author: str
    created_at: datetime = when()


class SilenceBase(SQLModel):
    """Signals whose labels match every matcher between `starts_at` and `ends_at` act on nothing."""

    matchers: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)  # name, op, value
    starts_at: datetime = when()
    ends_at: datetime = when(index=True)
    created_by: str
    comment: str = text()
    created_at: datetime = when()
    expired_at: datetime | None = when(nullable=True)
    expired_by: str = ""


class SwitchBase(SQLModel):
    """A use of the kill switch: pause or resume automation for everything (no service) or one service;
    a resume naming a runbook closes only its circuit breakers."""

    kind: str  # pause | resume
    service: str | None = Field(default=None, index=True)
    runbook: str | None = None
    reason: str = text()
    actor: str
    at: datetime = when(index=True)


class AuditBase(SQLModel):
    """Who did what to which record, and when."""

    at: datetime = when(index=True)
    actor: str
    action: str
    target: str
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
