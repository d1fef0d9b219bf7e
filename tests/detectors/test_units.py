"""The per-series unit that lets detectors judge a series at any magnitude."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.bank import DetectorBank
from detectors.units import LIMIT, unit_of, units_of

FIRST_VALUES = [0.0, 1.0, -3.5, 1e-12, 1e-15, 1e30, 1e300, -1.7e308, 1e-300, 5e-324]


@pytest.mark.parametrize("value", FIRST_VALUES)
def test_a_unit_is_a_power_of_two_that_brings_the_value_near_one(value: float) -> None:
    unit = unit_of(value)
    assert math.frexp(unit)[0] == 0.5  # a power of two: dividing by it is exact
    assert unit == 1.0 or 1.0 <= abs(value) / unit < 2.0
    assert units_of(np.array([value]))[0] == unit


def test_ordinary_series_keep_the_unit_one() -> None:
    assert {unit_of(v) for v in (0.0, 1e-12, 0.5, 42.0, 1e9, 1e30)} == {1.0}


def test_a_value_far_beyond_the_first_is_clipped_and_scores_as_an_extreme() -> None:
    """A series that starts near 1e-300 and jumps to 1e300 overflows nothing: the jump is its most extreme
    point, and the bank reports expected values in the series' own unit."""
    bank = DetectorBank(1, calibration={"min_count": 30, "horizon": 300})
    rng = np.random.default_rng(0)
    scores = [
        bank.update(np.array([60.0 * t]), np.array([1e-300 * (1 + 0.01 * rng.normal())]))[0]
        for t in range(300)
    ]
    jump = bank.update(np.array([18000.0]), np.array([1e300]))[0]
    assert all(0.0 <= s <= 1.0 for s in [*scores, jump])
    assert jump > 0.8 > max(scores[100:])
    assert 0.9e-300 < bank.expected[0] < 1.1e-300
    assert 1e300 / unit_of(1e-300) > LIMIT
