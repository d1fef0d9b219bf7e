"""Saved source state: log positions, templates and detector baselines, query cursors. Written by the
leader with the decisions the source's data caused; read by whichever agent leads next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import col

from agent.shell.store.engine import writing
from agent.shell.store.tables import SourceState
from agent.shell.store.upsert import upsert


class SourceStateRepo:
    def __init__(self, engine: Engine):
        self.engine = engine

    def all(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {
                name: dict(data)
                for name, data in conn.execute(select(col(SourceState.name), col(SourceState.data)))
            }

    def put(self, name: str, data: dict[str, Any], at: datetime) -> None:
        with writing(self.engine) as conn:
            upsert(conn, SourceState, ["name"], [{"name": name, "data": data, "updated_at": at}])
