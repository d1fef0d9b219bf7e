"""Persistence of problem candidates, problems, known errors and the audit log."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.errors import NotFound
from agent.store.tables import AuditEntry, Incident, Problem, ProblemIncident


class ProblemRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record_recurrence(
        self, signature: str, service: str, title: str, incident_ids: Iterable[int], at: datetime
    ) -> tuple[Problem, bool]:
        """Create or update the candidate for `signature`, link the incidents; returns (problem, created)."""
        ids = sorted(set(incident_ids))
        with Session(self.engine) as s:
            problem = s.exec(select(Problem).where(Problem.signature == signature)).first()
            created = problem is None
            if problem is None:
                problem = Problem(
                    signature=signature,
                    service=service,
                    title=title,
                    first_seen=at,
                    last_seen=at,
                    created_at=at,
                    updated_at=at,
                )
                s.add(problem)
                s.flush()
            assert problem.id is not None
            linked = set(
                s.exec(
                    select(ProblemIncident.incident_id).where(ProblemIncident.problem_id == problem.id)
                ).all()
            )
            for iid in ids:
                if iid not in linked:
                    s.add(ProblemIncident(problem_id=problem.id, incident_id=iid))
                    inc = s.get(Incident, iid)
                    if inc is not None:
                        inc.problem_id = problem.id
                        s.add(inc)
            problem.occurrences = len(linked | set(ids))
            problem.last_seen = at
            problem.updated_at = at
            s.add(problem)
            s.commit()
            s.refresh(problem)
            return problem, created

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

    def incidents(self, problem_id: int) -> builtins.list[Incident]:
        with Session(self.engine) as s:
            q = (
                select(Incident)
                .join(ProblemIncident, col(ProblemIncident.incident_id) == col(Incident.id))
                .where(ProblemIncident.problem_id == problem_id)
                .order_by(col(Incident.opened_at))
            )
            return list(s.exec(q).all())


class AuditRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(
        self, at: datetime, actor: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        with Session(self.engine) as s:
            s.add(AuditEntry(at=at, actor=actor, action=action, target=target, details=details or {}))
            s.commit()

    def list(self, limit: int = 100) -> builtins.list[AuditEntry]:
        with Session(self.engine) as s:
            return list(s.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)).all())
