"""The detection stage: samples per series in, anomaly signals and positive clears out."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.config.models import DetectorProfile, QueryConfig, Selector, Service, ServicesFile
from agent.core.detection import Detected, DetectionStage
from agent.core.domain import Severity, SignalClear, fingerprint
from agent.core.topology import UNMAPPED, ServiceMap
from integrations.prometheus import Matrix, Series

T0 = 1_772_366_400.0  # 2026-03-01T12:00:00Z
STEP = 15.0
WARMUP = 10
PROFILES = {"default": DetectorProfile(kind="robust", params={"window": 40, "warmup": WARMUP})}
SERVICES = ServiceMap(
    ServicesFile(
        services=[
            Service(name="demo-web", selectors=[Selector(match={"job": "demo"})]),
            Service(name="monitoring", selectors=[Selector(match_re={"job": "prometheus|aiops"})]),
        ]
    )
)
LABELS = {"job": "demo", "instance": "a:80"}


class Stage(DetectionStage):
    """The stage, fed lists of series for brevity (a poll hands it the same points as columns)."""

    def process(self, query: QueryConfig, batch: Any, history: Matrix | None = None) -> Detected:
        return super().process(query, batch if isinstance(batch, Matrix) else Matrix.of(batch), history)


def stage(threshold: float = 0.8) -> Stage:
    return Stage(PROFILES, threshold, SERVICES)


def query(name: str = "latency", **fields: Any) -> QueryConfig:
    return QueryConfig.model_validate({"name": name, "promql": "up", **fields})


def static_query(**fields: Any) -> QueryConfig:
    return query("errors", detector=None, thresholds=[{"above": 0.05, "severity": "critical"}], **fields)


def ts(i: int) -> float:
    return T0 + i * STEP


def series(values: Sequence[float], start: int = 0, labels: dict[str, str] | None = None) -> Series:
    return Series(
        labels=dict(LABELS if labels is None else labels),
        points=[(ts(start + i), v) for i, v in enumerate(values)],
    )


def noise(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [0.2 + rng.gauss(0.0, 0.01) for _ in range(n)]


def when(i: int) -> datetime:
    return datetime.fromtimestamp(ts(i), UTC)


# ---------------------------------------------------------------- detectors per series


def test_detectors_are_created_lazily_one_per_series_and_query() -> None:
    st = stage()
    assert st.counts() == (0, 0)
    q = query()
    st.process(q, [series([0.2]), series([0.2], labels={"job": "demo", "instance": "b:80"})])
    assert st.counts() == (0, 2)
    st.process(query("other"), [series([0.2])])  # same labels, another query: its own detector
    assert st.counts() == (0, 3)
    st.process(q, [series(noise(WARMUP), start=1)])  # only series a:80 of `latency` warms up
    assert st.counts() == (1, 2)


def test_series_do_not_share_a_baseline() -> None:
    st, q = stage(), query()
    b_labels = {"job": "demo", "instance": "b:80"}
    st.process(q, [series(noise(30)), series(noise(30, seed=1), labels=b_labels)])
    out = st.process(q, [series([5.0], start=30), series([0.2], start=30, labels=b_labels)])
    assert [s.labels["instance"] for s in out.signals] == ["a:80"]


def test_detector_signal_carries_its_evidence() -> None:
    st, q = stage(), query(severity="critical")
    st.process(q, [series(noise(30))])
    out = st.process(q, [series([5.0], start=30)])
    [sig] = out.signals
    assert out.onsets == [sig]
    assert (sig.name, sig.service, sig.source, sig.detector) == (
        "latency",
        "demo-web",
        "prometheus",
        "robust",
    )
    assert (sig.at, sig.value, sig.severity) == (when(30), 5.0, Severity.CRITICAL)
    assert sig.score >= 0.8
    assert sig.expected == pytest.approx(0.2, abs=0.02)
    assert sig.fingerprint == fingerprint("latency", LABELS)
    assert dict(sig.labels) == LABELS


def test_no_detector_signal_while_warming_up() -> None:
    st, q = stage(), query()
    out = st.process(q, [series([0.2] * (WARMUP - 1) + [500.0])])
    assert out.signals == []
    assert out.samples == WARMUP


def test_query_threshold_overrides_the_stage_threshold() -> None:
    lenient, strict = query(), query(threshold=0.2)
    values = [*noise(30), 0.25]  # a modest excursion, well below 0.8
    assert stage().process(lenient, [series(values)]).signals == []
    last = stage().process(strict, [series(values)]).signals[-1]
    assert last.at == when(30)
    assert 0.2 <= last.score < 0.8


# ---------------------------------------------------------------- static thresholds


def test_static_threshold_fires_with_score_one() -> None:
    out = stage().process(static_query(), [series([0.01, 0.2])])
    [sig] = out.signals
    assert (sig.score, sig.detector, sig.severity) == (1.0, "static", Severity.CRITICAL)
    assert (sig.value, sig.expected, sig.at) == (0.2, 0.05, when(1))


def test_static_lower_bound() -> None:
    q = query("target_down", detector=None, thresholds=[{"below": 1}])
    out = stage().process(q, [series([1.0, 0.0, 1.0])])
    [sig] = out.signals
    assert (sig.value, sig.expected, sig.score) == (0.0, 1.0, 1.0)
    assert out.clears == [SignalClear(sig.fingerprint, when(2))]


def test_most_severe_crossed_threshold_wins() -> None:
    q = query(
        "errors",
        detector=None,
        thresholds=[{"above": 0.05, "severity": "warning"}, {"above": 0.2, "severity": "critical"}],
    )
    out = stage().process(q, [series([0.1, 0.3])])
    assert [(s.severity, s.expected) for s in out.signals] == [
        (Severity.WARNING, 0.05),
        (Severity.CRITICAL, 0.2),
    ]


def test_static_threshold_fires_while_the_detector_warms_up() -> None:
    q = query(thresholds=[{"above": 1.0}])
    [sig] = stage().process(q, [series([0.2, 3.0])]).signals
    assert sig.detector == "static"


# ---------------------------------------------------------------- bad and missing data


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_points_never_signal(bad: float) -> None:
    out = stage().process(static_query(), [series([bad, bad, bad])])
    assert (out.signals, out.clears, out.samples) == ([], [], 0)


def test_missing_data_is_not_evidence_of_recovery() -> None:
    st, q = stage(), static_query()
    assert len(st.process(q, [series([0.2])]).onsets) == 1
    assert st.process(q, []) == Detected()  # the series vanished: no clear
    assert st.process(q, [series([math.nan, math.nan], start=1)]).clears == []
    out = st.process(q, [series([0.01], start=3)])
    assert out.clears == [SignalClear(fingerprint("errors", LABELS), when(3))]


def test_redelivered_points_are_ignored() -> None:
    st, q = stage(), static_query()
    first = st.process(q, [series([0.01, 0.2])])
    assert (first.samples, len(first.signals)) == (2, 1)
    again = st.process(q, [series([0.01, 0.2, 0.3])])  # overlapping window: only the last point is new
    assert again.samples == 1
    assert [s.value for s in again.signals] == [0.3]
    assert again.onsets == []
    older = st.process(q, [series([0.9], start=1), series([0.9], start=0)])
    assert (older.samples, older.signals) == (0, [])


def test_redelivered_points_do_not_train_the_detector_twice() -> None:
    values = noise(30)
    once, twice, q = stage(), stage(), query(threshold=0.1)
    once.process(q, [series(values)])
    twice.process(q, [series(values)])
    twice.process(q, [series(values[:20])])  # a repeated poll
    probe = [series([0.23, 0.18, 0.25], start=30)]
    assert once.process(q, probe).signals == twice.process(q, probe).signals


# ---------------------------------------------------------------- episodes


def test_one_onset_and_one_clear_per_episode() -> None:
    out = stage().process(static_query(), [series([0.01, 0.1, 0.2, 0.15, 0.01, 0.02])])
    assert [s.value for s in out.signals] == [0.1, 0.2, 0.15]
    assert [s.value for s in out.onsets] == [0.1]
    assert out.clears == [SignalClear(fingerprint("errors", LABELS), when(4))]


def test_episode_spanning_polls() -> None:
    st, q = stage(), static_query()
    assert len(st.process(q, [series([0.01, 0.1])]).onsets) == 1
    middle = st.process(q, [series([0.2, 0.3], start=2)])
    assert (len(middle.signals), middle.onsets, middle.clears) == (2, [], [])
    end = st.process(q, [series([0.01, 0.1], start=4)])
    assert [c.at for c in end.clears] == [when(4)]
    assert [s.at for s in end.onsets] == [when(5)]  # a second episode


def test_detector_episode() -> None:
    values = [*noise(40), 5.0, 5.2, 4.9, *noise(5, seed=1)]
    out = stage().process(query(), [series(values)])
    assert [s.at for s in out.signals] == [when(40), when(41), when(42)]
    assert len(out.onsets) == 1
    assert [c.at for c in out.clears] == [when(43)]


def test_ensemble_episode_lasts_as_long_as_the_fault() -> None:
    """The default detector damps repeats of one event and its calibrated scores fade while a fault
    persists, but the series stays anomalous (and keeps signalling) until the value is back near its
    level; then exactly one clear."""
    profiles = {"default": DetectorProfile(kind="ensemble", params={"calibration": {"min_count": 30}})}
    st = Stage(profiles, 0.8, SERVICES)
    fault = [5.0 + 0.1 * (i % 3) for i in range(40)]
    out = st.process(query(), [series([*noise(200), *fault, *noise(10, seed=3)])])
    assert [s.at for s in out.onsets] == [when(200)]
    assert [s.at for s in out.signals] == [when(i) for i in range(200, 240)]
    assert [c.at for c in out.clears] == [when(240)]
    assert out.onsets[0].detector == "ensemble" and out.onsets[0].expected == pytest.approx(0.2, abs=0.05)


def test_alarm_rate_counts_detector_onsets_per_series_day() -> None:
    """What /metrics reports against the budget: detector episodes started, per series-day judged
    (static limits are not the detectors' false alarms; a redelivered point adds no exposure)."""
    st = stage()
    first = [*noise(40), 5.0, 5.2, *noise(20, seed=1)]
    st.process(query(), [series(first), series(noise(len(first)), labels={"job": "demo", "instance": "b"})])
    st.process(query(), [series(noise(10, seed=2), start=len(first) - 5)])  # 5 repeats, 5 new
    st.process(static_query(), [series([0.01, 0.2, 0.01])])
    alarms, days = st.alarm_rate()
    assert alarms == 1
    judged = 2 * (len(first) - 1) + 5  # each series' time from its first point to its last
    assert days == pytest.approx(judged * STEP / 86400)


def test_the_false_alarm_budget_reaches_calibrated_banks_unless_a_profile_sets_its_own() -> None:
    profiles = {
        "default": DetectorProfile(kind="ensemble"),
        "own": DetectorProfile(kind="ensemble", params={"budget": 3.0}),
    }
    st = Stage(profiles, 0.8, SERVICES, budget=0.5)
    st.process(query(), [series(noise(3))])
    st.process(query("other", detector="own"), [series(noise(3))])
    budgets = {name: q.bank.budget.budget for name, q in st._queries.items()}  # type: ignore[union-attr]
    assert budgets == {"latency": 0.5, "other": 3.0}


def test_many_series_of_one_query_share_one_bank() -> None:
    st = Stage({"default": DetectorProfile(kind="ensemble")}, 0.8, SERVICES)
    batch = [series(noise(5, seed=i), labels={"job": "demo", "instance": f"i{i}"}) for i in range(50)]
    out = st.process(query(), batch)
    assert out.samples == 250
    bank = st._queries["latency"].bank
    assert bank is not None and bank.size >= 50 and st.counts() == (0, 50)


# ---------------------------------------------------------------- services


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ({"job": "demo", "instance": "a:80"}, "demo-web"),
        ({"job": "aiops"}, "monitoring"),
        ({"job": "node"}, UNMAPPED),
        ({}, UNMAPPED),
    ],
)
def test_series_map_to_services_by_selectors(labels: dict[str, str], service: str) -> None:
    [sig] = stage().process(static_query(), [series([0.5], labels=labels)]).signals
    assert sig.service == service


