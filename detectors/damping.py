"""Report each anomaly once: after an alarm, later points must beat its (linearly fading) level."""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots


class AlarmDamping(Slots):
    """A point's score passes when it exceeds the last passing score, discounted by (1 - age/horizon);
    otherwise it is damped to a hundredth. One alarm per event instead of one per point, yet a second,
    comparable event a little later, or a worsening one, still gets through.
    """

    peak: np.ndarray
    age: np.ndarray

    def __init__(self, n: int, horizon: int = 400, damped: float = 0.01):
        self.horizon, self.damped = horizon, damped
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [Field("peak"), Field("age", init=1e18)]

    def step(self, s: np.ndarray, ok: np.ndarray) -> np.ndarray:
        bar = np.where(self.age < self.horizon, self.peak * (1.0 - self.age / self.horizon), 0.0)
        passes = ok & (s > bar)
        self.peak = np.where(passes, s, self.peak)
        self.age = np.where(passes, 0.0, np.where(ok, self.age + 1, self.age))
        return np.where(passes, s, s * self.damped)
