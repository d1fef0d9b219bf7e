"""Remediation changes, runbook runs and their streamed Ansible events.

Status moves are compare-and-set (exactly one caller wins a race); the executor's writes carry the
leader's fence, and each status move it makes goes to the leader's inbox in the same transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, update
from sqlmodel import Session, col, select

from agent.core.domain import ChangeKind, ChangeStatus, Review, RunStatus
from agent.core.events import ChangeDecided, ChangeProgress, ChangeRequested
from agent.core.ledger import FAILED
from agent.core.records import ChangeBase
from agent.errors import InvalidTransition, NotFound
from agent.shell.store import inbox, journal
from agent.shell.store.engine import writing
from agent.shell.store.fence import Fence
from agent.shell.store.search import contains
from agent.shell.store.tables import Change, Incident, RunbookEvent, RunbookRun

_FINISHED_RUN = [RunStatus.RUNNING.value]


class ChangeRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, change_id: int) -> Change:
        with Session(self.engine) as s:
            row = s.get(Change, change_id)
            if row is None:
                raise NotFound(f"no change {change_id}")
            return row

    def list(
        self,
        status: str | None = None,
        incident_id: int | None = None,
        limit: int = 100,
        priority: str | None = None,
        service: str | None = None,
        search: str | None = None,
    ) -> builtins.list[Change]:
        """Newest first; `priority` is the incident's, `search` part of the runbook, rule or reason."""
        with Session(self.engine) as s:
            q = select(Change)
            if status:
                q = q.where(col(Change.status) == status)
            if incident_id is not None:
                q = q.where(col(Change.incident_id) == incident_id)
            if priority:
                of = select(col(Incident.id)).where(col(Incident.priority) == priority)
                q = q.where(col(Change.incident_id).in_(of))
            if service:
                q = q.where(col(Change.service) == service)
            if search:
                q = q.where(contains(search, Change.runbook, Change.rule, Change.reason))
            return list(s.exec(q.order_by(col(Change.id).desc()).limit(limit)).all())

    def created_between(self, since: datetime, until: datetime) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = select(Change).where(col(Change.created_at) >= since, col(Change.created_at) <= until)
            return list(s.exec(q.order_by(col(Change.id))).all())

    def with_status(self, *statuses: ChangeStatus) -> builtins.list[Change]:
        with Session(self.engine) as s:
            q = (
                select(Change)
                .where(col(Change.status).in_([c.value for c in statuses]))
                .order_by(col(Change.id))
            )
            return list(s.exec(q).all())

    def for_guards(
        self, incident_ids: Iterable[int], since: datetime, open_statuses: Iterable[ChangeStatus]
    ) -> builtins.list[Change]:
        """The changes the core's guards need: those of the given incidents, those created since
        `since` (cooldowns), and every open one."""
        wanted = list(incident_ids)
        with Session(self.engine) as s:
            q = select(Change).where(
                col(Change.created_at) >= since,
            )
            rows = {c.id: c for c in s.exec(q).all()}
            q2 = select(Change).where(col(Change.status).in_([c.value for c in open_statuses]))
            rows |= {c.id: c for c in s.exec(q2).all()}
            for i in range(0, len(wanted), 1000):
                q3 = select(Change).where(col(Change.incident_id).in_(wanted[i : i + 1000]))
                rows |= {c.id: c for c in s.exec(q3).all()}
            return sorted(rows.values(), key=lambda c: c.id or 0)

    def failures(self, since: datetime) -> builtins.list[tuple[str, str, datetime]]:
        """(runbook, service, finished_at) of the changes that failed since `since` (circuit breakers)."""
        failed = [s.value for s in FAILED]
        with Session(self.engine) as s:
            q = select(Change.runbook, Change.service, Change.finished_at).where(
                col(Change.status).in_(failed), col(Change.finished_at) >= since
            )
            return [(r, svc, at) for r, svc, at in s.exec(q).all() if at is not None]

    def count_by_status(self) -> dict[str, int]:
        with Session(self.engine) as s:
            return {
                str(st): int(n)
                for st, n in s.exec(
                    select(col(Change.status), func.count()).group_by(col(Change.status))
                ).all()
            }

    def transition(
        self,
        change_id: int,
        allowed_from: Iterable[ChangeStatus],
        to: ChangeStatus,
        fence: Fence | None = None,
        progress: ChangeProgress | None = None,
        **fields: Any,
    ) -> bool:
        """Atomic compare-and-set of the status: exactly one caller wins a race (e.g. two approvals, or the
        executor claiming an approved change), the others get False and change nothing. With `progress`,
        the leader's inbox gets it in the same transaction."""
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            moved = _move(conn, change_id, allowed_from, to, fields)
            if moved and progress is not None:
                inbox.put(conn, progress, progress.at)
            return moved

    def claim(
        self,
        change_id: int,
        fence: Fence,
        at: datetime,
        playbook: str,
        started: Callable[[int], ChangeProgress],
    ) -> int | None:
        """Take an approved change for execution (approved -> running, stamped with the fence's epoch),
        open its first run and tell the inbox (`started(run_id)`), in one transaction; the run's id,
        or None when someone else took it."""
        with writing(self.engine) as conn:
            fence.check(conn)
            fields = {"started_at": at, "epoch": fence.epoch}
            if not _move(conn, change_id, [ChangeStatus.APPROVED], ChangeStatus.RUNNING, fields):
                return None
            run_id = _start_run(conn, change_id, "remediation", playbook, at)
            inbox.put(conn, started(run_id), at)
            return run_id

    def abandon(
        self, change_id: int, fence: Fence, at: datetime, outcome: str, progress: ChangeProgress
    ) -> bool:
        """A change a lost leader left running or verifying: its runs are interrupted, the change failed
        with `outcome` (never re-run: what the runbook did is unknown), and the inbox told."""
        with writing(self.engine) as conn:
            fence.check(conn)
            RunRepo.interrupt(conn, change_id, at)
            fields = {"finished_at": at, "outcome": outcome}
            if not _move(
                conn, change_id, [ChangeStatus.RUNNING, ChangeStatus.VERIFYING], ChangeStatus.FAILED, fields
            ):
                return False
            inbox.put(conn, progress, at)
            return True

    def decide(self, change_id: int, approve: bool, actor: str, at: datetime, note: str = "") -> Change:
        """A person's approval or rejection of a change waiting for one: the decision, its timeline entry,
        its audit line and the leader's inbox event, in one transaction. The approver's note is kept
        beside the original reason (which the agent wrote), never instead of it. An emergency change
        that ran awaiting its retrospective review gets that review instead."""
        with writing(self.engine) as conn:
            current = conn.execute(
                select(col(Change.incident_id), col(Change.review)).where(col(Change.id) == change_id)
            ).first()
            if current is None:
                raise NotFound(f"no change {change_id}")
            if current[1] == Review.PENDING:
                _review(conn, change_id, current[0], approve, actor, at, note)
            else:
                _decide(conn, change_id, current[0], approve, actor, at, note)
        return self.get(change_id)

    def request(self, origin_id: int, kind: ChangeKind, actor: str, at: datetime, note: str = "") -> int:
        """A person asks to retry or roll back change `origin_id`: checked against what the store knows
        now (NotFound, InvalidTransition), then put in the leader's inbox with the change as it stands;
        the core makes the new change (or says in the timeline why not). Returns the inbox item."""
        origin = self.get(origin_id)
        status = ChangeStatus(origin.status)
        if not status.final:
            raise InvalidTransition(f"change {origin_id} is {status}; wait until it has finished")
        if kind is ChangeKind.ROLLBACK:
            if status not in (ChangeStatus.SUCCEEDED, ChangeStatus.FAILED):
                raise InvalidTransition(
                    f"change {origin_id} is {status}; only a change that ran can be rolled back"
                )
            if not origin.rollback_playbook:
                raise InvalidTransition(f"runbook {origin.runbook} has no rollback playbook in the catalog")
            if origin.kind == ChangeKind.ROLLBACK:
                raise InvalidTransition(
                    f"change {origin_id} is a rollback; retry the change it rolled back instead"
                )
        record = ChangeBase.model_validate(origin.model_dump())
        with writing(self.engine) as conn:
            return inbox.put(conn, ChangeRequested(kind, origin_id, record, actor, note), at)

    def made_from(self, origin_id: int, since: datetime) -> Change | None:
        """The newest change made since `since` as a retry or rollback of `origin_id`."""
        with Session(self.engine) as s:
            q = (
                select(Change)
                .where(col(Change.origin_id) == origin_id, col(Change.created_at) >= since)
                .order_by(col(Change.id).desc())
            )
            return s.exec(q).first()


