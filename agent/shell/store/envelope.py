"""Silences and the kill switch's log: written by people (CLI, API), each write audited in its own
transaction; read by the leader on every housekeeping tick and by `aiops automation status`."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, insert, update
from sqlmodel import Session, col, select

from agent.core.envelope import Matcher, Silence, Switch
from agent.errors import InvalidTransition, NotFound
from agent.shell.store import journal
from agent.shell.store.engine import writing
from agent.shell.store.tables import SilenceRecord, SwitchRecord


def silence(row: SilenceRecord) -> Silence:
    return Silence(
        id=row.id or 0,
        matchers=tuple(Matcher.of(m["name"], m["op"], m["value"]) for m in row.matchers),  # type: ignore[arg-type]
        starts_at=row.starts_at,
        ends_at=row.expired_at or row.ends_at,
        author=row.created_by,
        comment=row.comment,
    )


def switch(row: SwitchRecord) -> Switch:
    return Switch(row.kind, row.service, row.runbook, row.reason, row.actor, row.at)  # type: ignore[arg-type]


class SilenceRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(
        self,
        matchers: Sequence[Matcher],
        starts_at: datetime,
        ends_at: datetime,
        actor: str,
        comment: str,
        now: datetime,
    ) -> SilenceRecord:
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= starts_at or ends_at <= now:
            raise ValueError("a silence must end after it starts and in the future")
        fields = {
            "matchers": [{"name": m.name, "op": m.op, "value": m.value} for m in matchers],
            "starts_at": starts_at,
            "ends_at": ends_at,
            "created_by": actor,
            "comment": comment,
            "created_at": now,
        }
        with writing(self.engine) as conn:
            sid = conn.execute(
                insert(SilenceRecord).values(**fields).returning(col(SilenceRecord.id))
            ).scalar_one()
            assert sid is not None
            details = {
                "matchers": [str(m) for m in matchers],
                "ends_at": ends_at.isoformat(),
                "comment": comment,
            }
            journal.audit(conn, now, actor, "silence.add", f"silence:{sid}", details)
        return self.get(sid)

    def get(self, silence_id: int) -> SilenceRecord:
        with Session(self.engine) as s:
            row = s.get(SilenceRecord, silence_id)
            if row is None:
                raise NotFound(f"no silence {silence_id}")
            return row

    def list(self, now: datetime, include_ended: bool = False) -> builtins.list[SilenceRecord]:
        """Silences in force or still to come (and with `include_ended`, the ended ones), newest first."""
        with Session(self.engine) as s:
            q = select(SilenceRecord)
            if not include_ended:
                q = q.where(col(SilenceRecord.expired_at).is_(None), col(SilenceRecord.ends_at) > now)
            return list(s.exec(q.order_by(col(SilenceRecord.id).desc())).all())

    def current(self, now: datetime) -> builtins.list[Silence]:
        return [silence(r) for r in self.list(now)]

    def expire(self, silence_id: int, actor: str, now: datetime) -> SilenceRecord:
        with writing(self.engine) as conn:
            done = conn.execute(
                update(SilenceRecord)
                .where(
                    col(SilenceRecord.id) == silence_id,
                    col(SilenceRecord.expired_at).is_(None),
                    col(SilenceRecord.ends_at) > now,
                )
                .values(expired_at=now, expired_by=actor)
            ).rowcount
            if not done:
                self.get(silence_id)  # NotFound for an unknown id
                raise InvalidTransition(f"silence {silence_id} has already ended")
            journal.audit(conn, now, actor, "silence.expire", f"silence:{silence_id}", {})
        return self.get(silence_id)


class SwitchRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, switch: Switch) -> SwitchRecord:
        action = f"automation.{switch.kind}"
        target = f"service:{switch.service}" if switch.service else "automation"
        details = {"reason": switch.reason, **({"runbook": switch.runbook} if switch.runbook else {})}
        with writing(self.engine) as conn:
            sid = conn.execute(
                insert(SwitchRecord)
                .values(
                    kind=switch.kind,
                    service=switch.service,
                    runbook=switch.runbook,
                    reason=switch.reason,
                    actor=switch.actor,
                    at=switch.at,
                )
                .returning(col(SwitchRecord.id))
            ).scalar_one()
            journal.audit(conn, switch.at, switch.actor, action, target, details)
        with Session(self.engine) as s:
            row = s.get(SwitchRecord, sid)
            assert row is not None
            return row

    def current(self) -> builtins.list[Switch]:
        """The latest pause and the latest resume of each scope, oldest first: all that decides what is
        paused and which failures a circuit breaker still counts, however long the log grows."""
        with Session(self.engine) as s:
            latest = (
                select(func.max(SwitchRecord.id))
                .group_by(col(SwitchRecord.kind), col(SwitchRecord.service), col(SwitchRecord.runbook))
                .scalar_subquery()
            )
            rows = s.exec(
                select(SwitchRecord)
                .where(col(SwitchRecord.id).in_(latest))
                .order_by(col(SwitchRecord.at), col(SwitchRecord.id))
            ).all()
            return [switch(r) for r in rows]

    def log_until(self, until: datetime) -> builtins.list[Switch]:
        """Every switch made until `until`, oldest first (what a replay of that time applies)."""
        with Session(self.engine) as s:
            q = (
                select(SwitchRecord)
                .where(col(SwitchRecord.at) <= until)
                .order_by(col(SwitchRecord.at), col(SwitchRecord.id))
            )
            return [switch(r) for r in s.exec(q).all()]

    def log(self, limit: int = 50) -> builtins.list[SwitchRecord]:
        """The newest uses of the kill switch, newest first."""
        with Session(self.engine) as s:
            q = select(SwitchRecord).order_by(col(SwitchRecord.id).desc()).limit(limit)
            return list(s.exec(q).all())
