"""Loki as a log source: LogQL range queries, read incrementally with an exact resume position.

Loki orders entries by nanosecond timestamp, but many entries may share one nanosecond and a page
(`limit`) can end in the middle of them. So the position is a timestamp plus the hashes of the entries
already consumed at exactly that nanosecond: the next query starts there (Loki's `start` is inclusive)
and skips only those, so boundary entries are neither lost nor read twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from integrations.errors import QueryRejected, SourceUnavailable
from integrations.http import Retry, envelope_data, send_with_retries
from integrations.logs.records import LogBatch, LogRecord
from integrations.redaction import redact_url

log = logging.getLogger(__name__)

QUERY_RANGE = "/loki/api/v1/query_range"
LEVEL_LABELS = ("level", "detected_level")


@dataclass(frozen=True)
class Position:
    """Everything before `ts_ns` is consumed, and at `ts_ns` exactly the entries whose keys are in `seen`."""

    ts_ns: int
    seen: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        # A string, as Loki writes nanoseconds: JSON readers with float numbers would round them.
        return {"ts_ns": str(self.ts_ns), "seen": sorted(self.seen)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Position:
        try:
            return cls(int(doc["ts_ns"]), frozenset(str(k) for k in doc.get("seen", ())))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a Loki checkpoint: {doc!r}") from e

    def after(self, taken: list[Entry]) -> Position:
        """The position once `taken` (sorted, all at or after this position) is consumed too."""
        last = taken[-1].ts_ns
        keys = {e.key for e in taken if e.ts_ns == last}
        return Position(last, frozenset(keys | self.seen if last == self.ts_ns else keys))


@dataclass(frozen=True)
class Entry:
    ts_ns: int
    line: str
    stream: Mapping[str, str]
    key: str


class LokiSource:
    """Reads the lines a LogQL query selects, oldest first, each exactly once across polls and restarts.

    A read covers (committed position, now - `delay_s`]: `delay_s` leaves ingestion time for entries
    that reach Loki late. A first start without checkpoint begins at now - `delay_s`, not in the past.
    """

    def __init__(
        self,
        name: str,
        url: str,
        query: str,
        limit: int = 5000,
        delay_s: float = 0.0,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.name = name
        self.url = url.rstrip("/")
        self.query = query
        self.limit = limit
        self.delay_s = delay_s
        self.timeout = timeout
        self.labels = dict(labels or {})
        self._retry = Retry(retries, backoff, sleep)
        self._clock = clock
        self._session = requests.Session()
        self._session.headers.update(headers or {})
        self._committed = Position.from_json(checkpoint) if checkpoint else Position(self._cut_ns())

    def read(self, limit: int = 10_000) -> LogBatch:
        """Up to `limit` entries past the committed position, paging through Loki as needed."""
        pos = self._committed
        end_ns = self._cut_ns() + 1  # Loki's `end` is exclusive
        records: list[LogRecord] = []
        while len(records) < limit and pos.ts_ns < end_ns:
            want = limit - len(records)
            # Room for the already-seen entries at pos.ts_ns, which come back first and are skipped.
            page_limit = min(self.limit, want + len(pos.seen))
            page = self._query(pos.ts_ns, end_ns, page_limit)
            fresh = [e for e in page if not (e.ts_ns == pos.ts_ns and e.key in pos.seen)]
            taken = fresh[:want]
            records += (self._record(e) for e in taken)
            if len(page) < page_limit and len(taken) == len(fresh):
                pos = Position(end_ns)  # the whole window is consumed
            elif taken:
                pos = pos.after(taken)
            else:
                # A whole page of entries already read at one nanosecond: Loki cannot page inside it.
                log.warning(
                    "loki source %s: at least %d entries share timestamp %d ns (a full page); "
                    "any beyond those are skipped",
                    self.name,
                    self.limit,
                    pos.ts_ns,
                )
                pos = Position(pos.ts_ns + 1)
        return LogBatch(records, pos.to_json())

    def commit(self, batch: LogBatch) -> None:
        self._committed = Position.from_json(batch.checkpoint)

    def checkpoint(self) -> dict[str, Any]:
        return self._committed.to_json()

    def close(self) -> None:
        self._session.close()

    def _cut_ns(self) -> int:
        return int((self._clock() - self.delay_s) * 1e9)

    def _query(self, start_ns: int, end_ns: int, limit: int) -> list[Entry]:
        params = {
            "query": self.query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": "forward",
        }
        resp = send_with_retries(
            lambda: self._session.get(self.url + QUERY_RANGE, params=params, timeout=self.timeout),
            self._retry,
            peer="Loki",
            url=self.url,
            what=QUERY_RANGE,
            log=log,
        )
        data = envelope_data(resp, "Loki")
        if data.get("resultType") != "streams":
            raise QueryRejected(
                f"Loki query {self.query!r} returns {data.get('resultType')}, not log lines (a metric query?)"
            )
        try:
            return sorted(_entries(data.get("result") or []), key=lambda e: e.ts_ns)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise SourceUnavailable(
                f"Loki at {redact_url(self.url)} answered with malformed streams: {e!r}"
            ) from e

    def _record(self, e: Entry) -> LogRecord:
        level = next((e.stream[k] for k in LEVEL_LABELS if e.stream.get(k)), None)
        return LogRecord(self.name, e.line, e.ts_ns / 1_000_000_000, {**self.labels, **e.stream}, level)


def _entries(result: Iterable[Mapping[str, Any]]) -> Iterable[Entry]:
    for stream in result:
        labels = {str(k): str(v) for k, v in stream["stream"].items()}
        prefix = json.dumps(labels, sort_keys=True)
        for value in stream["values"]:
            # [ts, line], or [ts, line, metadata] when structured metadata is categorised
            ts, line = int(value[0]), str(value[1])
            yield Entry(ts, line, labels, _key(prefix, line))


def _key(stream: str, line: str) -> str:
    """Identifies an entry within its nanosecond: Loki itself drops a repeated (stream, ts, line)."""
    return hashlib.blake2b(f"{stream}\n{line}".encode(), digest_size=12).hexdigest()
