"""Exponentially weighted robust level: the baseline most other signals are measured against."""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots


class EWLevel(Slots):
    """Location and scale kept with exponential weights, robust to outliers and floored for flat data.

    The scale is a mean absolute deviation of clipped residuals; it is floored at half the smallest step
    the series has taken (quantised series), a fraction of the level, and a tiny absolute value, so a
    flat series does not make every change infinitely surprising. Points at `hold` or more deviations
    are not learned, unless the departure lasts `adapt` points (a level shift becomes the new normal).
    Surprise is |z|; NaN (no opinion) before `warm` points.
    """

    m: np.ndarray
    d: np.ndarray
    cnt: np.ndarray
    q: np.ndarray
    prev: np.ndarray
    streak: np.ndarray
    z: np.ndarray

    def __init__(
        self,
        n: int,
        alpha: float = 1 / 2048,
        clip: float = 3.0,
        hold: float = 5.0,
        adapt: int = 120,
        warm: int = 30,
        relative_floor: float = 1e-3,
    ):
        self.alpha, self.clip, self.hold, self.adapt = alpha, clip, hold, adapt
        self.warm, self.relative_floor = warm, relative_floor
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [
            Field("m", init=np.nan),
            Field("d"),
            Field("cnt"),
            Field("q", init=np.inf),
            Field("prev", init=np.nan),
            Field("streak"),
            Field("z"),
        ]

    def scale(self) -> np.ndarray:
        step_floor = np.where(np.isfinite(self.q), 0.5 * self.q, 0.0)
        return np.maximum(
            np.fmax(1.2533 * self.d, self.relative_floor * np.abs(self.m)),  # fmax: no level yet, no floor
            np.maximum(step_floor, 1e-12),
        )

    def step(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        first = ok & np.isnan(self.m)
        np.copyto(self.m, x, where=first)  # copyto: masked assignment without fancy indexing's copies
        moved = np.abs(x - self.prev)
        np.copyto(self.q, np.minimum(self.q, moved), where=ok & (moved > 0))
        np.copyto(self.prev, x, where=ok)
        sc = self.scale()
        r = np.where(ok, x - self.m, 0.0)
        z = r / sc
        big = np.abs(z) >= self.hold
        self.streak = np.where(ok, np.where(big, self.streak + 1, 0), self.streak)
        learn = ok & ~first & (~big | (self.streak >= self.adapt))
        a = np.maximum(1.0 / (self.cnt + 1), self.alpha)
        rc = np.minimum(np.maximum(r, -self.clip * sc), self.clip * sc)  # np.clip costs more per call
        self.m = np.where(learn, self.m + a * rc, self.m)
        self.d = np.where(learn, self.d + a * (np.abs(rc) - self.d), self.d)
        self.cnt = np.where(ok, self.cnt + 1, self.cnt)
        self.z = np.where(ok, z, 0.0)
        return np.where(ok & (self.cnt > self.warm), np.abs(z), np.nan)


class LogLevel(Slots):
    """The level on a log scale, for non-negative series that grow multiplicatively (counts, bytes): a
    tenfold burst stands out however large the typical value is. Silent for series that go negative."""

    lowest: np.ndarray

    def __init__(self, n: int, **level_params: float):
        self.inner = EWLevel(n, **level_params)  # type: ignore[arg-type]
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [Field("lowest", init=np.inf)]

    def children(self) -> list[Slots]:
        return [self.inner]

    def step(self, x: np.ndarray, ok: np.ndarray, linear_level: np.ndarray) -> np.ndarray:
        """`linear_level` (the plain level) sets the offset that keeps zeros finite on the log scale."""
        self.lowest = np.where(ok, np.minimum(self.lowest, np.where(ok, x, np.inf)), self.lowest)
        offset = np.fmax(0.05 * np.abs(linear_level), 1e-9)  # no level yet: 1e-9
        u = self.inner.step(np.log(np.maximum(x, 0.0) + offset), ok)
        return np.where(self.lowest >= 0, u, np.nan)
