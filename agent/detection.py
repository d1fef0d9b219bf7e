"""Detection stage: detectors (created lazily from config) and static thresholds turn samples into anomaly
signals, and into positive evidence of recovery. Missing data produces neither.

Each query gets one detector bank with a slot per series, fed a whole poll in lockstep (one row per
timestamp), so a poll of many series costs one vectorised update per timestamp rather than one
Python call per point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

import detectors
from agent.config.models import DetectorProfile, QueryConfig, StaticThreshold
from agent.domain import Severity, Signal, SignalClear, fingerprint
from agent.topology import UNMAPPED, ServiceMap
from integrations.prometheus import Series

RELEASE_Z = 3.0


@dataclass
class _Slot:
    labels: dict[str, str]
    service: str
    last_ts: float = -math.inf
    seen_at: float = 0.0
    anomalous: bool = False


@dataclass
class _QueryState:
    """The series of one query: their slots in the bank and what the stage remembers about each."""

    bank: detectors.Bank | None
    slots: dict[str, int] = field(default_factory=dict)
    info: dict[int, _Slot] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    capacity: int = 0

    def slot_for(self, fp: str, labels: dict[str, str], service: str) -> int:
        row = self.slots.get(fp)
        if row is not None:
            return row
        if self.free:
            row = self.free.pop()
        else:
            row = self.capacity
            self.capacity += 1
            if self.bank is not None and self.bank.size < self.capacity:
                self.bank.grow(max(8, 2 * self.bank.size, self.capacity))
        self.slots[fp] = row
        self.info[row] = _Slot(labels=labels, service=service)
        return row


@dataclass
class Detected:
    signals: list[Signal] = field(default_factory=list)
    onsets: list[Signal] = field(default_factory=list)
    clears: list[SignalClear] = field(default_factory=list)
    samples: int = 0


class DetectionStage:
    """Points at or before a series' last seen timestamp are ignored, so a re-delivered sample can
    neither double-count nor re-train a detector.

    A series is anomalous from a point scoring at least the threshold (or crossing a static limit)
    until it is back to normal: its undamped score below the threshold and, for detectors that keep a
    robust level, the value within RELEASE_Z deviations of that level. The first normal point is the
    clear. (Calibrated scores fade while a fault persists; the level does not learn it, so a lasting
    fault stays one open episode instead of clearing after a few points.)
    """

    def __init__(self, profiles: Mapping[str, DetectorProfile], threshold: float, services: ServiceMap):
        self.profiles = profiles
        self.threshold = threshold
        self.services = services
        self._queries: dict[str, _QueryState] = {}

    def process(self, query: QueryConfig, batch: Sequence[Series]) -> Detected:
        state = self._queries.get(query.name)
        if state is None:
            state = self._queries[query.name] = _QueryState(bank=self._new_bank(query))
        rows, grid, values = self._grid(query, state, batch)
        out = Detected()
        if not rows:
            return out
        threshold = query.threshold or self.threshold
        row_index = np.array(rows)
        size = state.bank.size if state.bank is not None else state.capacity
        for t, row_values in zip(grid, values, strict=True):
            ok = np.isfinite(row_values)
            out.samples += int(ok.sum())
            score = np.zeros(len(rows))
            level = np.zeros(len(rows))
            warm = np.zeros(len(rows), dtype=bool)
            expected = np.full(len(rows), np.nan)
            deviation = np.zeros(len(rows))
            if state.bank is not None:
                full = np.full(size, np.nan)
                full[row_index] = row_values
                scored = state.bank.update(np.full(size, t), full)
                score, level = scored[row_index], state.bank.unsuppressed[row_index]
                warm, expected = state.bank.warm()[row_index], state.bank.expected[row_index]
                deviation = state.bank.deviation[row_index]
            self._judge(
                query, state, rows, t, row_values, ok, score, level, warm, expected, deviation, threshold, out
            )
        return out

    def _grid(
        self, query: QueryConfig, state: _QueryState, batch: Sequence[Series]
    ) -> tuple[list[int], list[float], np.ndarray]:
        """The poll as a matrix: one row per timestamp, one column per series; NaN where a series has no
        new, finite point (missing data stays missing)."""
        columns: list[int] = []
        points: list[list[tuple[float, float]]] = []
        for series in batch:
            labels = dict(series.labels)
            service = query.service or self.services.service_for(labels) or UNMAPPED
            row = state.slot_for(fingerprint(query.name, labels), labels, service)
            fresh = [(t, v) for t, v in series.points if t > state.info[row].last_ts]
            if fresh:
                columns.append(row)
                points.append(fresh)
        stamps = sorted({t for pts in points for t, _ in pts})
        index = {t: i for i, t in enumerate(stamps)}
        values = np.full((len(stamps), len(columns)), np.nan)
        for j, (row, pts) in enumerate(zip(columns, points, strict=True)):
            for t, v in pts:
                values[index[t], j] = v if math.isfinite(v) else np.nan
            state.info[row].last_ts = pts[-1][0]
        return columns, stamps, values

    def _judge(
        self,
        query: QueryConfig,
        state: _QueryState,
        rows: list[int],
        t: float,
        x: np.ndarray,
        ok: np.ndarray,
        score: np.ndarray,
        level: np.ndarray,
        warm: np.ndarray,
        expected: np.ndarray,
        deviation: np.ndarray,
        threshold: float,
        out: Detected,
    ) -> None:
        crossed = _crossed(query.thresholds, x, ok)
        was = np.array([state.info[r].anomalous for r in rows], dtype=bool)
        lasting = (level >= threshold) | (deviation >= RELEASE_Z)
        alarm = ok & warm & ((score >= threshold) | (was & lasting))
        flagged = alarm | (crossed >= 0)
        for j in np.flatnonzero(ok):
            state.info[rows[j]].seen_at = t
        for j in np.flatnonzero(flagged | (was & ok)):
            info = state.info[rows[j]]
            if not flagged[j]:
                info.anomalous = False
                out.clears.append(SignalClear(fingerprint(query.name, info.labels), _dt(t)))
                continue
            if crossed[j] >= 0:
                limit = query.thresholds[crossed[j]]
                bound = limit.above if limit.above is not None and x[j] > limit.above else limit.below
                judged: tuple[float, str, Severity, float | None] = (1.0, "static", limit.severity, bound)
            else:
                kind = self.profiles[query.detector].kind if query.detector else "static"
                exp = float(expected[j])
                judged = (
                    float(max(score[j], level[j])),
                    kind,
                    query.severity,
                    exp if math.isfinite(exp) else None,
                )
            sig = Signal(
                name=query.name,
                service=info.service,
                source="prometheus",
                labels=info.labels,
                at=_dt(t),
                value=float(x[j]),
                score=judged[0],
                detector=judged[1],
                severity=judged[2],
                expected=judged[3],
            )
            out.signals.append(sig)
            if not info.anomalous:
                out.onsets.append(sig)
            info.anomalous = True

    def _new_bank(self, query: QueryConfig) -> detectors.Bank | None:
        if query.detector is None:
            return None
        profile = self.profiles[query.detector]
        return detectors.build_bank(profile.kind, profile.params)

    def evict(self, now: datetime, idle: timedelta) -> int:
        """Forget series not seen for `idle` (bounded memory as label sets churn); returns how many."""
        cutoff = now.timestamp() - idle.total_seconds()
        gone = 0
        for state in self._queries.values():
            stale = [(fp, row) for fp, row in state.slots.items() if state.info[row].seen_at < cutoff]
            for fp, row in stale:
                del state.slots[fp]
                del state.info[row]
                state.free.append(row)
            if stale and state.bank is not None:
                state.bank.reset(np.array([row for _, row in stale]))
            gone += len(stale)
        return gone

    def counts(self) -> tuple[int, int]:
        """(warm series, warming series)."""
        warm = total = 0
        for state in self._queries.values():
            rows = np.array(list(state.slots.values()), dtype=np.int64)
            total += len(rows)
            warm += len(rows) if state.bank is None else int(state.bank.warm()[rows].sum())
        return warm, total - warm


def _crossed(thresholds: Sequence[StaticThreshold], x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Index of the most severe static limit each value crosses, or -1."""
    worst = np.full(len(x), -1)
    rank = np.full(len(x), -1)
    for i, t in enumerate(thresholds):
        hit = np.zeros(len(x), dtype=bool)
        if t.above is not None:
            hit |= ok & (x > t.above)
        if t.below is not None:
            hit |= ok & (x < t.below)
        better = hit & (t.severity.rank > rank)
        worst = np.where(better, i, worst)
        rank = np.where(better, t.severity.rank, rank)
    return worst


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
