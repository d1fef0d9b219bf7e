"""The incident store, the source of truth: SQLModel tables behind small repositories, SQLite (WAL) or
PostgreSQL, and the committer that writes the core's decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from agent.core.engine import WorkingSet
from agent.core.ledger import OPEN
from agent.shell.store.changes import ChangeRepo, RunRepo
from agent.shell.store.closing import ClosingRepo
from agent.shell.store.commit import Committer
from agent.shell.store.engine import make_engine, migrate
from agent.shell.store.envelope import SilenceRepo, SwitchRepo
from agent.shell.store.fence import Fence
from agent.shell.store.inbox import InboxRepo
from agent.shell.store.incidents import IncidentRepo
from agent.shell.store.known_errors import KnownErrorRepo
from agent.shell.store.outbox import OutboxRepo
from agent.shell.store.problems import AuditRepo, ProblemRepo
from agent.shell.store.sources import SourceStateRepo


@dataclass
class Store:
    engine: Engine
    incidents: IncidentRepo
    changes: ChangeRepo
    runs: RunRepo
    problems: ProblemRepo
    audit: AuditRepo
    inbox: InboxRepo
    outbox: OutboxRepo
    sources: SourceStateRepo
    silences: SilenceRepo
    closing: ClosingRepo
    switches: SwitchRepo
    known_errors: KnownErrorRepo

    @classmethod
    def open(cls, url: str, create: bool = True) -> Store:
        """Connect and bring the schema to this agent's version (raises StoreError when it cannot);
        with `create` False, a SQLite file must already exist."""
        engine = make_engine(url, create)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()  # a refused store must not keep a connection open
            raise
        return cls(
            engine=engine,
            incidents=IncidentRepo(engine),
            changes=ChangeRepo(engine),
            runs=RunRepo(engine),
            problems=ProblemRepo(engine),
            audit=AuditRepo(engine),
            inbox=InboxRepo(engine),
            outbox=OutboxRepo(engine),
            sources=SourceStateRepo(engine),
            silences=SilenceRepo(engine),
            closing=ClosingRepo(engine),
            switches=SwitchRepo(engine),
            known_errors=KnownErrorRepo(engine),
        )

    @property
    def sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def committer(self, routes: Mapping[str, Sequence[str]], fence: Fence | None) -> Committer:
        return Committer(self.engine, routes, fence)

    def working_set(
        self, now: datetime, reopen_window: timedelta, horizon: timedelta, problems: timedelta
    ) -> WorkingSet:
        """What the core needs to start: a few indexed queries, never a scan of the whole history
        (`horizon`: how far back the core's guards, budgets and breakers look at changes; `problems`:
        how far back problem candidates count openings)."""
        incidents = self.incidents.working_set(now - reopen_window)
        ids = [i.id for i in incidents if i.id is not None]
        return WorkingSet(
            incidents=incidents,
            changes=list(self.changes.for_guards(ids, now - horizon, OPEN)),
            openings=self.incidents.openings(now - problems),
            sources=self.sources.all(),
            silences=self.silences.current(now),
            switches=self.switches.current(),
            known_errors=self.known_errors.current(),
        )

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Store"]
