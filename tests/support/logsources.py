"""Helpers shared by the log source suites."""

from __future__ import annotations

from integrations.logs.records import LogRecord, LogSource


def drain(source: LogSource, limit: int) -> list[LogRecord]:
    """Read and commit until a read comes back empty; every read must respect `limit`."""
    got: list[LogRecord] = []
    while True:
        batch = source.read(limit)
        if not batch.records:
            return got
        assert len(batch.records) <= limit
        got += batch.records
        source.commit(batch)
