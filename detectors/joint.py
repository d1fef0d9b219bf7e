"""Joint scoring: the calibrated rarities of a group's series (a service's metrics) at one time -> one rarity.

Max-over-series alarms about n times as often on a group of n series as on a group of one: each series has
its own one-in-N tail. Two tests, each fair to the group's size, replace it:

- the rarest series, Šidák-corrected: max rarity - log10(n), n the series with an opinion at this time.
  With rarity = -log10 p that is the min-p test's Bonferroni bound: needs no history, and is conservative
  when the series move together (fewer independent chances than n);
- agreement: the truncated sum of rarities (Zaykin's truncated product of p-values: the rarities of the
  series at least `truncation` rare), turned into rarity by the group's own `TailCalibrator` (its empirical
  null: how often this group saw a sum that large). Several series that each move a little add up, and the
  calibration holds whatever n is and however correlated the series are (a service's p50, p90 and p99
  latency move together: an analytic combination would count them three times).

The joint rarity is the larger of the two less log10(2) (Bonferroni over two tests; a group with one series
has only the first). `JointScore` maps it into [0, 1] as a bank maps a series, and damps it per group on
that scale, not on rarity: one damping bar now covers many series, and a record rarity of 90 on one metric
must not hide, for hundreds of points, a new event of rarity 20 on another (both score about 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.bank import DEFAULT_FLOOR, DEFAULT_SCALE, to_unit
from detectors.damping import AlarmDamping
from detectors.slots import Field, Slots
from detectors.tail import TailCalibrator

_LOG2 = float(np.log10(2.0))


def ranked(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's members, largest value first: (order, rank), `order` the indices sorted by group then
    value descending, `rank[i]` the place of `order[i]` within its group (0 = its largest).

    >>> order, rank = ranked(np.array([1.0, 5.0, 3.0, 2.0]), np.array([0, 1, 0, 1]))
    >>> order.tolist(), rank.tolist()
    ([2, 0, 1, 3], [0, 1, 0, 1])
    """
    order = np.lexsort((-values, group))
    g = group[order]
    rank = np.arange(len(order)) - np.searchsorted(g, g, side="left")
    return order, rank


def truncated_sum(values: np.ndarray, group: np.ndarray, size: int, at: float) -> np.ndarray:
    """Per group (0..size-1), the sum of its values that are at least `at`.

    >>> truncated_sum(np.array([1.0, 5.0, 3.0, 2.0, 4.0]), np.array([0, 1, 0, 1, 0]), 3, 2.0).tolist()
    [7.0, 7.0, 0.0]
    """
    return np.bincount(group, weights=np.where(values >= at, values, 0.0), minlength=size)


def sidak_max(values: np.ndarray, group: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group, (max rarity - log10(n), n): the rarest member corrected for the group's n members.

    A group of 100 series whose rarest is one in 10^4 is as surprising as one series at one in 10^2.

    >>> m, n = sidak_max(np.array([4.0, 1.0] + [1.0] * 98 + [2.0]), np.array([0] * 100 + [1]), 3)
    >>> m.round(6).tolist(), n.tolist()
    ([2.0, 2.0, 0.0], [100, 1, 0])
    """
    n = np.bincount(group, minlength=size)
    best = np.zeros(size)
    np.maximum.at(best, group, values)
    return np.where(n > 0, best - np.log10(np.maximum(n, 1)), 0.0), n


class JointScore(Slots):
    """One joint score per group, in lockstep: `update(rarity, group, ok)` takes every series' rarity (a
    bank's `rarity`), its group index, and whether it has an opinion now (a point, and warm).

    >>> import numpy as np
    >>> joint = JointScore(2)
    >>> group = np.repeat([0, 1], [40, 1])  # a service with 40 series beside a service with one
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(2000):
    ...     s = joint.update(-np.log10(rng.uniform(size=41)), group, np.ones(41, bool))
    >>> r = np.full(41, 0.3)
    >>> r[:10] = 2.5  # ten series of the first service move a little (one in 300 each), at once
    >>> s = joint.update(r, group, np.ones(41, bool))
    >>> bool(s[0] > 0.8), bool(s[1] < 0.5)
    (True, True)
    """

    rarity: np.ndarray  # the last joint rarity of each group, undamped
    unsuppressed: np.ndarray  # the same in [0, 1]
    count: np.ndarray  # the series that had an opinion at the group's last update

    def __init__(
        self,
        groups: int = 0,
        truncation: float = DEFAULT_FLOOR,
        damping: int = 400,
        floor: float = DEFAULT_FLOOR,
        scale: float = DEFAULT_SCALE,
        calibration: dict[str, Any] | None = None,
    ):
        if truncation <= 0:
            raise ValueError("truncation must be > 0")
        self.truncation, self.floor, self.scale = truncation, floor, scale
        self.calibrator = TailCalibrator(groups, **(calibration or {}))
        self.damping = AlarmDamping(groups, horizon=damping)
        self.allocate(groups)

    def fields(self) -> list[Field]:
        return [Field("rarity"), Field("unsuppressed"), Field("count")]

    def children(self) -> list[Slots]:
        return [self.calibrator, self.damping]

    @property
    def size(self) -> int:
        return int(self.rarity.shape[0])

    def update(self, rarity: np.ndarray, group: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """The damped joint score of every group in [0, 1] (0 for a group with no opinion now)."""
        size = self.size
        r, g = np.maximum(rarity[ok], 0.0), group[ok]
        sidak, n = sidak_max(r, g, size)
        speaks = n > 0
        several = n > 1
        agree = self.calibrator.step(truncated_sum(r, g, size, self.truncation), several)
        joint = np.where(several, np.maximum(sidak, agree) - _LOG2, sidak)
        unit = to_unit(joint, self.floor, self.scale)
        damped = self.damping.step(unit, speaks)
        self.rarity = np.where(speaks, joint, self.rarity)
        self.unsuppressed = np.where(speaks, unit, self.unsuppressed)
        self.count = np.where(speaks, n, self.count)
        return np.where(speaks, damped, 0.0)
