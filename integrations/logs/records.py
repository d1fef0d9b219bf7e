"""What every log source hands the agent, and the read/commit contract that makes restarts exact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LogRecord:
    """One log line as read, decoded, without its line terminator.

    `ts` is the source's own event time (unix seconds) when it has one (Loki, journald); files give
    None and the agent uses the time it read the line. `labels` say where the line came from (path,
    unit, stream labels) and are what services.yaml selectors match. `level` is set when the source
    knows it structurally (journald PRIORITY); otherwise the template miner reads it from the line.
    """

    source: str
    line: str
    ts: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    level: str | None = None


@dataclass(frozen=True)
class LogBatch:
    """Records read past the committed position, and the position just after them."""

    records: list[LogRecord]
    checkpoint: dict[str, Any]


class LogSource(Protocol):
    """Read, process, then commit: a source's position only moves on `commit`, so a crash between
    reading and processing re-reads those lines instead of losing them, and committed lines are never
    read again. `checkpoint()` is JSON-serialisable and goes back into the constructor after a restart.
    """

    name: str

    def read(self, limit: int = 10_000) -> LogBatch: ...

    def commit(self, batch: LogBatch) -> None: ...

    def checkpoint(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Release descriptors and sessions; the committed position is kept."""
