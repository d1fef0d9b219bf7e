"""Persistence of remediation changes, runbook runs and their streamed Ansible events."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from agent.domain import ChangeStatus, RunStatus
from agent.errors import InvalidTransition, NotFound
from agent.store.tables import Change, RunbookEvent, RunbookRun

_PENDING = [
    ChangeStatus.AWAITING_APPROVAL,
    ChangeStatus.APPROVED,
    ChangeStatus.RUNNING,
    ChangeStatus.VERIFYING,
]


class ChangeRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, change: Change) -> Change:
        with Session(self.engine) as s:
            s.add(change)
            s.commit()
            s.refresh(change)
            return change

    def get(self, change_id: int) -> Change:
        with Session(self.engine) as s:
            row = s.get(Change, change_id)
            if row is None:
                raise NotFound(f"no change {change_id}")
            return row

    def list(
        self, status: str | None = None, incident_id: int | None = None, limit: int = 100
    ) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = select(Change)
            if status:
                q = q.where(Change.status == status)
            if incident_id is not None:
                q = q.where(Change.incident_id == incident_id)
            return list(s.exec(q.order_by(col(Change.id).desc()).limit(limit)).all())

    def created_between(self, since: datetime, until: datetime) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = select(Change).where(col(Change.created_at) >= since, col(Change.created_at) <= until)
            return list(s.exec(q.order_by(col(Change.id))).all())

    def transition(
        self, change_id: int, allowed_from: Iterable[ChangeStatus], to: ChangeStatus, **fields: Any
    ) -> bool:
        """Atomic compare-and-set of the status: exactly one caller wins a race (e.g. two approvals, or the
        executor claiming an approved change), the others get False and do nothing."""
        with Session(self.engine) as s:
            stmt = (
                update(Change)
                .where(col(Change.id) == change_id, col(Change.status).in_([c.value for c in allowed_from]))
                .values(status=to.value, **fields)
            )
            result = s.exec(stmt)  # type: ignore[call-overload]
            s.commit()
            return bool(result.rowcount == 1)

    def decide(self, change_id: int, approve: bool, actor: str, at: datetime, note: str = "") -> Change:
        """A human's approval or rejection of a change waiting for one."""
        to = ChangeStatus.APPROVED if approve else ChangeStatus.REJECTED
        fields: dict[str, Any] = {"decided_at": at, "decided_by": actor}
        if note:
            fields["reason"] = note
        if not self.transition(change_id, [ChangeStatus.AWAITING_APPROVAL], to, **fields):
            current = self.get(change_id)
            raise InvalidTransition(
                f"change {change_id} is {current.status}; only changes awaiting approval can be "
                f"{'approved' if approve else 'rejected'}"
            )
        return self.get(change_id)

    def pending_for_incident(self, incident_id: int) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = select(Change).where(
                Change.incident_id == incident_id, col(Change.status).in_([c.value for c in _PENDING])
            )
            return list(s.exec(q).all())

    def with_status(self, *statuses: ChangeStatus) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = (
                select(Change)
                .where(col(Change.status).in_([c.value for c in statuses]))
                .order_by(col(Change.id))
            )
            return list(s.exec(q).all())

    def last_for(self, rule: str, service: str) -> Change | None:
        """Most recent change a rule made for a service, excluding rejected and cancelled ones (cooldown)."""
        skip = [ChangeStatus.REJECTED.value, ChangeStatus.CANCELLED.value]
        with Session(self.engine) as s:
            q = (
                select(Change)
                .where(Change.rule == rule, Change.service == service, col(Change.status).not_in(skip))
                .order_by(col(Change.created_at).desc())
                .limit(1)
            )
            return s.exec(q).first()

    def attempts(self, incident_id: int, rule: str) -> int:
        skip = [ChangeStatus.REJECTED.value, ChangeStatus.CANCELLED.value, ChangeStatus.DRY_RUN.value]
        with Session(self.engine) as s:
            q = select(func.count()).where(
                Change.incident_id == incident_id, Change.rule == rule, col(Change.status).not_in(skip)
            )
            return int(s.exec(q).one())

    def count_by_status(self) -> dict[str, int]:
        with Session(self.engine) as s:
            return {
                st: int(n)
                for st, n in s.exec(select(Change.status, func.count()).group_by(Change.status)).all()
            }


class RunRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def start(self, change_id: int, kind: str, playbook: str, at: datetime) -> int:
        with Session(self.engine) as s:
            run = RunbookRun(
                change_id=change_id, kind=kind, playbook=playbook, status=RunStatus.RUNNING, started_at=at
            )
            s.add(run)
            s.commit()
            assert run.id is not None
            return run.id

    def add_event(self, event: RunbookEvent) -> None:
        with Session(self.engine) as s:
            s.add(event)
            s.commit()

    def finish(
        self, run_id: int, status: str, rc: int | None, at: datetime, stdout: str, failed_tasks: list[str]
    ) -> None:
        with Session(self.engine) as s:
            run = s.get(RunbookRun, run_id)
            if run is None:
                raise NotFound(f"no run {run_id}")
            run.status = status
            run.rc = rc
            run.finished_at = at
            run.duration_s = (at - run.started_at).total_seconds()
            run.stdout = stdout
            run.failed_tasks = failed_tasks
            s.add(run)
            s.commit()

    def for_change(self, change_id: int) -> builtins.list[RunbookRun]:
        with Session(self.engine) as s:
            q = select(RunbookRun).where(RunbookRun.change_id == change_id).order_by(col(RunbookRun.id))
            return list(s.exec(q).all())

    def events(self, run_id: int) -> builtins.list[RunbookEvent]:
        with Session(self.engine) as s:
            q = select(RunbookEvent).where(RunbookEvent.run_id == run_id).order_by(col(RunbookEvent.seq))
            return list(s.exec(q).all())

    def interrupt_running(self, at: datetime) -> builtins.list[RunbookRun]:
        """Mark runs a previous process left running; their outcome is unknown."""
        with Session(self.engine, expire_on_commit=False) as s:
            runs = list(s.exec(select(RunbookRun).where(RunbookRun.status == RunStatus.RUNNING.value)).all())
            for run in runs:
                run.status = RunStatus.INTERRUPTED.value
                run.finished_at = at
                run.duration_s = (at - run.started_at).total_seconds()
                s.add(run)
            s.commit()
            return runs
