"""Detection stage: detectors (created lazily from config) and static thresholds turn samples into anomaly
signals, and into positive evidence of recovery. Missing data produces neither.

Each query gets one detector bank with a slot per series, fed a whole poll in lockstep (one row per
timestamp); what the stage remembers of each series (last timestamp, last sighting, whether it is in
an anomalous episode) lives in arrays beside the bank. A poll of many series therefore costs one
dictionary lookup per series and a few numpy operations per timestamp, not Python per point.

With joint scoring on (`detection.joint`, or a query's `joint`), a query's series of one service are
judged together (detectors.joint, corrected for how many there are): one signal per service, named
`<query>:joint`, whose details list the series that contributed most; static limits stay per series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

import detectors
from agent.config.models import DetectorProfile, JointDetection, QueryConfig, StaticThreshold
from agent.core.domain import Signal, SignalClear, fingerprint
from agent.core.topology import UNMAPPED, ServiceMap
from detectors.joint import JointScore
from integrations.prometheus import Matrix

Key = tuple[tuple[str, str], ...]  # a series' identity: its labels, sorted
Alias = tuple[str, ...]  # its label names then values, in the order an answer listed them
RELEASE_Z = 3.0
MAX_WAIT = 2  # polls a new series waits for its history before it starts cold
SERIES_GAP = 3600.0  # a series' gap longer than this counts as an hour of exposure, not its length
_ROWS_PER_CHUNK = 64  # timestamps judged per block: bounds the grid's memory on long warm-up histories


def joint_name(query: str) -> str:
    """The name of a query's per-service joint signal (what rules match)."""
    return f"{query}:joint"


def joint_enabled(query: QueryConfig, joint: JointDetection) -> bool:
    return query.detector is not None and (query.joint if query.joint is not None else joint.enabled)


class _Services:
    """A query's services judged jointly: a group index per service, and each group's episode."""

    def __init__(self, score: JointScore):
        self.score = score
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.anomalous = np.zeros(0, dtype=bool)

    def group(self, service: str) -> int:
        g = self.index.get(service)
        if g is None:
            g = self.index[service] = len(self.names)
            self.names.append(service)
            if g >= len(self.anomalous):
                grow = max(8, 2 * len(self.anomalous))
                self.anomalous = np.concatenate([self.anomalous, np.zeros(grow, dtype=bool)])
                self.score.grow(len(self.anomalous))
        return g


class _QueryState:
    """The series of one query: a slot each in the bank, and the stage's memory of each slot."""

    def __init__(self, bank: detectors.Bank | None, joint: JointScore | None = None):
        self.bank = bank
        self.joint = _Services(joint) if joint is not None else None
        # A series is found by its labels as the answer lists them (Prometheus keeps their order, so
        # names then values in one flat tuple is the cheapest key; a dict of k labels gives 2k items,
        # so two label sets never share one), then by their sorted form (the identity) for a new order.
        self.slots: dict[Alias, int] = {}
        self.identity: dict[Key, int] = {}
        self.labels: list[dict[str, str]] = []
        self.service: list[str] = []
        self.fingerprint: list[str] = []
        self.aliases: list[list[Alias]] = []  # every alias each row is known by
        self.last_ts = np.zeros(0)
        self.seen_at = np.zeros(0)
        self.anomalous = np.zeros(0, dtype=bool)
        self.group = np.zeros(0, dtype=np.int64)  # the row's service group, when judged jointly
        self.held = np.zeros(0, dtype=bool)  # the row was evidence of its service's open joint episode
        self.free: list[int] = []
        self.warmed = False  # history has been fed once: series seen later wait for their own
        self.pending: dict[int, int] = {}  # rows waiting for history -> polls waited

    @property
    def size(self) -> int:
        return len(self.labels)

    def rows(self, query: QueryConfig, labels: list[Mapping[str, str]], services: ServiceMap) -> np.ndarray:
        get = self.slots.get
        found = [get((*lab, *lab.values())) for lab in labels]
        for i, row in enumerate(found):
            if row is None:
                found[i] = self._find(query, labels[i], services)
        return np.array(found, dtype=np.int64)

    def _find(self, query: QueryConfig, labels: Mapping[str, str], services: ServiceMap) -> int:
        identity = tuple(sorted(labels.items()))
        row = self.identity.get(identity)
        if row is None:
            row = self._new(query, identity, dict(labels), services)
            if self.warmed and self.bank is not None:
                self.pending[row] = 0
        alias = (*labels, *labels.values())
        self.slots[alias] = row
        self.aliases[row].append(alias)
        return row

    def _new(
        self,
        query: QueryConfig,
        identity: Key,
        labels: dict[str, str],
        services: ServiceMap,
    ) -> int:
        service = query.service or services.service_for(labels) or UNMAPPED
        fp = fingerprint(query.name, labels)
        if self.free:
            row = self.free.pop()
            self.labels[row], self.service[row], self.fingerprint[row], self.aliases[row] = (
                labels,
                service,
                fp,
                [],
            )
            self.last_ts[row], self.seen_at[row], self.anomalous[row] = -math.inf, 0.0, False
            self.held[row] = False
        else:
            row = self.size
            self.labels.append(labels)
            self.service.append(service)
            self.fingerprint.append(fp)
            self.aliases.append([])
            if row >= len(self.last_ts):
                grow = max(8, 2 * len(self.last_ts))
                self.last_ts = np.concatenate([self.last_ts, np.full(grow, -math.inf)])
                self.seen_at = np.concatenate([self.seen_at, np.zeros(grow)])
                self.anomalous = np.concatenate([self.anomalous, np.zeros(grow, dtype=bool)])
            if self.bank is not None and self.bank.size <= row:
                self.bank.grow(max(8, 2 * self.bank.size, row + 1))
            extra = max(row + 1, self.bank.size if self.bank is not None else 0) - len(self.group)
            if extra > 0:  # as long as the bank: joint scoring takes every slot's rarity at once
                self.group = np.concatenate([self.group, np.zeros(extra, dtype=np.int64)])
                self.held = np.concatenate([self.held, np.zeros(extra, dtype=bool)])
        if self.joint is not None:
            self.group[row] = self.joint.group(service)
        self.identity[identity] = row
        return row


