"""The false-alarm budget: each series' alarm line follows its sample rate and its own tail, so the
realised rate of alarms on normal data is about the budget, whatever the series' resolution."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.bank import ALARM_SCORE, DetectorBank
from detectors.budget import AlarmBudget

DAY = 86400.0


def alarms_per_series_day(
    budget: float | None, step: float, days: float, n: int = 24, seed: int = 0
) -> float:
    """Gaussian noise around a daily cycle (nothing anomalous), `n` series in lockstep; alarms are scores
    rising through the alarm score, counted once the bank is warm."""
    rng = np.random.default_rng(seed)
    bank = DetectorBank(n, budget=budget)
    points = int(days * DAY / step)
    alarms, judged, above = 0, 0, np.zeros(n, dtype=bool)
    for i in range(points):
        t = i * step
        x = 100.0 + 10.0 * np.sin(2 * np.pi * t / DAY) + rng.normal(0.0, 2.0, n)
        flagged = bank.update(np.full(n, t), x) >= ALARM_SCORE
        warm = bank.warm()
        alarms += int((flagged & ~above & warm).sum())
        judged += int(warm.sum())
        above = flagged
    return alarms / (judged * step / DAY)


def test_realised_rate_on_normal_data_follows_the_budget() -> None:
    loose = alarms_per_series_day(2.0, step=300.0, days=12.0, n=48, seed=1)
    tight = alarms_per_series_day(0.05, step=300.0, days=12.0, n=48, seed=1)
    assert 0.8 < loose < 5.0  # within a factor of 2.5 either side of the budget
    assert tight < 0.15 and tight < loose / 10


def test_finer_sampling_does_not_multiply_alarms() -> None:
    """Without a budget the line is a fixed rarity: a series sampled 20x as often (15 s instead of 5
    minutes) alarms many times as often per day. With one, the line rises with the points a day."""
    fast = alarms_per_series_day(1.0, step=15.0, days=0.5, n=48, seed=2)
    fixed = alarms_per_series_day(None, step=15.0, days=0.5, n=48, seed=2)
    assert fast < 2.5
    assert fixed > 2 * fast


def test_a_heavier_tail_raises_the_line() -> None:
    b = AlarmBudget(2)
    ok = np.ones(2, dtype=bool)
    for i in range(3000):
        # series 1 crosses rarity 3 every 50 points, series 0 never
        rarity = np.array([0.5, 3.5 if i % 50 == 0 else 0.5])
        b.observe(np.full(2, 60.0 * i), rarity, ok)
    quiet, heavy = b.line()
    assert heavy > quiet + 0.5


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget"):
        AlarmBudget(1, budget=0.0)


def test_the_budget_state_is_small() -> None:
    assert DetectorBank(4).nbytes_per_series() <= 8 * 1024


def test_the_tail_factor_raises_every_line_by_its_decades() -> None:
    """Alarms expected `tail` times as often as the decade-per-unit model says: the line moves up by
    log10(tail), for a series with history as for one still on the prior."""
    plain, heavier = AlarmBudget(2), AlarmBudget(2, tail=1.25)
    ok = np.array([True, False])  # series 0 learns, series 1 stays on the prior
    rng = np.random.default_rng(4)
    for i in range(3000):
        rarity = rng.exponential(0.6, 2)
        plain.observe(np.full(2, 300.0 * i), rarity, ok)
        heavier.observe(np.full(2, 300.0 * i), rarity, ok)
    assert heavier.line() - plain.line() == pytest.approx([np.log10(1.25)] * 2)
    with pytest.raises(ValueError):
        AlarmBudget(1, tail=0.0)
