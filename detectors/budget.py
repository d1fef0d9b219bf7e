"""A false-alarm budget: where each series' alarm line must sit for it to alarm `budget` times a day.

Users think in alarms per series per day, not in scores. Two things set the line for one series: how
many points it has a day (a 15 s series gets 5,760 chances a day to be unlucky, a 5-minute one 288)
and how heavy the tail of its own combined rarity is (five members each calibrated to "one in 10^r"
give a maximum that is that rare about five times as often, and correlated members less). So each
series keeps its typical sampling interval and a decayed count of how often its (damped) combined
rarity rose through a reference level; calibration makes each member's tail fall by one decade per
unit of rarity, so alarms at rarity r happen 10^(reference - r) times as often as crossings of the
reference. The line is the r at which that rate meets the budget. Lines sit near the rarest points a
series has seen, where rarity is the calibration's extension beyond its record (detectors/tail.py); it
thins a little more slowly there, so alarms come `tail` times as often as a decade per unit predicts.
"""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots

DAY = 86400.0
HI_POINTS = 2000.0


class AlarmBudget(Slots):
    """Per series: sampling interval, and decayed counts of points and of upward crossings of `reference`.

    Until a series has history, `prior` stands in for its crossing rate (as if `prior_points` points
    had been seen with that rate), so the line starts where a typical calibrated series would have it.

    >>> import numpy as np
    >>> b = AlarmBudget(2, budget=0.05)
    >>> lines = b.line()  # no history: the prior, at a 60 s default interval
    >>> bool(lines[0] == lines[1])
    True
    >>> for t in range(2000):  # series 0 every 15 s, series 1 every 5 minutes, both quiet
    ...     b.observe(np.array([15.0 * t, 300.0 * t]), np.zeros(2), np.ones(2, bool))
    >>> fast, slow = b.line()
    >>> round(float(fast - slow), 2)  # 20x the points a day: the line is log10(20) higher
    1.3
    """

    interval: np.ndarray
    last_ts: np.ndarray
    points: np.ndarray
    crossings: np.ndarray  # decayed upward crossings of `reference` and of one unit above it
    above: np.ndarray  # whether the last point was at or above each of the two levels

    def __init__(
        self,
        n: int,
        budget: float = 0.05,
        reference: float = 2.0,
        prior: float = 0.02,
        prior_points: float = 500.0,
        horizon: int = 5000,
        lowest: float = 2.5,
        highest: float = 12.0,
        default_interval: float = 60.0,
        tail: float = 1.0,
    ):
        if budget <= 0 or tail <= 0:
            raise ValueError("budget (alarms per series per day) and tail must be > 0")
        self.budget, self.reference, self.prior, self.prior_points = budget, reference, prior, prior_points
        self.tail = tail
        self.decay = 1.0 - 1.0 / horizon
        self.lowest, self.highest, self.default_interval = lowest, highest, default_interval
        self.levels = np.array([reference, reference + 1.0])
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [
            Field("interval", init=np.nan),
            Field("last_ts", init=np.nan),
            Field("points"),
            Field("crossings", (2,)),
            Field("above", (2,), bool),
        ]

    def line(self) -> np.ndarray:
        """The rarity at which each series is expected to alarm `budget` times a day."""
        interval = np.where(np.isfinite(self.interval), self.interval, self.default_interval)
        per_day = DAY / np.maximum(interval, 1e-3)
        low, high = self.crossings[:, 0], self.crossings[:, 1]
        rate = (low + self.prior * self.prior_points) / (self.points + self.prior_points)
        # the higher level's rate, shrunk towards a tenth of the lower's until it has its own history
        rate_hi = (high + 0.1 * rate * HI_POINTS) / (self.points + HI_POINTS)
        # its crossings per day, thinned by a decade per unit of rarity, equal to the budget
        line = self.levels[1] + np.log10(np.maximum(rate_hi * per_day * self.tail, 1e-12) / self.budget)
        return np.minimum(np.maximum(line, self.lowest), self.highest)

    def observe(self, ts: np.ndarray, rarity: np.ndarray, ok: np.ndarray) -> None:
        """Learn from one point per series (after it was judged, so a point never moves its own line)."""
        gap = ts - self.last_ts
        stepped = ok & (gap > 0)
        first = stepped & np.isnan(self.interval)
        self.interval = np.where(
            first, gap, np.where(stepped, self.interval + 0.02 * (gap - self.interval), self.interval)
        )
        self.last_ts = np.where(ok, ts, self.last_ts)
        self.points = np.where(ok, self.points * self.decay + 1.0, self.points)
        over = rarity[:, None] >= self.levels
        mine = ok[:, None]
        crossed = mine & over & ~self.above
        self.above = np.where(mine, over, self.above)
        self.crossings = np.where(mine, self.crossings * self.decay + crossed, self.crossings)
