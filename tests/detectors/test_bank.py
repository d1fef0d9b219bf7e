"""The array-at-a-time bank and its parts: independence of slots, calibration, damping, gating."""

from __future__ import annotations

import numpy as np
import pytest

import detectors
from detectors.bank import DetectorBank
from detectors.damping import AlarmDamping
from detectors.novelty import ShapeNovelty
from detectors.seasonal import DailyProfile
from detectors.tail import TailCalibrator

SMALL = {"calibration": {"min_count": 30, "horizon": 300}, "level": {"warm": 10}, "novelty": {"warm": 30}}


def streams(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000 + 300.0 * np.arange(length)
    x = (
        50
        + 10 * np.sin(2 * np.pi * t[:, None] / 86400 + rng.uniform(0, 6, n))
        + rng.normal(0, 1, (length, n))
    )
    x[rng.random((length, n)) < 0.05] = np.nan  # missing points
    x[length // 2, 0] += 80  # a spike in series 0
    return t, x


def run(bank: DetectorBank, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.array([bank.update(np.full(x.shape[1], ti), xi) for ti, xi in zip(t, x, strict=True)])


def test_slots_never_share_state() -> None:
    """Scoring series together gives each exactly the scores it gets alone: no look-across."""
    t, x = streams(4, 600)
    together = run(DetectorBank(4, **SMALL), t, x)
    for j in range(4):
        alone = run(DetectorBank(1, **SMALL), t, x[:, j : j + 1])
        np.testing.assert_array_equal(together[:, j], alone[:, 0])


def test_bank_detector_matches_a_bank_slot() -> None:
    t, x = streams(1, 400)
    per_series = detectors.build("ensemble", SMALL)
    scores = [per_series.update(float(ti), float(xi)) for ti, xi in zip(t, x[:, 0], strict=True)]
    np.testing.assert_allclose(scores, run(DetectorBank(1, **SMALL), t, x)[:, 0])


def test_growing_keeps_state_and_reset_forgets_it() -> None:
    t, x = streams(2, 300)
    bank = DetectorBank(2, **SMALL)
    before = run(bank, t[:200], x[:200])
    bank.grow(5)
    after = run(bank, t[200:], np.column_stack([x[200:], np.full((100, 3), 50.0)]))
    reference = run(DetectorBank(2, **SMALL), t, x)
    np.testing.assert_array_equal(np.vstack([before, after[:, :2]]), reference)
    bank.reset(np.array([0]))
    fresh = DetectorBank(1, **SMALL)
    assert bank.level.cnt[0] == fresh.level.cnt[0] == 0
    assert bank.nbytes_per_series() == DetectorBank(1, **SMALL).nbytes_per_series()


def test_missing_points_change_nothing() -> None:
    """A NaN scores 0 and leaves every part of the state as it was."""
    t, x = streams(1, 200)
    bank = DetectorBank(1, **SMALL)
    run(bank, t, x)
    snapshot = {f.name: getattr(bank.level, f.name).copy() for f in bank.level.fields()}
    assert bank.update(np.array([t[-1] + 300]), np.array([np.nan]))[0] == 0.0
    for name, value in snapshot.items():
        np.testing.assert_array_equal(getattr(bank.level, name), value)


def test_default_bank_state_stays_under_8_kib_per_series() -> None:
    assert DetectorBank(10).nbytes_per_series() <= 8 * 1024


def test_spike_scores_above_the_alert_threshold_and_ordinary_points_do_not() -> None:
    t, x = streams(1, 1200)
    scores = run(DetectorBank(1), t, x)[:, 0]
    spike = len(t) // 2
    assert scores[spike] > 0.8
    ordinary = np.delete(scores[200:], spike - 200)
    assert np.mean(ordinary < 0.5) > 0.98


def test_tail_calibrator_measures_rarity_against_the_series_own_history() -> None:
    cal = TailCalibrator(2, horizon=10_000, min_count=100)
    ok = np.ones(2, dtype=bool)
    rng = np.random.default_rng(1)
    for _ in range(2000):  # series 0 is calm, series 1 ten times as noisy
        cal.step(np.abs(rng.normal(0, [1.0, 10.0])), ok)
    rarity = cal.step(np.array([3.0, 3.0]), ok)
    assert rarity[0] > 2.0  # |z| >= 3 happens about 3 in 1000 times
    assert rarity[1] < 0.2  # for the noisy series, 3 is ordinary
    record = cal.step(np.array([30.0, 300.0]), ok)
    assert (record > 3.0).all()  # beyond anything seen: rarer than the whole history


def test_a_record_weighs_more_the_more_history_stands_behind_it() -> None:
    """The same margin over the record: gentle for a young series (records are beaten often early on),
    steep once `record_history` points stand behind it; without `record_history` the gain is fixed."""
    grown = TailCalibrator(2, horizon=10_000, min_count=100, record_gain=10.0, record_history=2000)
    fixed = TailCalibrator(2, horizon=10_000, min_count=100, record_gain=10.0)
    rng = np.random.default_rng(3)
    for i in range(3000):  # series 0 starts 2,700 points late: 300 points of history at the end
        ok = np.array([i >= 2700, True])
        u = np.abs(rng.normal(0, 1.0, 2))
        grown.step(u, ok)
        fixed.step(u, ok)
    ok = np.ones(2, dtype=bool)
    base = -np.log10(1.0 / (grown.total / grown.weight + 1.0))  # about the rarity of any new record
    young, old = grown.step(1.5 * grown.record, ok) - base
    assert old > 2.0  # half as large again as a record over 3,000 points: about 10 * 0.5 / ln 10
    assert young < 0.8  # over 300 points: about the gentle young gain, 3.2 * 0.5 / ln 10
    same = fixed.step(1.5 * fixed.record, ok) - base
    assert abs(same[0] - same[1]) < 0.6  # fixed gain: only the histories' sizes differ


def test_tail_calibrator_is_silent_until_warm() -> None:
    cal = TailCalibrator(1, min_count=50)
    ok = np.ones(1, dtype=bool)
    scores = [cal.step(np.array([float(i)]), ok)[0] for i in range(cal.warmup)]
    assert scores == [0.0] * cal.warmup
    assert cal.ready()[0]


def test_damping_reports_an_event_once_but_lets_a_later_one_through() -> None:
    damp = AlarmDamping(1, horizon=100)
    ok = np.ones(1, dtype=bool)
    out = [damp.step(np.array([s]), ok)[0] for s in [5.0, 5.0, 4.9, 5.2]]
    assert out[0] == 5.0 and out[1] == pytest.approx(0.05) and out[2] == pytest.approx(0.049)
    assert out[3] == 5.2  # worse than the faded first alarm: reported
    for _ in range(60):
        damp.step(np.array([0.0]), ok)
    assert damp.step(np.array([3.0]), ok)[0] == 3.0  # the bar has faded to below 3 by now


def test_daily_profile_speaks_only_for_seasonal_series() -> None:
    n, days, per_day = 2, 6, 96
    t = 1_700_000_000 + (86400 / per_day) * np.arange(days * per_day)
    rng = np.random.default_rng(2)
    daily = 50 + 20 * np.sin(2 * np.pi * t / 86400)
    x = np.column_stack([daily + rng.normal(0, 1, len(t)), 50 + rng.normal(0, 5, len(t))])
    prof = DailyProfile(n)
    level = np.full(n, np.nan)
    for ti, xi in zip(t, x, strict=True):
        level = np.where(np.isnan(level), xi, level + 0.01 * (xi - level))
        prof.step(np.full(n, ti), xi, np.ones(n, dtype=bool), level, np.full(n, 1e-6))
    assert prof.speaks.tolist() == [True, False]


def test_shape_novelty_learns_a_recurring_pattern() -> None:
    nov = ShapeNovelty(1, warm=0)
    ok = np.ones(1, dtype=bool)
    pattern = [0.0] * 12 + [10.0, 10.0, 0.0, 0.0]
    first = [nov.step(np.array([v]), ok)[0] for v in pattern * 2]
    later = [nov.step(np.array([v]), ok)[0] for v in pattern * 20]
    assert np.nanmax(first) >= 0.4  # the first burst is new
    assert np.nanmax(later[-len(pattern) :]) < 0.1  # by now it is a known shape
    novel = [nov.step(np.array([v]), ok)[0] for v in [0.0] * 12 + [5.0, -5.0, 5.0, -5.0]]
    assert np.nanmax(novel) > 0.3


def test_build_bank_loops_over_per_series_kinds() -> None:
    loop = detectors.build_bank("robust", {"window": 30, "warmup": 10}, n=2)
    t, x = streams(2, 100)
    for ti, xi in zip(t, x, strict=True):
        loop.update(np.full(2, ti), xi)
    assert loop.warm().all()
    with pytest.raises(ValueError, match="unknown detector kind"):
        detectors.build_bank("nope")


@pytest.mark.parametrize("kind", ["robust", "river_gaussian"])
def test_a_loop_grows_and_resets_slots_empty(kind: str) -> None:
    """New and reset slots know nothing yet: no expected value, no score; no other series' values leak in."""
    loop = detectors.build_bank(kind, {"window": 30, "warmup": 10}, n=2)
    for i in range(40):
        loop.update(np.full(2, float(i)), np.array([5.0, 100.0 + i % 3]))
    assert np.isfinite(loop.expected).all()
    loop.grow(5)
    assert loop.size == 5
    np.testing.assert_array_equal(loop.expected[2:], np.nan)
    np.testing.assert_array_equal(loop.unsuppressed[2:], 0.0)
    assert loop.expected[0] == 5.0
    loop.grow(3)  # growing never shrinks
    assert loop.size == 5 and len(loop.expected) == len(loop.unsuppressed) == len(loop.deviation) == 5
    loop.reset(np.array([1]))
    assert np.isnan(loop.expected[1]) and loop.unsuppressed[1] == 0.0 and not loop.warm()[1]


def wobble(length: int, seed: int = 0) -> np.ndarray:
    """A p99 sitting near a histogram bucket's edge (0.0994 s), moving by hundredths of a percent."""
    return 0.0994 + np.random.default_rng(seed).integers(-3, 4, length) * 1e-5


@pytest.mark.parametrize("min_count", [30, 100])
def test_members_are_not_calibrated_on_their_own_warm_up(min_count: int) -> None:
    """A member says nothing while it warms up; had its calibration counted that silence, its first real
    surprise would look like a record and raise an alarm on a calm series (the demo's false incident)."""
    bank = DetectorBank(1, calibration={"min_count": min_count})
    x = wobble(2 * bank.warmup)
    scores = run(bank, np.arange(len(x), dtype=float), x[:, None])[:, 0]
    assert bank.warm()[0]
    assert scores.max() < 0.5


def test_changes_below_materiality_on_a_flat_series_are_not_anomalies() -> None:
    bank = DetectorBank(3, **SMALL)
    x = np.column_stack([wobble(400, seed) for seed in range(3)])
    x[300, 0] = 0.0996  # +0.2%: ten times its usual wobble, still nothing to act on
    x[300, 1] = 0.1094  # +10%
    scores = run(bank, np.arange(400, dtype=float), x)
    assert scores[300, 0] == 0.0 and scores[300, 1] > 0.8
    assert scores[:, 2].max() < 0.5
    with pytest.raises(ValueError, match="materiality"):
        DetectorBank(1, materiality=-0.1)
