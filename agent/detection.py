"""Detection stage: per-series detectors (created lazily from config) and static thresholds turn samples
into anomaly signals, and into positive evidence of recovery. Missing data produces neither."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import detectors
from agent.config.models import DetectorProfile, QueryConfig, StaticThreshold
from agent.domain import Signal, SignalClear, fingerprint
from agent.topology import UNMAPPED, ServiceMap
from integrations.prometheus import Series


@dataclass
class _SeriesState:
    detector: detectors.Detector | None
    last_ts: float = -math.inf
    anomalous: bool = False
    seen_at: float = 0.0


@dataclass
class Detected:
    signals: list[Signal] = field(default_factory=list)
    onsets: list[Signal] = field(default_factory=list)
    clears: list[SignalClear] = field(default_factory=list)
    samples: int = 0


class DetectionStage:
    """Holds one detector per (query, series). Points at or before a series' last seen timestamp are
    ignored, so a re-delivered sample can neither double-count nor re-train a detector."""

    def __init__(self, profiles: Mapping[str, DetectorProfile], threshold: float, services: ServiceMap):
        self.profiles = profiles
        self.threshold = threshold
        self.services = services
        self._series: dict[tuple[str, str], _SeriesState] = {}

    def process(self, query: QueryConfig, batch: Sequence[Series]) -> Detected:
        out = Detected()
        threshold = query.threshold or self.threshold
        for series in batch:
            labels = dict(series.labels)
            fp = fingerprint(query.name, labels)
            state = self._series.get((query.name, fp))
            if state is None:
                state = _SeriesState(detector=self._new_detector(query))
                self._series[(query.name, fp)] = state
            service = query.service or self.services.service_for(labels) or UNMAPPED
            for ts, value in series.points:
                if ts <= state.last_ts or not math.isfinite(value):
                    continue
                state.last_ts = ts
                state.seen_at = ts
                out.samples += 1
                sig = self._judge(query, state, labels, fp, service, ts, value, threshold)
                if sig is not None:
                    out.signals.append(sig)
                    if not state.anomalous:
                        out.onsets.append(sig)
                    state.anomalous = True
                elif state.anomalous:
                    state.anomalous = False
                    out.clears.append(SignalClear(fp, _dt(ts)))
        return out

    def _judge(
        self,
        query: QueryConfig,
        state: _SeriesState,
        labels: dict[str, str],
        fp: str,
        service: str,
        ts: float,
        value: float,
        threshold: float,
    ) -> Signal | None:
        det = state.detector
        score = det.update(ts, value) if det is not None else 0.0
        crossed = _crossed(query.thresholds, value)
        if crossed is not None:
            bound = crossed.above if crossed.above is not None and value > crossed.above else crossed.below
            score, judge, severity, expected = 1.0, "static", crossed.severity, bound
        elif det is not None and det.warm and score >= threshold:
            judge, severity, expected = det.name, query.severity, det.expected
        else:
            return None
        return Signal(
            name=query.name,
            service=service,
            source="prometheus",
            labels=labels,
            fingerprint=fp,
            at=_dt(ts),
            value=value,
            score=score,
            detector=judge,
            severity=severity,
            expected=expected,
        )

    def _new_detector(self, query: QueryConfig) -> detectors.Detector | None:
        if query.detector is None:
            return None
        profile = self.profiles[query.detector]
        return detectors.build(profile.kind, profile.params)

    def evict(self, now: datetime, idle: timedelta) -> int:
        """Forget series not seen for `idle` (bounded memory as label sets churn); returns how many."""
        cutoff = now.timestamp() - idle.total_seconds()
        stale = [k for k, s in self._series.items() if s.seen_at < cutoff]
        for k in stale:
            del self._series[k]
        return len(stale)

    def counts(self) -> tuple[int, int]:
        """(warm series, warming series)."""
        warm = sum(1 for s in self._series.values() if s.detector is None or s.detector.warm)
        return warm, len(self._series) - warm


def _crossed(thresholds: Sequence[StaticThreshold], value: float) -> StaticThreshold | None:
    worst = None
    for t in thresholds:
        crossed = (t.above is not None and value > t.above) or (t.below is not None and value < t.below)
        if crossed and (worst is None or t.severity.rank > worst.severity.rank):
            worst = t
    return worst


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
