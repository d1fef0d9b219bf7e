"""INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL, many rows in one statement execution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Any, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, or update every other column of the row with the same `keys`."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    columns = [c for c in rows[0] if c not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in columns}
    )
    conn.execute(stmt, list(rows))
