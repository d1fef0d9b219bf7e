"""Shared shape of detectors that keep a baseline (a location and a spread) and score z-deviations from it."""

from __future__ import annotations

from detectors.base import Detector
from detectors.calibration import z_to_score
from detectors.units import LIMIT, unit_of


class BaselineDetector(Detector):
    """Scores a point by its deviation from the baseline in units of the spread, then decides whether to learn it.

    The spread is floored (at a fraction of the level and at `min_scale`) so flat series stay calm.
    Points scoring `hold_score` or more are not learned, so a fault does not teach the baseline that it
    is normal (river's AnomalyFilter idea), unless it persists for `adapt_after` points: a level shift
    is then accepted. Subclasses keep the baseline: `_reset`, `_count`, `_location`, `_spread`, `_learn`.
    """

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
        self._streak = 0
        self._unit: float | None = None  # the series' unit (detectors.units), fixed by its first value
        self._reset()

    @property
    def warmup(self) -> int:
        return self._warmup

    def _score_and_learn(self, ts: float, value: float) -> float:
        if self._unit is None:
            self._unit = unit_of(value)
        value = min(max(value / self._unit, -LIMIT), LIMIT)
        if self._count() < self._warmup:
            self._learn(value)
            self.expected = self._location() * self._unit
            return 0.0
        location = self._location()
        self.expected = location * self._unit
        scale = max(self._spread(location), self.relative_scale * abs(location), self.min_scale)
        score = z_to_score((value - location) / scale)
        if score < self.hold_score:
            self._streak = 0
            self._learn(value)
        else:
            self._streak += 1
            if self._streak >= self.adapt_after:
                self._learn(value)
        return score

    def _reset(self) -> None:
        raise NotImplementedError

    def _count(self) -> int:
        raise NotImplementedError

    def _location(self) -> float:
        raise NotImplementedError

    def _spread(self, location: float) -> float:
        raise NotImplementedError

    def _learn(self, value: float) -> None:
        raise NotImplementedError
