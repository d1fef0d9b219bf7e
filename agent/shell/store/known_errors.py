"""The problem manager's writes: promoting a candidate to a problem, recording its root cause and
workaround (which makes it a known error), each in one transaction with its audit entries; and the
known errors, read by people and by the leader for its core.

These are people's fields (status, owner, title, root cause, workaround): the core never writes them
(it only counts occurrences and moves `last_seen`), so they are written here directly, each guarded by a
conditional UPDATE on the status it expects rather than a check that could race another person.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.core.known_errors import KnownError as KnownErrorRef
from agent.core.known_errors import narrowed
from agent.errors import InvalidTransition, NotFound
from agent.shell.store import journal
from agent.shell.store.engine import writing
from agent.shell.store.problems import ProblemRepo
from agent.shell.store.tables import KnownError, Problem, ProblemIncident, SignalRecord

CANDIDATE, PROBLEM, KNOWN_ERROR = "candidate", "problem", "known_error"
PROBLEM_STATUSES = (CANDIDATE, PROBLEM, KNOWN_ERROR)
ProblemStatus = Literal["candidate", "problem", "known_error"]


def known_error_ref(row: KnownError) -> KnownErrorRef:
    signatures = tuple(row.signatures or ()) or (row.signature,)
    return KnownErrorRef(row.id or 0, signatures, row.title, row.workaround, row.workaround_runbook)


class KnownErrorRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def list(self, limit: int = 500) -> builtins.list[KnownError]:
        """Newest first."""
        with Session(self.engine) as s:
            q = select(KnownError).order_by(col(KnownError.id).desc()).limit(limit)
            return list(s.exec(q).all())

    def get(self, known_error_id: int) -> KnownError:
        with Session(self.engine) as s:
            row = s.get(KnownError, known_error_id)
            if row is None:
                raise NotFound(f"no known error {known_error_id}")
            return row

    def current(self) -> builtins.list[KnownErrorRef]:
        """Every known error, as the core matches them."""
        return [known_error_ref(r) for r in self.list(limit=100_000)]

    def promote(self, problem_id: int, owner: str, title: str, actor: str, now: datetime) -> Problem:
        """The candidate becomes a problem that `owner` takes on (with `title`, or the candidate's)."""
        with writing(self.engine) as conn:
            row = _problem(conn, problem_id)
            values: dict[str, Any] = {"status": PROBLEM, "owner": owner, "updated_at": now}
            if title:
                values["title"] = title
            moved = conn.execute(
                update(Problem)
                .where(col(Problem.id) == problem_id, col(Problem.status) == CANDIDATE)
                .values(values)
            )
            if moved.rowcount != 1:
                raise InvalidTransition(
                    f"problem {problem_id} is already a {row.status.replace('_', ' ')}; "
                    "only a candidate can be promoted"
                )
            details = {"owner": owner, "title": values.get("title", row.title)}
            journal.audit(conn, now, actor, "problem.promote", f"problem:{problem_id}", details)
        return ProblemRepo(self.engine).get(problem_id)

    def record(
        self,
        problem_id: int,
        root_cause: str | None,
        workaround: str | None,
        runbook: str | None,
        actor: str,
        now: datetime,
    ) -> Problem:
        """Record what is known of a problem (None: unchanged). Once it has a workaround it is a known
        error: the first time, a known error is created for its signature; later, that one is updated."""
        with self._writing(problem_id) as conn:
            row = _problem(conn, problem_id)
            if row.status == CANDIDATE:
                raise InvalidTransition(
                    f"problem {problem_id} is a candidate; promote it first (aiops problems promote {problem_id})"
                )
            given = {"root_cause": root_cause, "workaround": workaround}
            values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            known_workaround = values.get("workaround", row.workaround)
            known_runbook = runbook
            if row.known_error_id is not None and runbook is None:
                known_runbook = _runbook_of(conn, row.known_error_id)
            if known_runbook and not known_workaround:
                raise ValueError("a workaround runbook needs a workaround: say what it does (--workaround)")
            values["updated_at"] = now
            details: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            if runbook is not None:
                details["workaround_runbook"] = runbook
            kept = {
                "title": row.title,
                "root_cause": values.get("root_cause", row.root_cause),
                "workaround": known_workaround,
                "workaround_runbook": known_runbook or "",
            }
            if row.known_error_id is not None:
                conn.execute(update(KnownError).where(col(KnownError.id) == row.known_error_id).values(kept))
                journal.audit(
                    conn, now, actor, "known_error.update", f"known_error:{row.known_error_id}", details
                )
            elif known_workaround:
                known_id = conn.execute(
                    insert(KnownError)
                    .values(
                        signature=row.signature,
                        signatures=_match_keys(conn, problem_id, list(row.signatures or [row.signature])),
                        problem_id=problem_id,
                        created_at=now,
                        created_by=actor,
                        **kept,
                    )
                    .returning(col(KnownError.id))
                ).scalar_one()
                values |= {"status": KNOWN_ERROR, "known_error_id": known_id}
                journal.audit(
                    conn,
                    now,
                    actor,
                    "known_error.create",
                    f"known_error:{known_id}",
                    {"problem_id": problem_id},
                )
            moved = conn.execute(
                update(Problem)
                .where(col(Problem.id) == problem_id, col(Problem.status) == row.status)
                .values(values)
            )
            if moved.rowcount != 1:
                raise InvalidTransition(f"problem {problem_id} changed meanwhile; look at it again")
            journal.audit(conn, now, actor, "problem.update", f"problem:{problem_id}", details)
        return ProblemRepo(self.engine).get(problem_id)

    @contextmanager
    def _writing(self, problem_id: int) -> Iterator[Connection]:
        """A write transaction in which a second known error for the problem (someone recording one at
        the same moment) is a conflict to report, not a store failure."""
        try:
            with writing(self.engine) as conn:
                yield conn
        except IntegrityError:
            raise InvalidTransition(
                f"problem {problem_id} got a known error meanwhile; look at it again"
            ) from None


def _problem(conn: Connection, problem_id: int) -> Problem:
    table = Problem.__table__  # type: ignore[attr-defined]
    found = conn.execute(table.select().where(table.c.id == problem_id)).mappings().one_or_none()
    if found is None:
        raise NotFound(f"no problem {problem_id}")
    return Problem.model_validate(dict(found))


def _runbook_of(conn: Connection, known_error_id: int) -> str:
    table = KnownError.__table__  # type: ignore[attr-defined]
    found = conn.execute(table.select().where(table.c.id == known_error_id)).mappings().one_or_none()
    return str(found["workaround_runbook"]) if found is not None else ""


def _match_keys(conn: Connection, problem_id: int, signatures: list[str]) -> list[str]:
    """What a problem's known error matches: each of its signatures (a co-occurrence has several),
    narrowed to the log templates its incidents' signals showed (agent.core.known_errors)."""
    q = (
        select(SignalRecord.service, SignalRecord.name, SignalRecord.labels)
        .join(ProblemIncident, col(ProblemIncident.incident_id) == col(SignalRecord.incident_id))
        .where(ProblemIncident.problem_id == problem_id)
    )
    templates: dict[str, set[str]] = {}
    for service, name, labels in conn.execute(q).all():
        signature = f"{service}:{name}"
        key = narrowed(signature, labels or {})
        if key is not None and signature in signatures:
            templates.setdefault(signature, set()).add(key)
    return [key for signature in signatures for key in sorted(templates.get(signature, {signature}))]