def _decide(
    conn: Connection, change_id: int, incident_id: int, approve: bool, actor: str, at: datetime, note: str
) -> None:
    to = ChangeStatus.APPROVED if approve else ChangeStatus.REJECTED
    verb = "approved" if approve else "rejected"
    fields: dict[str, Any] = {"decided_at": at, "decided_by": actor, "decision_note": note}
    if not _move(conn, change_id, [ChangeStatus.AWAITING_APPROVAL], to, fields):
        status = conn.execute(select(col(Change.status)).where(col(Change.id) == change_id)).scalar_one()
        raise InvalidTransition(
            f"change {change_id} is {status}; only changes awaiting approval can be {verb}"
        )
    reason = f"change #{change_id} {verb} by {actor}" + (f": {note}" if note else "")
    journal.timeline(
        conn, incident_id, at, f"change_{verb}", actor, reason, {"change_id": change_id, "note": note}
    )
    action = "change.approve" if approve else "change.reject"
    journal.audit(conn, at, actor, action, f"change:{change_id}", {"note": note})
    inbox.put(conn, ChangeDecided(change_id, approve, actor), at)


def _review(
    conn: Connection, change_id: int, incident_id: int, approve: bool, actor: str, at: datetime, note: str
) -> None:
    """The retrospective review of an emergency change (which ran before anyone approved it)."""
    review = Review.APPROVED if approve else Review.REJECTED
    done = conn.execute(
        update(Change)
        .where(col(Change.id) == change_id, col(Change.review) == Review.PENDING.value)
        .values(review=review.value, reviewed_by=actor, reviewed_at=at, review_note=note)
    ).rowcount
    if not done:
        raise InvalidTransition(f"change {change_id} has already been reviewed")
    reason = f"emergency change #{change_id} {review.value} in retrospective review by {actor}" + (
        f": {note}" if note else ""
    )
    journal.timeline(
        conn, incident_id, at, "change_reviewed", actor, reason, {"change_id": change_id, "note": note}
    )
    journal.audit(conn, at, actor, f"change.review.{review.value}", f"change:{change_id}", {"note": note})


