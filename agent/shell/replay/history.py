"""The agent's inputs over a past window, as the live agent would have received them: each query's polls
(the same cursor windows, from Prometheus history), each file log source's reads (lines by their own
timestamps), and the housekeeping ticks, merged in time order and produced chunk by chunk so a day of
a thousand series never sits in memory at once.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agent.config import Config
from agent.config.models import LogSourceConfig, QueryConfig
from agent.core.events import Event, LogsRead, MetricsPolled, Tick
from integrations.logs.files import FileSource
from integrations.logs.records import LogRecord
from integrations.logs.stamps import line_time
from integrations.prometheus import MAX_POINTS_PER_SERIES, Matrix, PrometheusClient, RangeCursor

log = logging.getLogger(__name__)
CHUNK = 2 * 3600.0  # seconds of history fetched and replayed at a time
_METRICS, _LOGS, _TICK = 0, 1, 3  # order of events that share a time


@dataclass(frozen=True, order=True)
class Timed:
    """An event and the moment the live agent would have applied it."""

    at: float
    rank: int
    seq: int
    event: Event = field(compare=False)


@dataclass
class Stats:
    series: int = 0
    points: int = 0
    lines: int = 0
    skipped_sources: list[str] = field(default_factory=list)


class History:
    """Fetches and slices lazily; `events()` may be called again (a shadow replay) and reuses what it
    fetched the first time."""

    def __init__(
        self,
        config: Config,
        client: PrometheusClient,
        since: float,
        until: float,
        ticks: Callable[[float], Tick] = lambda at: Tick(),
    ):
        """`ticks` gives the tick of a moment (the silences and switches of that time, see envelope.py)."""
        self.config = config
        self.ticks = ticks
        self.client = client
        self.since = since
        self.until = until
        self.stats = Stats()
        self._cache: list[list[Timed]] | None = None

    def events(self) -> Iterator[list[Timed]]:
        """Chunks of events in time order (every event of a chunk is before every event of the next)."""
        if self._cache is not None:
            yield from self._cache
            return
        cache: list[list[Timed]] = []
        queries = [
            _QueryFeed(q, self.config, self.client, self.since, self.stats) for q in self.config.agent.queries
        ]
        logs = [self._log_feed(ls) for ls in self.config.agent.log_sources]
        tick = self.config.agent.housekeeping_interval.total_seconds()
        seq = 0
        start = self.since
        while start <= self.until:
            end = min(start + CHUNK, self.until + 1e-6)
            chunk: list[Timed] = []
            for feed in queries:
                for at, polled in feed.polls(start, end):
                    chunk.append(Timed(at, _METRICS, seq, polled))
                    seq += 1
            for reads in logs:
                if reads is not None:
                    for at, read in reads.reads(start, end):
                        chunk.append(Timed(at, _LOGS, seq, read))
                        seq += 1
            for k in range(math.ceil((start - self.since) / tick), math.ceil((end - self.since) / tick)):
                at = self.since + k * tick
                chunk.append(Timed(at, _TICK, seq, self.ticks(at)))
                seq += 1
            chunk.sort()
            cache.append(chunk)
            yield chunk
            start = end
        self._cache = cache

    def _log_feed(self, cfg: LogSourceConfig) -> _LogFeed | None:
        if cfg.type != "file":
            self.stats.skipped_sources.append(f"{cfg.name} ({cfg.type}: only file sources are replayed)")
            return None
        return _LogFeed(cfg, self.config.agent_file.parent, self.since, self.until, self.stats)


class _QueryFeed:
    """One query's polls: the live cursor's windows at the live poll interval, fetched a chunk at a time
    (split by time so no answer passes Prometheus' points limit). The first poll carries the query's
    past before the window as warm-up history, as a starting agent fetches it."""

    def __init__(
        self, query: QueryConfig, config: Config, client: PrometheusClient, since: float, stats: Stats
    ):
        p = config.agent.prometheus
        self.query = query
        self.client = client
        self.stats = stats
        self.interval = (query.interval or p.poll_interval).total_seconds()
        self.cursor = RangeCursor(
            step=(query.step or p.step).total_seconds(),
            delay=p.delay.total_seconds(),
            max_backfill=math.inf,
            early=0.0,  # simulated polls are punctual
        )
        self.since = since
        self.warmup = config.warmup_seconds(query)
        self._k = 0
        self._seen: set[frozenset[tuple[str, str]]] = set()

    def polls(self, start: float, end: float) -> Iterator[tuple[float, MetricsPolled]]:
        windows: list[tuple[float, float, float]] = []  # (poll time, window start, window end)
        while (t := self.since + self._k * self.interval) < end:
            window = self.cursor.window(t)
            self._k += 1
            if window is not None:
                windows.append((t, window[0], window[1]))
                self.cursor.advance(window[1])
        if not windows:
            return
        step = self.cursor.step
        fetched = self._fetch(windows[0][1], windows[-1][2])
        parts = fetched.split([w[2] for w in windows])
        for (t, w_start, w_end), part in zip(windows, parts, strict=True):
            keys = [frozenset(labels.items()) for labels in part.labels]
            history = None
            if self.warmup > 0 and (not self._seen or not self._seen.issuperset(keys)):
                # the agent's first poll, or series new to the query: their past, as the live poller
                # fetches it (here at once: the replay knows which series are new before the core does)
                history = self._fetch(w_start - math.floor(self.warmup / step) * step, w_start - step)
            self._seen.update(keys)
            self.stats.series = max(self.stats.series, len(self._seen))
            yield t, MetricsPolled(self.query.name, part, w_end, history)

    def _fetch(self, start: float, end: float) -> Matrix:
        """[start, end] on the query's grid, in as many range queries as Prometheus' limit needs."""
        step = self.cursor.step
        span = (MAX_POINTS_PER_SERIES - 1) * step
        parts = []
        a = start
        while a <= end:
            b = min(a + span, end)
            parts.append(self.client.query_range(self.query.promql, a, b, step))
            a = b + step
        out = Matrix.concat(parts)
        self.stats.points += int(out.counts.sum())
        return out


class _LogFeed:
    """One file source's lines in the window, by their own timestamps (a line without one takes the
    time of the line before it), grouped into the reads the live agent would have made."""

    def __init__(self, cfg: LogSourceConfig, base: Path, since: float, until: float, stats: Stats):
        paths = [str((base / p).resolve()) if not Path(p).is_absolute() else p for p in cfg.paths]
        self.cfg = cfg
        self.source = FileSource(
            cfg.name, paths, start_at="beginning", max_line_bytes=cfg.max_line_bytes, labels=cfg.labels
        )
        self.since, self.until = since, until
        self.interval = cfg.interval.total_seconds()
        self.stats = stats
        self.year = datetime.fromtimestamp(since, UTC).year
        self._pending: list[tuple[float, int, LogRecord]] = []  # a heap: lines read ahead, by time
        self._last = -math.inf  # the newest stamp read so far
        self._n = 0
        self._done = False

    def reads(self, start: float, end: float) -> Iterator[tuple[float, LogsRead]]:
        self._read_until(end)
        taken: list[LogRecord] = []
        while self._pending and self._pending[0][0] < end:
            taken.append(heapq.heappop(self._pending)[2])
        if not taken:
            return
        self.stats.lines += len(taken)
        # a read at poll time t holds the lines stamped in (t - interval, t]
        groups: dict[float, list[LogRecord]] = {}
        for record in taken:
            assert record.ts is not None
            k = math.ceil((record.ts - self.since) / self.interval)
            groups.setdefault(self.since + k * self.interval, []).append(record)
        for at in sorted(groups):
            yield at, LogsRead(self.cfg.name, groups[at], {})

    def _read_until(self, end: float) -> None:
        while not self._done and self._last < end:
            batch = self.source.read(10_000)
            if not batch.records:
                self._done = True
                self.source.close()
                return
            self.source.commit(batch)
            for record in batch.records:
                stamp = line_time(record.line, self.year)
                self._last = stamp if stamp is not None else self._last
                if self.since <= self._last <= self.until:
                    stamped = LogRecord(record.source, record.line, self._last, record.labels, record.level)
                    heapq.heappush(self._pending, (self._last, self._n, stamped))
                    self._n += 1
