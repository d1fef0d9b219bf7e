"""Polls: read a source, hand what it delivered to the core, and move the source on only once the core's
decisions about it are recorded (a poll that fails, or whose commit never lands, is read again).

Each poller is run by one scheduler job that never overlaps itself, so its cursor needs no lock.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

from agent.clock import Clock
from agent.config import Config
from agent.config.models import LogSourceConfig, QueryConfig
from agent.core.decisions import Decisions
from agent.core.events import LogsRead, MetricsPolled
from agent.shell.health import SourceHealth
from agent.shell.metrics import AgentMetrics
from agent.shell.runtime import Runtime
from integrations.errors import IntegrationError
from integrations.logs.records import LogSource
from integrations.prometheus import Matrix, PrometheusClient, RangeCursor

log = logging.getLogger("aiops")
T = TypeVar("T")
HISTORY_POINTS = 2_000_000  # points per warm-up event: bounds memory, lets other events interleave
HISTORY_EVERY = timedelta(minutes=1)  # at most one history fetch per query this often for new series


class Reader:
    """One read of a source with its bookkeeping: poll counters and timing, and source health. A failure
    returns None: it is reported as the source being down, never judged as data."""

    def __init__(self, health: SourceHealth, metrics: AgentMetrics, clock: Clock):
        self.health = health
        self.metrics = metrics
        self.clock = clock

    def read(
        self, source: str, fetch: Callable[[], T], errors: tuple[type[Exception], ...] = (IntegrationError,)
    ) -> T | None:
        self.metrics.polls.labels(source=source).inc()
        t0 = time.perf_counter()
        try:
            result = fetch()
        except errors as e:
            self.metrics.poll_errors.labels(source=source).inc()
            self.metrics.source_up.labels(source=source).set(0)
            self.health.failure(source, str(e))
            return None
        finally:
            self.metrics.poll_seconds.labels(source=source).observe(time.perf_counter() - t0)
        self.health.success(source, self.clock.now())
        self.metrics.source_up.labels(source=source).set(1)
        return result

    def processed(self, source: str, out: Decisions) -> None:
        self.metrics.samples.labels(source=source).inc(out.samples)
        self.metrics.detector_seconds.labels(source=source).observe(out.seconds)


class MetricPoller:
    """One query: each poll fetches the window after the last recorded one (resumed from the store after
    a restart or a takeover, within max_backfill). The first poll also fetches the query's recent past
    (`detection.warmup_history`) for the detectors to learn from, so there is no blind period; later
    polls fetch it again when the core meets series it has not seen (at most every HISTORY_EVERY)."""

    def __init__(
        self,
        query: QueryConfig,
        config: Config,
        client: PrometheusClient,
        runtime: Runtime,
        reader: Reader,
        saved_end: float | None = None,
    ):
        p = config.agent.prometheus
        warmup = config.warmup_seconds(query)
        self.query = query
        self.client = client
        self.runtime = runtime
        self.reader = reader
        self.source = f"prometheus:{query.name}"
        step = (query.step or p.step).total_seconds()
        self.cursor = RangeCursor(
            step=step, delay=p.delay.total_seconds(), max_backfill=p.max_backfill.total_seconds()
        )
        if saved_end is not None:
            self.cursor.advance(saved_end)
        self.warmup = warmup
        self._history_due = self.warmup > 0
        self._history_at = -math.inf

    def poll(self) -> None:
        now = self.reader.clock.now().timestamp()
        window = self.cursor.window(now)
        if window is None:
            return
        start, end, skipped = window
        if skipped:
            log.warning("%s: %.0fs of history beyond max_backfill skipped (not judged)", self.source, skipped)
        step = self.cursor.step
        samples = self.reader.read(
            self.source, lambda: self.client.query_range(self.query.promql, start, end, step)
        )
        if samples is None:
            return
        history = self._history(start, len(samples)) if self._history_due else []
        for part in history[:-1]:
            self.runtime.submit(MetricsPolled(self.query.name, Matrix.empty(), None, part)).result()
        out = self.runtime.submit(
            MetricsPolled(self.query.name, samples, end, history[-1] if history else None)
        ).result()
        self.cursor.advance(end)
        self.reader.processed(self.source, out)
        self._history_due = (
            self.query.name in out.wants_history and now - self._history_at >= HISTORY_EVERY.total_seconds()
        )

    def _history(self, start: float, series: int) -> list[Matrix]:
        """The query's past before `start`, in parts of at most HISTORY_POINTS points (and the 11,000 points
        per series Prometheus allows). An unreachable Prometheus means no warm-up, not no polling."""
        step = self.cursor.step
        per_series = max(1, min(10_000, HISTORY_POINTS // max(series, 1)))
        first = start - math.floor(self.warmup / step) * step
        parts: list[Matrix] = []
        t = first
        began = time.perf_counter()
        while t < start:
            last = min(t + (per_series - 1) * step, start - step)
            got = self.reader.read(
                self.source, partial(self.client.query_range, self.query.promql, t, last, step)
            )
            if got is None:
                log.warning("%s: warm-up history unavailable; detectors start cold", self.source)
                break
            parts.append(got)
            t = last + step
        self._history_due = False
        self._history_at = self.reader.clock.now().timestamp()
        points = sum(int(p.counts.sum()) for p in parts)
        if points:
            log.info(
                "%s: detectors warmed from %s of history (%d points, %.1fs to fetch)",
                self.source,
                timedelta(seconds=round(start - first)),
                points,
                time.perf_counter() - began,
            )
        return parts


class LogPoller:
    """One log source: read lines past the committed position, hand them to the core, commit the source
    once the core's decisions (and the new position, in the same transaction) are recorded."""

    def __init__(self, config: LogSourceConfig, source: LogSource, runtime: Runtime, reader: Reader):
        self.config = config
        self.source = source
        self.runtime = runtime
        self.reader = reader
        self.name = f"logs:{config.name}"

    def poll(self) -> None:
        batch = self.reader.read(
            self.name, lambda: self.source.read(self.config.max_lines_per_poll), (IntegrationError, OSError)
        )
        if batch is None:
            return
        out = self.runtime.submit(LogsRead(self.config.name, batch.records, batch.checkpoint)).result()
        if out.consumed:
            self.source.commit(batch)
        self.reader.processed(self.name, out)