def test_query_service_overrides_selectors() -> None:
    [sig] = stage().process(static_query(service="monitoring"), [series([0.5])]).signals
    assert sig.service == "monitoring"


# ---------------------------------------------------------------- eviction


def test_evict_forgets_idle_series() -> None:
    st, q = stage(), query()
    st.process(
        q, [series([0.2], start=0), series([0.2], start=10, labels={"job": "demo", "instance": "b:80"})]
    )
    idle = timedelta(minutes=2)
    now = datetime.fromtimestamp(ts(10), UTC) + idle
    assert st.evict(now, idle) == 1  # a:80 was last seen 150 s before b:80
    assert st.counts() == (0, 1)
    assert st.evict(now + timedelta(seconds=1), idle) == 1
    assert st.counts() == (0, 0)


def test_an_evicted_series_starts_over_with_a_fresh_detector() -> None:
    st, q = stage(), query()
    st.process(q, [series(noise(30))])
    assert st.counts() == (1, 0)
    st.evict(when(29) + timedelta(hours=2), timedelta(hours=1))
    st.process(q, [series([0.2], start=500)])
    assert st.counts() == (0, 1)


def test_a_series_is_one_series_whatever_order_its_labels_come_in() -> None:
    st = stage()
    q = query()
    st.process(q, [series(noise(5), labels={"job": "demo", "instance": "a:80"})])
    st.process(q, [series(noise(5, seed=1), start=5, labels={"instance": "a:80", "job": "demo"})])
    assert sum(st.counts()) == 1
    st.evict(datetime.fromtimestamp(ts(5000), UTC), timedelta(minutes=1))
    assert st.counts() == (0, 0)
    st.process(q, [series([0.2], start=6000, labels={"instance": "a:80", "job": "demo"})])
    assert st.counts() == (0, 1)  # evicted under both spellings: it starts over as one new series


def test_a_series_waiting_for_its_history_is_not_idle() -> None:
    """A series new to a warmed query waits for history, its points held back; it is live all the same,
    so a tick in between must not evict it (it did: it then waited for ever)."""
    st = stage()
    q = query()
    st.process(q, Matrix.of([series(noise(5))]), history=Matrix.of([series(noise(20), start=-20)]))
    b = {"job": "demo", "instance": "b:80"}
    out = st.process(q, [series([0.2], start=5, labels=b)])
    assert out.wants_history and sum(st.counts()) == 2
    assert st.evict(when(6), timedelta(minutes=1)) == 0
    assert sum(st.counts()) == 2
