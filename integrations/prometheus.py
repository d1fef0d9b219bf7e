"""Prometheus HTTP API: range queries with retries, and a cursor that makes polling gap- and duplicate-free."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests

from integrations.errors import SourceUnavailable
from integrations.http import Retry, envelope_data, gc_paused, send_with_retries
from integrations.redaction import redact_url

log = logging.getLogger(__name__)

MAX_POINTS_PER_SERIES = 10_000  # Prometheus refuses ranges over 11,000 points per series


@dataclass(frozen=True)
class Series:
    """One time series from a query: its labels and (unix seconds, value) points in time order."""

    labels: Mapping[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Matrix:
    """A range query's answer in columns: one label set per series, and every point of every series
    in flat arrays (series after series, each in time order). Columns keep a poll of tens of thousands
    of series to a few microseconds of Python per series.

    >>> m = Matrix.of([Series({"job": "a"}, [(1.0, 2.0), (2.0, 3.0)]), Series({"job": "b"}, [(2.0, 5.0)])])
    >>> [(s.labels["job"], s.points) for s in m.series()]
    [('a', [(1.0, 2.0), (2.0, 3.0)]), ('b', [(2.0, 5.0)])]
    >>> [[(s.labels["job"], s.points) for s in part.series()] for part in m.split([1.0, 2.0])]
    [[('a', [(1.0, 2.0)])], [('a', [(2.0, 3.0)]), ('b', [(2.0, 5.0)])]]
    """

    labels: list[Mapping[str, str]]
    counts: np.ndarray
    ts: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, series: Sequence[Series]) -> Matrix:
        points = [p for s in series for p in s.points]
        flat = np.array(points, dtype=np.float64).reshape(-1, 2)
        counts = np.array([len(s.points) for s in series], dtype=np.int64)
        return cls([s.labels for s in series], counts, flat[:, 0].copy(), flat[:, 1].copy())

    @classmethod
    def empty(cls) -> Matrix:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def concat(cls, parts: Sequence[Matrix]) -> Matrix:
        """Several answers as one (a series answered twice appears twice, its points in both)."""
        if not parts:
            return cls.empty()
        return cls(
            [lab for m in parts for lab in m.labels],
            np.concatenate([m.counts for m in parts]),
            np.concatenate([m.ts for m in parts]),
            np.concatenate([m.values for m in parts]),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def series(self) -> list[Series]:
        ends = np.cumsum(self.counts)
        starts = ends - self.counts
        return [
            Series(labels, list(zip(self.ts[a:b].tolist(), self.values[a:b].tolist(), strict=True)))
            for labels, a, b in zip(self.labels, starts, ends, strict=True)
        ]

    def split(self, edges: Sequence[float]) -> list[Matrix]:
        """The points cut at `edges` (ascending): part i holds those in (edges[i-1], edges[i]] (part 0:
        up to edges[0]); points after the last edge are dropped. One sort for all parts, so slicing a
        day of history into polls costs the same as reading it."""
        owner = np.repeat(np.arange(len(self.labels)), self.counts)
        part = np.searchsorted(np.asarray(edges, dtype=np.float64), self.ts, side="left")
        order = np.lexsort((self.ts, owner, part))
        owner, part = owner[order], part[order]
        ts, values = self.ts[order], self.values[order]
        bounds = np.searchsorted(part, np.arange(len(edges) + 1), side="left")
        out = []
        for i in range(len(edges)):
            a, b = bounds[i], bounds[i + 1]
            series, counts = np.unique(owner[a:b], return_counts=True)
            out.append(
                Matrix([self.labels[o] for o in series], counts.astype(np.int64), ts[a:b], values[a:b])
            )
        return out


class PrometheusClient:
    """Thin client for `/api/v1/query` and `/api/v1/query_range`.

    Timeouts, connection errors, 429 and 5xx are retried with exponential backoff and logged;
    a query Prometheus rejects (HTTP 400/422) raises QueryRejected at once.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.headers.update(headers or {})
        self._sleep = sleep

    def query(self, promql: str, at: float | None = None) -> list[Series]:
        """Instant query; returns one single-point series per result."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._post("/api/v1/query", params)
        return [_instant_series(r) for r in data.get("result", [])]

    def query_range(self, promql: str, start: float, end: float, step: float) -> Matrix:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        with gc_paused():
            result = self._post("/api/v1/query_range", params).get("result", [])
            try:
                matrix = _matrix(result)
            except (AttributeError, TypeError, ValueError) as e:
                raise SourceUnavailable(
                    f"Prometheus at {redact_url(self.url)} answered with a malformed matrix: {e!r}"
                ) from e
            del result  # freed while collection is paused
        return matrix

    def _post(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        resp = send_with_retries(
            lambda: self.session.post(self.url + path, data=params, timeout=self.timeout),
            Retry(self.retries, self.backoff, self._sleep),
            peer="Prometheus",
            url=self.url,
            what=path,
            log=log,
        )
        return envelope_data(resp, "Prometheus")


def _matrix(result: list[dict[str, Any]]) -> Matrix:
    """Columns from the JSON answer: label sets as Prometheus sent them, values ("1.5", "NaN", "+Inf")
    converted by numpy in one call."""
    labels: list[Mapping[str, str]] = []
    counts: list[int] = []
    ts: list[Any] = []
    values: list[Any] = []
    for r in result:
        points = r.get("values") or []
        labels.append(r.get("metric") or {})
        counts.append(len(points))
        for t, v in points:
            ts.append(t)
            values.append(v)
    return Matrix(
        labels,
        np.array(counts, dtype=np.int64),
        np.array(ts, dtype=np.float64),
        np.array(values, dtype=np.float64),
    )


def _instant_series(r: dict[str, Any]) -> Series:
    t, v = r["value"]
    return Series(labels=dict(r.get("metric", {})), points=[(float(t), float(v))])


@dataclass
class RangeCursor:
    """Remembers where the last successful poll of one query ended, so the next covers exactly what follows.

    Points sit on a grid of `step` whose phase is the agent's own polling: the first window ends at the
    first poll (`now - delay`, not floored to a multiple of `step`) and later ones `step` apart from it.
    Polls come every `poll_interval` from the same start, so each poll's newest point is its own time:
    a sample is judged at the first poll after it exists, with no wait for a grid point. With `step`
    equal to the scrape interval, consecutive points see consecutive scrapes (none twice, none skipped).
    A poll asks for [next, end] and only a successful poll moves `next` past `end`, so a failed poll
    leaves no gap and a repeated one fetches no point twice. A poll up to `early` seconds before its
    point (scheduler jitter; at most a tenth of `step`) is judged at its own time, the grid kept; when
    such a poll also catches up on a missed one, its window ends at that point, just ahead of the poll.
    A window longer than `max_backfill` (e.g. after a long outage) skips ahead and says so.

    After a restart or a takeover (`advance` with the saved end before any window), the first window
    re-aligns the grid to the new agent's polls: its points lie after the saved end, the first of them
    at most `step` after it (a scrape may be seen twice there, none is skipped).

    >>> c = RangeCursor(step=15.0)
    >>> c.window(now=1000.0)
    (1000.0, 1000.0, 0.0)
    >>> c.advance(1000.0); c.window(now=1040.0)
    (1015.0, 1030.0, 0.0)
    >>> c.advance(1030.0); c.window(now=1044.9)
    (1044.9, 1044.9, 0.0)
    >>> c.advance(1044.9); c.window(now=1060.0)
    (1060.0, 1060.0, 0.0)
    >>> c.advance(1060.0); c.window(now=1089.9)  # after a missed poll, a little ahead of the grid
    (1075.0, 1090.0, 0.0)
    """

    step: float
    delay: float = 0.0
    max_backfill: float = 3600.0
    next_ts: float | None = None
    early: float = 0.25
    aligned: bool = False  # the grid follows this cursor's own windows
    windowed: bool = False  # a window was asked for: from its advance on, the grid is aligned

    def window(self, now: float) -> tuple[float, float, float] | None:
        """(start, end, seconds skipped) to query now, or None when no new point is due."""
        t = round(now - self.delay, 3)
        self.windowed = True
        jitter = min(self.early, self.step / 10)  # how far ahead of its point a poll still takes it
        if self.next_ts is None:
            start = end = t
        elif not self.aligned:
            last = self.next_ts - self.step
            if t <= last:
                return None
            end = t
            start = round(t - (math.ceil((t - last) / self.step) - 1) * self.step, 3)
        elif t < self.next_ts:
            if t < self.next_ts - jitter:
                return None
            start = end = t
        else:
            start = self.next_ts
            steps = math.floor((t - start) / self.step)
            if t - start - steps * self.step >= self.step - jitter:
                # the next point is due within jitter (a catch-up poll a little ahead of the grid):
                # take it now, as an early poll is taken, rather than a whole step short of the poll
                steps += 1
            end = round(start + steps * self.step, 3)
        limit = min(self.max_backfill, MAX_POINTS_PER_SERIES * self.step)
        skipped = 0.0
        if end - start > limit:
            new_start = round(end - math.floor(limit / self.step) * self.step, 3)
            skipped = new_start - start
            start = new_start
        return start, end, skipped

    def advance(self, end: float) -> None:
        """The window ending at `end` is recorded (or, before any window, was: a saved end)."""
        if self.aligned and self.next_ts is not None and end < self.next_ts:
            self.next_ts = round(self.next_ts + self.step, 3)  # an early poll: the grid stays
        else:
            self.next_ts = round(end + self.step, 3)
        self.aligned = self.windowed
