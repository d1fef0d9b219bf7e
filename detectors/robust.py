"""Rolling median / MAD z-score: robust to outliers in its own baseline, and to flat or quantised series."""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from typing import Any, ClassVar

from detectors.baseline import BaselineDetector


class RobustZScore(BaselineDetector):
    """Deviation from the rolling median in units of the rolling MAD.

    A zero MAD (flat or quantised series) would make every change infinitely surprising; the spread is
    also floored at the smallest step seen between distinct values in the window.

    >>> d = RobustZScore(window=30, warmup=10)
    >>> scores = [d.update(t, 1.0 + (t % 3) * 0.01) for t in range(40)]
    >>> max(scores) < 0.1, d.update(41, 5.0) > 0.9
    (True, True)
    """

    name = "robust"
    test_params: ClassVar[dict[str, Any]] = {"window": 60, "warmup": 20}

    def _reset(self) -> None:
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def _count(self) -> int:
        return len(self._sorted)

    def _location(self) -> float:
        return _median(self._sorted)

    def _spread(self, location: float) -> float:
        s = self._sorted
        mad = _median(sorted(abs(x - location) for x in s))
        step = min((b - a for a, b in itertools.pairwise(s) if b > a), default=0.0)
        return max(1.4826 * mad, step)

    def _learn(self, value: float) -> None:
        self._fifo.append(value)
        bisect.insort(self._sorted, value)
        if len(self._fifo) > self.window:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]


def _median(s: list[float]) -> float:
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
