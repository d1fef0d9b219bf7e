"""The incident store's tables: each record base of agent/core/records.py plus its keys and constraints,
and the tables only the shell uses (leader lease, inbox, outbox, source state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from agent.core.ledger import OPEN
from agent.core.records import (
    AuditBase,
    ChangeBase,
    IncidentBase,
    IncidentEventBase,
    KnownErrorBase,
    ProblemBase,
    ReviewBase,
    RunBase,
    RunEventBase,
    SignalBase,
    SilenceBase,
    SwitchBase,
    when,
)

_OPEN_STATUSES = ", ".join(f"'{s.value}'" for s in sorted(OPEN))
ONE_OPEN_CHANGE = f"status IN ({_OPEN_STATUSES})"


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime = when()


class Incident(IncidentBase, table=True):
    __tablename__ = "incidents"
    id: int | None = Field(default=None, primary_key=True)


class SignalRecord(SignalBase, table=True):
    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True, foreign_key="incidents.id")


class IncidentEvent(IncidentEventBase, table=True):
    __tablename__ = "incident_events"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(index=True, foreign_key="incidents.id")


class Change(ChangeBase, table=True):
    """At most one open change per incident and rule, whoever tries to create a second one."""

    __tablename__ = "changes"
    __table_args__ = (
        Index(
            "one_open_change_per_incident_and_rule",
            "incident_id",
            "rule",
            unique=True,
            sqlite_where=text(ONE_OPEN_CHANGE),
            postgresql_where=text(ONE_OPEN_CHANGE),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)

    @property
    def number(self) -> int:
        """The change number (`change #N`); always set once the record is stored."""
        if self.id is None:
            raise ValueError("change has not been stored yet")
        return self.id


class RunbookRun(RunBase, table=True):
    __tablename__ = "runbook_runs"
    id: int | None = Field(default=None, primary_key=True)


class RunbookEvent(RunEventBase, table=True):
    __tablename__ = "runbook_events"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="runbook_runs.id")


class Problem(ProblemBase, table=True):
    __tablename__ = "problems"
    id: int | None = Field(default=None, primary_key=True)


class ProblemIncident(SQLModel, table=True):
    __tablename__ = "problem_incidents"
    problem_id: int = Field(primary_key=True, foreign_key="problems.id")
    incident_id: int = Field(primary_key=True, foreign_key="incidents.id")


class KnownError(KnownErrorBase, table=True):
    """At most one known error per problem, however many people record a workaround at once."""

    __tablename__ = "known_errors"
    __table_args__ = (Index("one_known_error_per_problem", "problem_id", unique=True),)
    id: int | None = Field(default=None, primary_key=True)


class Review(ReviewBase, table=True):
    __tablename__ = "incident_reviews"
    id: int | None = Field(default=None, primary_key=True)


class SilenceRecord(SilenceBase, table=True):
    __tablename__ = "silences"
    id: int | None = Field(default=None, primary_key=True)


class SwitchRecord(SwitchBase, table=True):
    __tablename__ = "automation_switches"
    id: int | None = Field(default=None, primary_key=True)


class AuditEntry(AuditBase, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)


class Lease(SQLModel, table=True):
    """Who leads: one row per lease. `epoch` goes up with every new holder and every leader write
    checks it (fencing); `renewals` moves on every renewal, so standbys see a live leader without
    comparing clocks; `seq` numbers the leader's commits, so an unclear commit can be told apart."""

    __tablename__ = "leases"
    name: str = Field(primary_key=True)
    holder: str = ""
    epoch: int = 0
    renewals: int = 0
    seq: int = 0
    acquired_at: datetime | None = when(nullable=True)
    renewed_at: datetime | None = when(nullable=True)
    expires_at: datetime | None = when(nullable=True)


class InboxItem(SQLModel, table=True):
    """Input for the leader from anyone (API on any replica, CLI, the remediation executor), kept until
    the leader commits what it caused, in the same transaction that deletes it."""

    __tablename__ = "inbox"
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    actor: str = ""
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = when()


class OutboxItem(SQLModel, table=True):
    """A notification for one sink, written with the decision that caused it, delivered after."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    sink: str
    event: str
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = when()
    due_at: datetime = when(index=True)
    attempts: int = 0
    delivered_at: datetime | None = when(index=True, nullable=True)
    error: str = ""


class SourceState(SQLModel, table=True):
    """A source's saved state: a log source's position, templates, detector baselines; a query's cursor."""

    __tablename__ = "source_state"
    name: str = Field(primary_key=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = when()