def _move(
    conn: Connection,
    change_id: int,
    allowed_from: Iterable[ChangeStatus],
    to: ChangeStatus,
    fields: dict[str, Any],
) -> bool:
    result = conn.execute(
        update(Change)
        .where(col(Change.id) == change_id, col(Change.status).in_([c.value for c in allowed_from]))
        .values(status=to, **fields)
    )
    return bool(result.rowcount == 1)


def _start_run(conn: Connection, change_id: int, kind: str, playbook: str, at: datetime) -> int:
    result = conn.execute(
        insert(RunbookRun)
        .values(
            change_id=change_id, kind=kind, playbook=playbook, status=RunStatus.RUNNING.value, started_at=at
        )
        .returning(col(RunbookRun.id))
    )
    return int(result.scalar_one() or 0)


class RunRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def start(
        self,
        change_id: int,
        kind: str,
        playbook: str,
        at: datetime,
        fence: Fence | None = None,
        started: Callable[[int], ChangeProgress] | None = None,
    ) -> int:
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            run_id = _start_run(conn, change_id, kind, playbook, at)
            if started is not None:
                inbox.put(conn, started(run_id), at)
            return run_id

    def add_event(self, event: RunbookEvent, fence: Fence | None = None) -> None:
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            conn.execute(insert(RunbookEvent).values(**event.model_dump(exclude={"id"})))

    def finish(
        self,
        run_id: int,
        status: str,
        rc: int | None,
        at: datetime,
        stdout: str,
        failed_tasks: builtins.list[str],
        fence: Fence | None = None,
        progress: ChangeProgress | None = None,
    ) -> None:
        with writing(self.engine) as conn:
            if fence is not None:
                fence.check(conn)
            started = conn.execute(
                select(col(RunbookRun.started_at)).where(col(RunbookRun.id) == run_id)
            ).scalar_one_or_none()
            if started is None:
                raise NotFound(f"no run {run_id}")
            conn.execute(
                update(RunbookRun)
                .where(col(RunbookRun.id) == run_id)
                .values(
                    status=status,
                    rc=rc,
                    finished_at=at,
                    duration_s=(at - started).total_seconds(),
                    stdout=stdout,
                    failed_tasks=failed_tasks,
                )
            )
            if progress is not None:
                inbox.put(conn, progress, at)

    def for_change(self, change_id: int) -> builtins.list[RunbookRun]:
        with Session(self.engine) as s:
            q = select(RunbookRun).where(col(RunbookRun.change_id) == change_id).order_by(col(RunbookRun.id))
            return list(s.exec(q).all())

    def events(self, run_id: int) -> builtins.list[RunbookEvent]:
        with Session(self.engine) as s:
            q = select(RunbookEvent).where(RunbookEvent.run_id == run_id).order_by(col(RunbookEvent.seq))
            return list(s.exec(q).all())

    @staticmethod
    def interrupt(conn: Connection, change_id: int, at: datetime) -> int:
        """Mark the change's runs that were left running as interrupted (their outcome is unknown)."""
        rows = conn.execute(
            select(col(RunbookRun.id), col(RunbookRun.started_at)).where(
                col(RunbookRun.change_id) == change_id, col(RunbookRun.status).in_(_FINISHED_RUN)
            )
        ).all()
        for run_id, started in rows:
            conn.execute(
                update(RunbookRun)
                .where(col(RunbookRun.id) == run_id)
                .values(
                    status=RunStatus.INTERRUPTED.value,
                    finished_at=at,
                    duration_s=(at - started).total_seconds(),
                )
            )
        return len(rows)
