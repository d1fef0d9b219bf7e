"""Reading problem candidates and problems, and the audit log."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert
from sqlmodel import Session, col, select

from agent.errors import NotFound
from agent.shell.store.engine import writing
from agent.shell.store.tables import AuditEntry, Change, Incident, Problem, ProblemIncident


class ProblemRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def list(self, status: str | None = None, limit: int = 100) -> builtins.list[Problem]:
        with Session(self.engine) as s:
            q = select(Problem)
            if status:
                q = q.where(Problem.status == status)
            return list(s.exec(q.order_by(col(Problem.last_seen).desc()).limit(limit)).all())

    def get(self, problem_id: int) -> Problem:
        with Session(self.engine) as s:
            row = s.get(Problem, problem_id)
            if row is None:
                raise NotFound(f"no problem {problem_id}")
            return row

    def count_by_status(self) -> dict[str, int]:
        with Session(self.engine) as s:
            q = select(Problem.status, func.count()).group_by(col(Problem.status))
            return {status: int(n) for status, n in s.exec(q).all()}

    def incidents(self, problem_id: int) -> builtins.list[Incident]:
        with Session(self.engine) as s:
            q = (
                select(Incident)
                .join(ProblemIncident, col(ProblemIncident.incident_id) == col(Incident.id))
                .where(ProblemIncident.problem_id == problem_id)
                .order_by(col(Incident.opened_at))
            )
            return list(s.exec(q).all())

    def costing(
        self, problem_ids: Collection[int]
    ) -> tuple[dict[int, builtins.list[Incident]], dict[int, builtins.list[Change]]]:
        """What the problems' costs are computed from, in two queries however many problems: each
        problem's incidents (oldest first) and each of those incidents' changes."""
        incidents: dict[int, builtins.list[Incident]] = {p: [] for p in problem_ids}
        changes: dict[int, builtins.list[Change]] = {}
        if not incidents:
            return incidents, changes
        with Session(self.engine) as s:
            q = (
                select(ProblemIncident.problem_id, Incident)
                .join(Incident, col(ProblemIncident.incident_id) == col(Incident.id))
                .where(col(ProblemIncident.problem_id).in_(list(incidents)))
                .order_by(col(Incident.opened_at))
            )
            for problem_id, incident in s.exec(q).all():
                incidents[problem_id].append(incident)
            linked = select(col(ProblemIncident.incident_id)).where(
                col(ProblemIncident.problem_id).in_(list(incidents))
            )
            for change in s.exec(select(Change).where(col(Change.incident_id).in_(linked))).all():
                changes.setdefault(change.incident_id, []).append(change)
        return incidents, changes


class AuditRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(
        self, at: datetime, actor: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                insert(AuditEntry).values(
                    at=at, actor=actor, action=action, target=target, details=details or {}
                )
            )

    def list(
        self,
        limit: int = 100,
        since: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> builtins.list[AuditEntry]:
        """Newest first; `action` matches itself and what it prefixes (`change` finds change.approve)."""
        with Session(self.engine) as s:
            q = select(AuditEntry)
            if since is not None:
                q = q.where(col(AuditEntry.at) >= since)
            if actor:
                q = q.where(col(AuditEntry.actor) == actor)
            if action:
                q = q.where(
                    (col(AuditEntry.action) == action) | col(AuditEntry.action).startswith(f"{action}.")
                )
            return list(s.exec(q.order_by(col(AuditEntry.id).desc()).limit(limit)).all())

    def last(self, action: str) -> AuditEntry | None:
        with Session(self.engine) as s:
            q = select(AuditEntry).where(col(AuditEntry.action) == action).order_by(col(AuditEntry.id).desc())
            return s.exec(q).first()