@dataclass
class Detected:
    signals: list[Signal] = field(default_factory=list)
    onsets: list[Signal] = field(default_factory=list)
    clears: list[SignalClear] = field(default_factory=list)
    samples: int = 0
    wants_history: bool = False  # series new to a warmed query wait for history (see DetectionStage)


class DetectionStage:
    """Points at or before a series' last seen timestamp are ignored, so a re-delivered sample can
    neither double-count nor re-train a detector.

    A series is anomalous from a point scoring at least the threshold (or crossing a static limit)
    until it is back to normal: its undamped score below the threshold and, for detectors that keep a
    robust level, the value within RELEASE_Z deviations of that level. The first normal point is the
    clear. (Calibrated scores fade while a fault persists; the level does not learn it, so a lasting
    fault stays one open episode instead of clearing after a few points.)

    Warm start: `history` (the query's recent past, fetched once when the agent starts or takes over)
    only trains, so a detector warmed from the past raises nothing for it. A series first seen later
    (a new pod, a series back from eviction) waits up to MAX_WAIT polls for the next history fetch
    (`Detected.wants_history` asks for it), then starts cold; its live points wait with it.
    """

    def __init__(
        self,
        profiles: Mapping[str, DetectorProfile],
        threshold: float,
        services: ServiceMap,
        budget: float | None = None,
        joint: JointDetection | None = None,
    ):
        self.profiles = profiles
        self.threshold = threshold
        self.services = services
        self.budget = budget  # detection.false_alarm_budget, for the calibrated kinds
        self.joint = joint or JointDetection()
        self._queries: dict[str, _QueryState] = {}
        # Detector alarms (episode onsets) and the series-time they were judged over, since start:
        # the realised false-alarm rate a team compares with its budget.
        self.alarms = 0
        self.series_seconds = 0.0

    def process(self, query: QueryConfig, batch: Matrix, history: Matrix | None = None) -> Detected:
        state = self._queries.get(query.name)
        if state is None:
            state = self._queries[query.name] = _QueryState(self._new_bank(query), self._new_joint(query))
        out = Detected()
        if history is not None:
            self._feed(query, state, history, False, out)
            state.warmed, state.pending = True, {}
            out.samples = 0
        self._feed(query, state, batch, True, out)
        self.alarms += sum(1 for s in out.onsets if s.detector != "static")  # per series or joint
        for row in list(state.pending):
            state.pending[row] += 1
            if state.pending[row] > MAX_WAIT:
                del state.pending[row]
        out.wants_history = bool(state.pending)
        return out

    def _feed(
        self, query: QueryConfig, state: _QueryState, batch: Matrix, judge: bool, out: Detected
    ) -> None:
        if not len(batch):
            return
        rows = state.rows(query, batch.labels, self.services)
        owner = np.repeat(rows, batch.counts)
        if judge:  # a live series, even one waiting for its history, is not idle
            np.maximum.at(state.seen_at, owner, batch.ts)
        fresh = batch.ts > state.last_ts[owner]
        if state.pending and judge:
            fresh &= ~np.isin(owner, np.fromiter(state.pending, dtype=np.int64))
        if not fresh.any():
            return
        owner, ts, values = owner[fresh], batch.ts[fresh], batch.values[fresh]
        if judge and state.bank is not None:
            self._expose(state, owner, ts)
        np.maximum.at(state.last_ts, owner, ts)
        values = np.where(np.isfinite(values), values, np.nan)
        stamps, at = np.unique(ts, return_inverse=True)
        size = state.bank.size if state.bank is not None else state.size
        threshold = query.threshold or self.threshold
        for lo in range(0, len(stamps), _ROWS_PER_CHUNK):
            hi = min(lo + _ROWS_PER_CHUNK, len(stamps))
            pick = (at >= lo) & (at < hi)
            grid = np.full((hi - lo, size), np.nan)
            grid[at[pick] - lo, owner[pick]] = values[pick]
            for i in range(hi - lo):
                self._step(query, state, float(stamps[lo + i]), grid[i], threshold, judge, out)

    def _expose(self, state: _QueryState, owner: np.ndarray, ts: np.ndarray) -> None:
        """Add the series-time these points cover (from each series' previous point, or its first here;
        a gap counts for at most SERIES_GAP) to the exposure the alarm rate is measured over."""
        rows, at = np.unique(owner, return_inverse=True)
        first, last = np.full(len(rows), np.inf), np.full(len(rows), -np.inf)
        np.minimum.at(first, at, ts)
        np.maximum.at(last, at, ts)
        before = state.last_ts[rows]
        start = np.where(np.isfinite(before), before, first)
        self.series_seconds += float(np.minimum(last - start, SERIES_GAP).sum())

    def _step(
        self,
        query: QueryConfig,
        state: _QueryState,
        t: float,
        x: np.ndarray,
        threshold: float,
        judge: bool,
        out: Detected,
    ) -> None:
        """One timestamp of every series of a query (NaN where a series has no point)."""
        ok = np.isfinite(x)
        n = len(x)
        out.samples += int(ok.sum())
        score = state.bank.update(np.full(n, t), x) if state.bank is not None else None
        joint = None
        if state.joint is not None and state.bank is not None:
            speaks = ok & state.bank.warm()
            joint = state.joint.score.update(state.bank.rarity, state.group[:n], speaks)
        if not judge:
            return
        if joint is not None:
            self._judge_services(query, state, t, joint, speaks, threshold, out)
        idx = np.flatnonzero(ok)
        xi = x[idx]
        crossed = _crossed(query.thresholds, xi)
        alarm = crossed >= 0
        if state.bank is not None and state.joint is None:
            level, warm = state.bank.unsuppressed[idx], state.bank.warm()[idx]
            lasting = (level >= threshold) | (state.bank.deviation[idx] >= RELEASE_Z)
            assert score is not None
            alarm |= warm & ((score[idx] >= threshold) | (state.anomalous[idx] & lasting))
        was = state.anomalous[idx]
        for j in np.flatnonzero(alarm | was):
            row = int(idx[j])
            if not alarm[j]:
                state.anomalous[row] = False
                out.clears.append(SignalClear(state.fingerprint[row], _dt(t)))
                continue
            judged = (
                1.0
                if score is None or state.bank is None
                else float(max(score[row], state.bank.unsuppressed[row]))
            )
            sig = self._signal(query, state, row, t, float(xi[j]), int(crossed[j]), judged)
            out.signals.append(sig)
            if not state.anomalous[row]:
                out.onsets.append(sig)
            state.anomalous[row] = True

    def _signal(
        self,
        query: QueryConfig,
        state: _QueryState,
        row: int,
        t: float,
        value: float,
        crossed: int,
        judged: float,
    ) -> Signal:
        if crossed >= 0:
            limit = query.thresholds[crossed]
            bound = limit.above if limit.above is not None and value > limit.above else limit.below
            score, kind, severity, expected = 1.0, "static", limit.severity, bound
        else:
            bank = state.bank
            assert bank is not None  # a detector judged this row
            exp = float(bank.expected[row])
            score = judged
            kind = self.profiles[query.detector].kind if query.detector else "static"
            severity, expected = query.severity, (exp if math.isfinite(exp) else None)
        return Signal(
            name=query.name,
            service=state.service[row],
            source="prometheus",
            labels=state.labels[row],
            at=_dt(t),
            value=value,
            score=score,
            detector=kind,
            severity=severity,
            expected=expected,
            fingerprint=state.fingerprint[row],
        )

    def _judge_services(
        self,
        query: QueryConfig,
        state: _QueryState,
        t: float,
        score: np.ndarray,
        speaks: np.ndarray,
        threshold: float,
        out: Detected,
    ) -> None:
        """The joint episodes of a query's services, as `_step` judges series: a service is anomalous
        from a joint score at the threshold until its undamped joint score is below it and none of the
        series that were its evidence is still RELEASE_Z deviations off its level."""
        services, bank = state.joint, state.bank
        assert services is not None and bank is not None
        n = len(speaks)
        group = state.group[:n]
        size = len(services.anomalous)
        spoke = np.bincount(group[speaks], minlength=size) > 0
        off = speaks & state.held[:n] & (bank.deviation[:n] >= RELEASE_Z)
        lasting = (services.score.unsuppressed[:size] >= threshold) | (
            np.bincount(group[off], minlength=size) > 0
        )
        alarm = spoke & ((score[:size] >= threshold) | (services.anomalous & lasting))
        for g in np.flatnonzero(spoke & (alarm | services.anomalous)):
            members = np.flatnonzero(speaks & (group == g))
            if not alarm[g]:
                services.anomalous[g] = False
                state.held[members] = False
                out.clears.append(
                    SignalClear(fingerprint(joint_name(query.name), {"service": services.names[g]}), _dt(t))
                )
                continue
            top = members[np.argsort(-bank.rarity[members], kind="stable")][: self.joint.evidence]
            sig = self._joint_signal(
                query,
                state,
                int(g),
                top,
                len(members),
                t,
                float(max(score[g], services.score.unsuppressed[g])),
            )
            out.signals.append(sig)
            if not services.anomalous[g]:
                out.onsets.append(sig)
                state.held[top] = True
            services.anomalous[g] = True

    def _joint_signal(
        self, query: QueryConfig, state: _QueryState, g: int, top: np.ndarray, n: int, t: float, judged: float
    ) -> Signal:
        services, bank = state.joint, state.bank
        assert services is not None and bank is not None
        service = services.names[g]
        evidence = [
            {
                "fingerprint": state.fingerprint[r],
                "labels": state.labels[r],
                "score": round(float(bank.unsuppressed[r]), 4),
                "rarity": round(float(bank.rarity[r]), 3),
                "expected": float(bank.expected[r]) if math.isfinite(bank.expected[r]) else None,
            }
            for r in top
        ]
        return Signal(
            name=joint_name(query.name),
            service=service,
            source="prometheus",
            labels={"service": service},
            at=_dt(t),
            value=float(services.score.rarity[g]),
            score=judged,
            detector="joint",
            severity=query.severity,
            details={"series": n, "evidence": evidence},
        )

    def _new_joint(self, query: QueryConfig) -> JointScore | None:
        if not joint_enabled(query, self.joint):
            return None
        return JointScore(0, truncation=self.joint.truncation, damping=self.joint.damping)

    def _new_bank(self, query: QueryConfig) -> detectors.Bank | None:
        if query.detector is None:
            return None
        profile = self.profiles[query.detector]
        return detectors.build_bank(profile.kind, profile.params, budget=self.budget)

    def evict(self, now: datetime, idle: timedelta) -> int:
        """Forget series not seen for `idle` (bounded memory as label sets churn); returns how many."""
        cutoff = now.timestamp() - idle.total_seconds()
        gone = 0
        for state in self._queries.values():
            stale = [row for row in state.identity.values() if state.seen_at[row] < cutoff]
            for row in stale:
                del state.identity[tuple(sorted(state.labels[row].items()))]
                for alias in state.aliases[row]:
                    del state.slots[alias]
                state.aliases[row] = []
                state.pending.pop(row, None)
                state.free.append(row)
            if stale and state.bank is not None:
                state.bank.reset(np.array(stale))
            gone += len(stale)
        return gone

    def alarm_rate(self) -> tuple[int, float]:
        """(detector alarms, series-days judged) since start."""
        return self.alarms, self.series_seconds / 86400.0

    def counts(self) -> tuple[int, int]:
        """(warm series, warming series)."""
        warm = total = 0
        for state in self._queries.values():
            rows = np.array(list(state.identity.values()), dtype=np.int64)
            total += len(rows)
            warm += len(rows) if state.bank is None else int(state.bank.warm()[rows].sum())
        return warm, total - warm


def _crossed(thresholds: list[StaticThreshold], x: np.ndarray) -> np.ndarray:
    """Index of the most severe static limit each value crosses, or -1."""
    worst = np.full(len(x), -1)
    rank = np.full(len(x), -1)
    for i, t in enumerate(thresholds):
        hit = np.zeros(len(x), dtype=bool)
        if t.above is not None:
            hit |= x > t.above
        if t.below is not None:
            hit |= x < t.below
        better = hit & (t.severity.rank > rank)
        worst = np.where(better, i, worst)
        rank = np.where(better, t.severity.rank, rank)
    return worst


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
