"""Shape novelty: has the recent stretch of the series ever looked like this before?"""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots

_UNUSED = 1e9


class ShapeNovelty(Slots):
    """The last `window` points, averaged into `dims` blocks and scaled by the series' range so far, are
    matched against `prototypes` remembered shapes (nearest by the largest block difference). A shape
    farther than `vigilance` from all of them is new: it is remembered in place of the least recently
    used one. Recurring patterns, even large spikes, stop being surprising; a new one is. Surprise is
    the distance to the nearest prototype (adaptive-resonance style clustering); NaN until `warm` points.
    """

    buf: np.ndarray
    seen: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    proto: np.ndarray
    last: np.ndarray

    def __init__(
        self,
        n: int,
        window: int = 16,
        dims: int = 8,
        prototypes: int = 64,
        vigilance: float = 0.1,
        rate: float = 0.05,
        warm: int = 100,
    ):
        if window % dims:
            raise ValueError("window must be a multiple of dims")
        self.window, self.dims, self.prototypes = window, dims, prototypes
        self.vigilance, self.rate, self.warm = vigilance, rate, warm
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [
            Field("buf", (self.window,)),
            Field("seen"),
            Field("lo", init=np.inf),
            Field("hi", init=-np.inf),
            # dims first: one (n, M) slab per dim; unused prototypes sit far away (_UNUSED) and have last=-1
            Field("proto", (self.dims, self.prototypes), np.float32, _UNUSED),
            Field("last", (self.prototypes,), np.float32, -1.0),
        ]

    def step(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        n = len(x)
        rows = np.arange(n)
        self.buf[ok] = np.roll(self.buf[ok], -1, axis=1)
        self.buf[ok, -1] = x[ok]
        self.seen = np.where(ok, self.seen + 1, self.seen)
        self.lo = np.where(ok, np.minimum(self.lo, np.where(ok, x, np.inf)), self.lo)
        self.hi = np.where(ok, np.maximum(self.hi, np.where(ok, x, -np.inf)), self.hi)
        span = np.maximum(self.hi - self.lo, 1e-12)
        shape = ((self.buf.reshape(n, self.dims, -1).mean(axis=2) - self.lo[:, None]) / span[:, None]).astype(
            np.float32
        )
        gap = np.abs(self.proto[:, 0, :] - shape[:, :1])
        for d in range(1, self.dims):
            np.maximum(gap, np.abs(self.proto[:, d, :] - shape[:, d : d + 1]), out=gap)
        near = np.argmin(gap, axis=1)
        dist = gap[rows, near]
        full = ok & (self.seen >= self.window)
        novel = full & (dist > self.vigilance)
        stale = np.argmin(self.last, axis=1)
        target = np.where(novel, stale, near)
        r, t = rows[full], target[full]
        current = self.proto[r, :, t]
        self.proto[r, :, t] = np.where(
            novel[full][:, None], shape[full], current + self.rate * (shape[full] - current)
        )
        self.last[r, t] = self.seen[full]
        return np.where(full & (self.seen > self.warm) & (dist < 1.0 + _UNUSED / 2), dist, np.nan)
