"""The incident store: SQLModel tables behind small repositories, SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from agent.store.changes import ChangeRepo, RunRepo
from agent.store.engine import make_engine, migrate
from agent.store.incidents import IncidentRepo
from agent.store.problems import AuditRepo, ProblemRepo


@dataclass
class Store:
    engine: Engine
    incidents: IncidentRepo
    changes: ChangeRepo
    runs: RunRepo
    problems: ProblemRepo
    audit: AuditRepo

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema to this agent's version (raises StoreError when it cannot)."""
        engine = make_engine(url)
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
