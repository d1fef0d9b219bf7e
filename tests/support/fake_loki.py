"""An in-memory Loki that answers `/loki/api/v1/query_range` the way Loki does, for LokiSource tests.

Loki is not installable here, so this stands in for it, served by a RecordingServer on port 0. What it
reproduces is what a reader depends on: `start` inclusive and `end` exclusive (nanoseconds), `limit`
(default 100, at most 5000 like `max_entries_limit_per_query`) taken from the oldest entries first when
`direction=forward`, entries that share a nanosecond, the `streams` response shape, and Loki's HTTP 400
plain-text errors. LogQL is reduced to stream selectors (`=`, `!=`, `=~`, `!~`) and line filters.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from tests.support.recording_http import Recorded, Reply

MAX_ENTRIES_LIMIT = 5000
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Stored:
    labels: tuple[tuple[str, str], ...]
    ts_ns: int
    line: str


@dataclass
class FakeLoki:
    """Call `push` to ingest, `fail_next` to make the next requests fail; pass it to `serve` as responder."""

    entries: list[Stored] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, labels: Mapping[str, str], values: Iterable[tuple[int, str]]) -> None:
        """Ingest lines of one stream; like Loki, an exact repeat of (stream, ts, line) is dropped."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            have = set(self.entries)
            for ts, line in values:
                entry = Stored(key, ts, line)
                if entry not in have:
                    self.entries.append(entry)
                    have.add(entry)

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self.failures.extend(statuses)

    def __call__(self, req: Recorded) -> Reply:
        with self._lock:
            if self.failures:
                return Reply(self.failures.pop(0), b"upstream unavailable\n", "text/plain")
            entries = list(self.entries)
        url = urlsplit(req.path)
        if url.path != "/loki/api/v1/query_range" or req.method not in ("GET", "POST"):
            return Reply(404, b"404 page not found\n", "text/plain")
        params = dict(parse_qsl(url.query))
        if req.method == "POST":
            params.update(parse_qsl(req.body.decode()))
        try:
            return Reply.json(200, _query_range(entries, params))
        except BadRequest as e:
            return Reply(400, f"{e}\n".encode(), "text/plain; charset=utf-8")


class BadRequest(Exception):
    pass


def _query_range(entries: list[Stored], params: Mapping[str, str]) -> dict[str, object]:
    selector, filters = _parse(params.get("query", ""))
    start = _ns(params.get("start", "0"))
    end = _ns(params.get("end", str(2**63 - 1)))
    if end <= start:
        raise BadRequest("end timestamp must not be before or equal to start time")
    limit = int(params.get("limit", "100"))
    if limit > MAX_ENTRIES_LIMIT:
        raise BadRequest(
            f"max entries limit per query exceeded, limit > max_entries_limit ({limit} > {MAX_ENTRIES_LIMIT})"
        )
    forward = params.get("direction", "backward") == "forward"
    picked = [
        e
        for e in entries
        if start <= e.ts_ns < end and _selects(selector, dict(e.labels)) and _passes(filters, e.line)
    ]
    # Loki merges streams by timestamp (ties in stream order) and keeps the first `limit` entries.
    picked.sort(key=lambda e: (e.ts_ns, e.labels), reverse=not forward)
    streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
    for e in picked[:limit]:
        streams.setdefault(e.labels, []).append([str(e.ts_ns), e.line])
    return {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [{"stream": dict(k), "values": v} for k, v in streams.items()],
            "stats": {},
        },
    }


def _ns(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text) * 1e9)
        except ValueError:
            raise BadRequest(
                f'invalid parameter "start/end": cannot parse "{text}" to a valid timestamp'
            ) from None


Matcher = tuple[str, str, str]
Filter = tuple[str, str]


def _parse(query: str) -> tuple[list[Matcher], list[Filter]]:
    q = query.strip()
    if not q.startswith("{") or "}" not in q:
        raise BadRequest("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")
    body, rest = q[1:].split("}", 1)
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if m is None:
            raise BadRequest(f"parse error at line 1, col {pos + 2}: syntax error: unexpected {body[pos:]!r}")
        matchers.append((m[1], m[2], json.loads(f'"{m[3]}"')))
        pos = m.end()
    if not matchers:
        raise BadRequest("parse error : queries require at least one regexp or equality matcher")
    filters: list[Filter] = []
    rest = rest.strip()
    while rest:
        f = _FILTER.match(rest)
        if f is None:
            raise BadRequest(
                f"parse error at line 1, col {len(q) - len(rest) + 1}: syntax error: unexpected {rest!r}"
            )
        filters.append((f[1], json.loads(f'"{f[2]}"')))
        rest = rest[f.end() :].strip()
    return matchers, filters


def _selects(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    return all(_label_ok(op, value, labels.get(name, "")) for name, op, value in matchers)


def _label_ok(op: str, value: str, have: str) -> bool:
    if op in ("=", "!="):
        return (have == value) == (op == "=")
    return (re.fullmatch(value, have) is not None) == (op == "=~")


def _passes(filters: list[Filter], line: str) -> bool:
    return all(_line_ok(op, value, line) for op, value in filters)


def _line_ok(op: str, value: str, line: str) -> bool:
    found = value in line if op in ("|=", "!=") else re.search(value, line) is not None
    return found == (op in ("|=", "|~"))
