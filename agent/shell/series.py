"""The series of an incident's metric signals around its time, for the UI's charts.

Prometheus holds each whole series; the store holds only what the agent recorded of a signal (its value
at onset, in the timeline, and its latest value). Both are returned. An incident is reviewed most when
monitoring is in trouble, so a Prometheus that cannot answer is reported in the answer, never as an
error: the chart then shows what the store has.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.clock import Clock
from agent.config.models import QueryConfig
from agent.shell.store import Store
from agent.shell.store.tables import Change, Incident, IncidentEvent, SignalRecord
from integrations.errors import QueryRejected, SourceUnavailable
from integrations.prometheus import PrometheusClient

log = logging.getLogger("aiops")

MAX_POINTS = 500  # per series: a chart a few hundred pixels wide shows no more
MAX_CHARTS = 20  # metric signals charted per incident; the rest are counted in `omitted`
MIN_MARGIN = timedelta(minutes=5)
METRIC_SOURCE = "prometheus"
RECORDING_EVENTS = ("opened", "signal")  # timeline entries that carry a signal's value (see correlation)

Point = tuple[float, float]  # (unix seconds, value)


@dataclass
class SeriesReader:
    """Answers `GET /api/v1/incidents/{id}/series`. `prometheus` is None when the agent has no
    Prometheus to ask (the answer is then the store's alone); `step` is the finest step asked for,
    coarsened so that no series has more than `max_points` points."""

    store: Store
    clock: Clock
    queries: Mapping[str, QueryConfig] = field(default_factory=dict)
    prometheus: PrometheusClient | None = None
    step: timedelta = timedelta(seconds=15)
    max_points: int = MAX_POINTS

    def incident(self, incident_id: int) -> dict[str, Any]:
        inc = self.store.incidents.get(incident_id)
        metric = [s for s in self.store.incidents.signals(incident_id) if s.source == METRIC_SOURCE]
        charted = metric[:MAX_CHARTS]
        start, end = window(
            inc, self.store.changes.list(incident_id=incident_id, limit=1000), self.clock.now()
        )
        # Both ends are points, and the start moves down onto the step's grid (so the points sit where
        # Prometheus' samples do, and a reload draws the same chart): two points more than span / step.
        step = max(self.step.total_seconds(), math.ceil((end - start) / (self.max_points - 2)))
        first = math.floor(start / step) * step
        recorded = _recorded(self.store.incidents.timeline(incident_id), charted)
        fetched, problem = self._fetch(charted, first, end, step)
        return {
            "incident_id": incident_id,
            "start": first,
            "end": end,
            "step_s": step,
            "prometheus": {"queried": self.prometheus is not None and problem is None, "error": problem},
            "signals": [self._chart(s, fetched, recorded) for s in charted],
            "omitted": len(metric) - len(charted),
        }

    def _fetch(
        self, signals: Sequence[SignalRecord], start: float, end: float, step: float
    ) -> tuple[dict[str, list[Point] | str], str | None]:
        """Each signal's points (or why there are none), one range query per query name; the first
        query Prometheus cannot answer stops the asking (the rest would wait for the same timeout)."""
        out: dict[str, list[Point] | str] = {}
        if self.prometheus is None:
            return out, "no Prometheus is configured"
        by_query: dict[str, list[SignalRecord]] = {}
        for s in signals:
            by_query.setdefault(s.name, []).append(s)
        for name, members in by_query.items():
            query = self.queries.get(name)
            if query is None:
                out |= {s.fingerprint: f"query {name!r} is no longer configured" for s in members}
                continue
            try:
                matrix = self.prometheus.query_range(query.promql, start, end, step)
            except SourceUnavailable as e:
                log.warning("incident chart: %s", e)
                return out, f"Prometheus could not be read ({type(e).__name__}); see the agent's log"
            except QueryRejected as e:
                out |= {s.fingerprint: f"Prometheus refused query {name!r}: {e}" for s in members}
                continue
            found = {_key(series.labels): series.points for series in matrix.series()}
            for s in members:
                points = found.get(_key(s.labels))
                out[s.fingerprint] = _finite(points) if points is not None else "no such series in the range"
        return out, None

    def _chart(
        self,
        s: SignalRecord,
        fetched: Mapping[str, list[Point] | str],
        recorded: Mapping[str, list[Point]],
    ) -> dict[str, Any]:
        query = self.queries.get(s.name)
        got = fetched.get(s.fingerprint)
        return {
            "fingerprint": s.fingerprint,
            "name": s.name,
            "labels": s.labels,
            "detector": s.detector,
            "promql": query.promql if query is not None else None,
            "expected": s.last_expected,
            "limits": [t.model_dump(mode="json") for t in query.thresholds] if query is not None else [],
            "source": "prometheus" if isinstance(got, list) else "store",
            "points": got if isinstance(got, list) else [],
            "recorded": recorded.get(s.fingerprint, []),
            "note": got if isinstance(got, str) else None,
        }


def window(inc: Incident, changes: Iterable[Change], now: datetime) -> tuple[float, float]:
    """From before the anomaly began to after the incident resolved (or now), covering every change,
    with a margin on both sides: the chart shows the normal before and after. Unix seconds."""
    stamps = [t for c in changes for t in (c.created_at, c.started_at, c.finished_at, c.verified_at) if t]
    first = min([inc.started_at, inc.opened_at, *stamps])
    last = max([inc.resolved_at or now, *stamps])
    margin = max(MIN_MARGIN, (last - first) / 4)
    return (first - margin).timestamp(), min(last + margin, max(now, last)).timestamp()


def _recorded(timeline: Iterable[IncidentEvent], signals: Iterable[SignalRecord]) -> dict[str, list[Point]]:
    """What the agent itself saw of each signal, by fingerprint: the value each timeline entry recorded
    (an entry names its signal by name and labels), and the latest value."""
    by_series = {(s.name, _key(s.labels)): s.fingerprint for s in signals}
    out: dict[str, list[Point]] = {fp: [] for fp in by_series.values()}
    for e in timeline:
        data = e.data or {}
        name, labels, value, at = data.get("signal"), data.get("labels"), data.get("value"), data.get("at")
        if e.kind not in RECORDING_EVENTS or not isinstance(name, str) or not isinstance(labels, dict):
            continue
        fp = by_series.get((name, _key({str(k): str(v) for k, v in labels.items()})))
        if fp is not None and isinstance(value, int | float) and isinstance(at, str):
            out[fp].append((datetime.fromisoformat(at).timestamp(), float(value)))
    for s in signals:
        out[s.fingerprint].append((s.last_at.timestamp(), s.last_value))
    return {fp: _finite(sorted(set(points))) for fp, points in out.items()}


def _key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _finite(points: Iterable[Point]) -> list[Point]:
    """JSON has no NaN or infinity; a gap in the line says the same."""
    return [(t, v) for t, v in points if math.isfinite(v)]
