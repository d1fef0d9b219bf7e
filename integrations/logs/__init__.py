"""Log sources: files (with rotation), Loki, journald. Lines in, nothing interpreted here."""

from integrations.logs.records import LogBatch, LogRecord, LogSource

__all__ = ["LogBatch", "LogRecord", "LogSource"]
