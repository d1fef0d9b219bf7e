"""Joint per-group scoring: fair to the group's size, sensitive to several series moving at once."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.joint import JointScore, sidak_max, truncated_sum


def null_rarity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Calibrated rarities of ordinary points: -log10 of a uniform tail share."""
    return -np.log10(rng.uniform(size=n))


def test_sidak_max_corrects_for_the_number_of_series_with_an_opinion() -> None:
    m, n = sidak_max(np.array([3.0, 0.5, 3.0]), np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(m, [3.0 - np.log10(2), 3.0, 0.0])
    assert n.tolist() == [2, 1, 0]


def test_truncated_sum_ignores_ordinary_series() -> None:
    s = truncated_sum(np.array([0.4, 2.0, 1.6, 0.9]), np.array([0, 0, 0, 1]), 2, 1.5)
    np.testing.assert_allclose(s, [3.6, 0.0])


def test_a_group_of_forty_does_not_alarm_more_often_than_a_group_of_one() -> None:
    """Null rarities for 2,000 points: max-over-series alarms ~40x as often on 40 series; joint does not."""
    rng = np.random.default_rng(1)
    group = np.repeat([0, 1], [40, 1])
    joint = JointScore(2, calibration={"min_count": 50})
    bar = 2.5  # one point in ~300 per series
    joint_hits = np.zeros(2)
    max_hits = np.zeros(2)
    for _ in range(2000):
        r = null_rarity(rng, 41)
        joint.update(r, group, np.ones(41, dtype=bool))
        joint_hits += joint.rarity >= bar
        max_hits += [r[:40].max() >= bar, r[40] >= bar]
    assert max_hits[0] > 20 * max_hits[1]
    assert joint_hits[0] <= 3 * max(joint_hits[1], 1)


def test_groups_without_an_opinion_score_zero_and_keep_their_state() -> None:
    joint = JointScore(2)
    out = joint.update(np.array([9.0, 9.0]), np.array([0, 1]), np.array([True, False]))
    assert out[0] > 0.8 and out[1] == 0.0
    assert joint.count.tolist() == [1, 0]


def test_grow_adds_empty_groups() -> None:
    joint = JointScore(1)
    joint.grow(3)
    assert joint.size == 3 and joint.calibrator.total.shape[0] == 3


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_truncation_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="truncation"):
        JointScore(1, truncation=bad)
