"""Opening the store: engine settings per backend, and the versioned schema."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, create_engine, select

from agent.errors import StoreError
from agent.store import tables

log = logging.getLogger(__name__)


# Ordered schema changes. A fresh store is created at the newest version directly; an older store is
# brought forward by running the migrations after its recorded version, each in its own transaction.
# Append new entries (index + 2 is their version); never edit released ones.
def _v2_signal_evidence(conn: Connection) -> None:
    """Signals keep their evidence beyond numbers (a log template, sample lines)."""
    conn.execute(text("ALTER TABLE signals ADD COLUMN evidence JSON"))


MIGRATIONS: list[Callable[[Connection], None]] = [_v2_signal_evidence]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def make_engine(url: str) -> Engine:
    """SQLite gets WAL, a busy timeout and foreign keys; every backend gets pre-ping for long-running agents."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise StoreError(f"cannot use store URL {redact_db_url(url)}: {e}") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def redact_db_url(url: str) -> str:
    """Hide the password of `scheme://user:password@host/db` before it reaches a log or an error."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    cred, _, rest = tail.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}:***@{rest}"


def migrate(engine: Engine) -> int:
    """Create or upgrade the schema; refuses a store written by a newer agent. Returns the version."""
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            if tables.SchemaVersion.__tablename__ not in existing:
                if existing & set(SQLModel.metadata.tables):
                    raise StoreError(
                        "store has aiops tables but no schema_version; refusing to guess its version"
                    )
                SQLModel.metadata.create_all(conn)
                conn.execute(insert(tables.SchemaVersion).values(version=SCHEMA_VERSION, applied_at=_now()))
                log.info("store created at schema version %d", SCHEMA_VERSION)
                return SCHEMA_VERSION
            current = conn.execute(
                select(tables.SchemaVersion.version).order_by(text("version DESC"))
            ).first()
        version = int(current[0]) if current else 0
    except SQLAlchemyError as e:
        raise StoreError(
            f"cannot open store {redact_db_url(str(engine.url))}: {e.__class__.__name__}: {e}"
        ) from e
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {version} is newer than this agent supports ({SCHEMA_VERSION}); upgrade the agent"
        )
    for v in range(version + 1, SCHEMA_VERSION + 1):
        with engine.begin() as conn:
            MIGRATIONS[v - 2](conn)
            conn.execute(insert(tables.SchemaVersion).values(version=v, applied_at=_now()))
        log.info("store migrated to schema version %d", v)
    return SCHEMA_VERSION


def _now() -> datetime:
    return datetime.now(UTC)
