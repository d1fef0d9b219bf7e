"""Prometheus HTTP API: range queries with retries, and a cursor that makes polling gap- and duplicate-free."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from integrations.http import Retry, envelope_data, send_with_retries

log = logging.getLogger(__name__)

MAX_POINTS_PER_SERIES = 10_000  # Prometheus refuses ranges over 11,000 points per series


@dataclass(frozen=True)
class Series:
    """One time series from a query: its labels and (unix seconds, value) points in time order."""

    labels: Mapping[str, str]
    points: list[tuple[float, float]]


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

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._post("/api/v1/query_range", params)
        return [
            Series(
                labels=dict(r.get("metric", {})),
                points=[(float(t), float(v)) for t, v in r.get("values", [])],
            )
            for r in data.get("result", [])
        ]

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


def _instant_series(r: dict[str, Any]) -> Series:
    t, v = r["value"]
    return Series(labels=dict(r.get("metric", {})), points=[(float(t), float(v))])


@dataclass
class RangeCursor:
    """Remembers where the last successful poll of one query ended, so the next covers exactly what follows.

    Timestamps sit on a grid of `step`; a poll asks for [next, end] and only a successful poll moves
    `next` past `end`, so a failed poll leaves no gap and a repeated one fetches no sample twice.
    A window longer than `max_backfill` (e.g. after a long outage) skips ahead and says so.

    >>> c = RangeCursor(step=15.0)
    >>> c.window(now=1000.0)
    (990.0, 990.0, 0.0)
    >>> c.advance(990.0); c.window(now=1040.0)
    (1005.0, 1035.0, 0.0)
    """

    step: float
    delay: float = 0.0
    max_backfill: float = 3600.0
    next_ts: float | None = None

    def window(self, now: float) -> tuple[float, float, float] | None:
        """(start, end, seconds skipped) to query now, or None when no new grid point is due."""
        end = math.floor((now - self.delay) / self.step) * self.step
        start = end if self.next_ts is None else self.next_ts
        if end < start:
            return None
        limit = min(self.max_backfill, MAX_POINTS_PER_SERIES * self.step)
        skipped = 0.0
        if end - start > limit:
            new_start = end - math.floor(limit / self.step) * self.step
            skipped = new_start - start
            start = new_start
        return start, end, skipped

    def advance(self, end: float) -> None:
        self.next_ts = end + self.step
