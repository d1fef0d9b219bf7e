"""Daily profile: what the series usually does at this time of day, learned per time-of-day bin."""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots


class DailyProfile(Slots):
    """Deviation from the same time of day, in units of that bin's own spread.

    Its opinion counts only for series whose daily profile predicts them clearly better than their
    plain level does (`speaks`: the profile's mean absolute error is below `gate` times the level's);
    on other series a time-of-day model would only add noise. Surprises are reported either way (NaN
    until a bin has a day of history), so their calibration is ready the moment a daily pattern emerges.
    """

    m: np.ndarray
    d: np.ndarray
    cnt: np.ndarray
    t0: np.ndarray
    err_profile: np.ndarray
    err_level: np.ndarray

    def __init__(
        self,
        n: int,
        bins: int = 48,
        period: float = 86400.0,
        alpha: float = 1 / 8,
        min_count: int = 2,
        gate: float = 0.8,
        gate_alpha: float = 1 / 2000,
        relative_floor: float = 1e-3,
    ):
        self.bins, self.period, self.alpha, self.min_count = bins, period, alpha, min_count
        self.gate, self.gate_alpha, self.relative_floor = gate, gate_alpha, relative_floor
        self.allocate(n)

    def fields(self) -> list[Field]:
        b = (self.bins,)
        return [
            Field("m", b, np.float32),
            Field("d", b, np.float32),
            Field("cnt", b, np.float32),
            Field("t0", init=np.nan),
            Field("err_profile"),
            Field("err_level"),
        ]

    @property
    def ratio(self) -> np.ndarray:
        """Profile error / level error: below 1 the daily profile explains the series better."""
        return self.err_profile / np.maximum(self.err_level, 1e-12)

    def step(
        self, ts: np.ndarray, x: np.ndarray, ok: np.ndarray, level: np.ndarray, floor: np.ndarray
    ) -> np.ndarray:
        self.t0 = np.where(ok & np.isnan(self.t0), ts, self.t0)
        k = (np.where(ok, ts, 0.0) % self.period / self.period * self.bins).astype(np.int64)
        k = np.minimum(np.maximum(k, 0), self.bins - 1)
        at = np.arange(len(x)) * self.bins + k  # this time of day's bin of each row, by flat index
        cells_m, cells_d, cells_c = (np.reshape(a, -1, copy=False) for a in (self.m, self.d, self.cnt))
        m = cells_m[at].astype(np.float64)
        d = cells_d[at].astype(np.float64)
        c = cells_c[at].astype(np.float64)
        sc = np.maximum(np.maximum(1.2533 * d, self.relative_floor * np.abs(m)), floor)
        r = np.where(ok, x - m, 0.0)
        z = r / sc
        active = ok & (c >= self.min_count) & (ts - self.t0 >= self.period)
        g = self.gate_alpha
        level_r = np.where(ok, x - np.where(np.isnan(level), 0.0, level), 0.0)
        self.err_profile = np.where(
            active, self.err_profile + g * (np.abs(r) - self.err_profile), self.err_profile
        )
        self.err_level = np.where(
            active, self.err_level + g * (np.abs(level_r) - self.err_level), self.err_level
        )
        a = np.maximum(1.0 / (c + 1), self.alpha)
        learn = ok & ((np.abs(z) < 5) | (c < self.min_count))
        rc = np.where(c >= self.min_count, np.minimum(np.maximum(r, -3 * sc), 3 * sc), r)
        cells_m[at] = np.where(learn, m + a * rc, m)
        cells_d[at] = np.where(learn, d + a * (np.abs(rc) - d), d)
        cells_c[at] = np.where(ok, c + 1, c)
        return np.where(active, np.abs(z), np.nan)

    @property
    def speaks(self) -> np.ndarray:
        return self.ratio < self.gate
