"""Rolling median / MAD z-score: robust to outliers in its own baseline, and to flat or quantised series."""

from __future__ import annotations

import bisect
import itertools
from collections import deque

from detectors.base import Detector
from detectors.calibration import z_to_score


class RobustZScore(Detector):
    """Deviation from the rolling median in units of the rolling MAD, floored so flat series stay calm.

    A zero MAD (flat or quantised series) would make every change infinitely surprising; the scale is
    floored at the smallest step seen between distinct values, a fraction of the level, and `min_scale`.
    Points judged anomalous are not learned, so a fault does not teach the baseline that it is normal,
    unless it persists for `adapt_after` points (a level shift is then accepted).

    >>> d = RobustZScore(window=30, warmup=10)
    >>> scores = [d.update(t, 1.0 + (t % 3) * 0.01) for t in range(40)]
    >>> max(scores) < 0.1, d.update(41, 5.0) > 0.9
    (True, True)
    """

    name = "robust"

    def __init__(
        self,
        window: int = 240,
        warmup: int = 20,
        min_scale: float = 1e-6,
        relative_scale: float = 0.001,
        hold_score: float = 0.6,
        adapt_after: int = 120,
    ):
        if window < 5 or warmup < 3 or warmup > window:
            raise ValueError("need window >= 5 and 3 <= warmup <= window")
        super().__init__(
            window=window,
            warmup=warmup,
            min_scale=min_scale,
            relative_scale=relative_scale,
            hold_score=hold_score,
            adapt_after=adapt_after,
        )
        self.window = window
        self._warmup = warmup
        self.min_scale = min_scale
        self.relative_scale = relative_scale
        self.hold_score = hold_score
        self.adapt_after = adapt_after
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []
        self._streak = 0

    @property
    def warmup(self) -> int:
        return self._warmup

    def _median(self) -> float:
        s, n = self._sorted, len(self._sorted)
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])

    def _scale(self, median: float) -> float:
        s = self._sorted
        deviations = sorted(abs(x - median) for x in s)
        n = len(deviations)
        mad = deviations[n // 2] if n % 2 else 0.5 * (deviations[n // 2 - 1] + deviations[n // 2])
        step = min((b - a for a, b in itertools.pairwise(s) if b > a), default=0.0)
        return max(1.4826 * mad, step, self.relative_scale * abs(median), self.min_scale)

    def _learn(self, value: float) -> None:
        self._fifo.append(value)
        bisect.insort(self._sorted, value)
        if len(self._fifo) > self.window:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def _score_and_learn(self, ts: float, value: float) -> float:
        if len(self._sorted) < self._warmup:
            self._learn(value)
            self.expected = self._median()
            return 0.0
        median = self._median()
        self.expected = median
        score = z_to_score((value - median) / self._scale(median))
        if score < self.hold_score:
            self._streak = 0
            self._learn(value)
        else:
            self._streak += 1
            if self._streak >= self.adapt_after:
                self._learn(value)
        return score
