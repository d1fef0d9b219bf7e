"""The incident store's tables. SQLModel lives here only: the rest of the agent works with domain records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from agent.store.types import UTCDateTime


def _when(index: bool = False, nullable: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_type=UTCDateTime, index=index, nullable=nullable)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime = _when()


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    id: int = Field(primary_key=True)
    service: str = Field(index=True)
    signature: str = Field(index=True)
    title: str
    status: str = Field(index=True)
    priority: str
    impact: str
    urgency: str
    started_at: datetime = _when()
    opened_at: datetime = _when(index=True)
    updated_at: datetime = _when()
    acknowledged_at: datetime | None = _when(nullable=True)
    remediation_started_at: datetime | None = _when(nullable=True)
    resolved_at: datetime | None = _when(nullable=True)
    ack_due_at: datetime = _when()
    resolve_due_at: datetime = _when()
    ack_breached: bool = False
    resolve_breached: bool = False
    escalated: bool = False
    parent_id: int | None = None
    problem_id: int | None = Field(default=None, index=True)
    resolution: str = ""
    resolved_by: str = ""


class SignalRecord(SQLModel, table=True):
    """One signature (series) within one incident; repeats update it instead of adding rows."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True, foreign_key="incidents.id")
    fingerprint: str = Field(index=True)
    name: str
    service: str
    source: str
    detector: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    first_at: datetime = _when()
    last_at: datetime = _when()
    count: int = 1
    peak_score: float
    last_value: float
    last_expected: float | None = None
    last_score: float
    cleared_at: datetime | None = _when(nullable=True)
    evidence: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # schema v2: log template, samples


class IncidentEvent(SQLModel, table=True):
    __tablename__ = "incident_events"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True, foreign_key="incidents.id")
    at: datetime = _when()
    kind: str
    actor: str
    reason: str = Field(sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class Change(SQLModel, table=True):
    """A remediation as a change record: what was planned, who approved it, what happened."""

    __tablename__ = "changes"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True, foreign_key="incidents.id")
    rule: str = Field(index=True)
    service: str = Field(index=True)
    runbook: str
    playbook: str
    change_type: str
    risk: str
    status: str = Field(index=True)
    attempt: int = 1
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = _when(index=True)
    decided_at: datetime | None = _when(nullable=True)
    decided_by: str = ""
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)
    verify_promql: str = Field(default="", sa_type=Text)
    verify_deadline_s: float = 0.0
    verified_at: datetime | None = _when(nullable=True)
    verification: str = Field(default="", sa_type=Text)
    outcome: str = Field(default="", sa_type=Text)
    rollback_playbook: str = ""

    @property
    def number(self) -> int:
        """The change number (`change #N`); always set once the record is stored."""
        if self.id is None:
            raise ValueError("change has not been stored yet")
        return self.id


class RunbookRun(SQLModel, table=True):
    __tablename__ = "runbook_runs"
    id: int | None = Field(default=None, primary_key=True)
    change_id: int = Field(index=True, foreign_key="changes.id")
    kind: str = "remediation"
    playbook: str
    status: str = Field(index=True)
    rc: int | None = None
    started_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)
    duration_s: float | None = None
    stdout: str = Field(default="", sa_type=Text)
    failed_tasks: list[str] = Field(default_factory=list, sa_type=JSON)


class RunbookEvent(SQLModel, table=True):
    """Ansible events, written as they arrive so a hung or crashed run still shows how far it got."""

    __tablename__ = "runbook_events"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="runbook_runs.id")
    seq: int
    kind: str
    task: str = ""
    host: str = ""
    failed: bool = False
    changed: bool = False
    stdout: str = Field(default="", sa_type=Text)
    at: datetime = _when()


class Problem(SQLModel, table=True):
    __tablename__ = "problems"
    id: int | None = Field(default=None, primary_key=True)
    signature: str = Field(index=True, unique=True)
    kind: str = "recurrence"
    service: str = Field(index=True)
    title: str
    status: str = Field(default="candidate", index=True)
    occurrences: int = 0
    first_seen: datetime = _when()
    last_seen: datetime = _when()
    created_at: datetime = _when()
    updated_at: datetime = _when()
    root_cause: str = Field(default="", sa_type=Text)
    workaround: str = Field(default="", sa_type=Text)
    known_error_id: int | None = None


class ProblemIncident(SQLModel, table=True):
    __tablename__ = "problem_incidents"
    problem_id: int = Field(primary_key=True, foreign_key="problems.id")
    incident_id: int = Field(primary_key=True, foreign_key="incidents.id")


class KnownError(SQLModel, table=True):
    __tablename__ = "known_errors"
    id: int | None = Field(default=None, primary_key=True)
    signature: str = Field(index=True)
    title: str
    root_cause: str = Field(default="", sa_type=Text)
    workaround: str = Field(default="", sa_type=Text)
    workaround_runbook: str = ""
    created_at: datetime = _when()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True)
    actor: str
    action: str
    target: str
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
