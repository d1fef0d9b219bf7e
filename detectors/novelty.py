"""Shape novelty: has the recent stretch of the series ever looked like this before?"""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots

_UNUSED = 1e9
_FEW = 128  # rows up to which the distance is one vectorised expression
_BLOCK = 512  # rows per cache-sized block of the distance computation


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

    def _match(self, shape: np.ndarray, full: np.ndarray) -> np.ndarray:
        """Each shape's distance to its nearest prototype (the largest block difference); for the rows
        with a full window, that prototype moves toward the shape, or a novel shape replaces the
        least recently used one. Done in blocks of rows small enough for the CPU cache, so the
        prototypes stream through memory once, not once per dimension and again for the update."""
        n, dims, size = len(shape), self.dims, self.prototypes
        dist = np.empty(n, dtype=np.float32)
        gap = np.empty((min(n, _BLOCK), size), dtype=np.float32)
        diff = np.empty_like(gap)
        cells = np.reshape(self.proto, -1, copy=False)  # one dimension: cheap gathers by flat index
        last = np.reshape(self.last, -1, copy=False)
        across = np.arange(dims) * size  # flat offsets of one prototype's dims
        for a in range(0, n, _BLOCK):
            b = min(a + _BLOCK, n)
            g, t, p = gap[: b - a], diff[: b - a], self.proto[a:b]
            if b - a <= _FEW:  # few rows: numpy's per-call cost dominates, so all dims in one go
                g = np.abs(p - shape[a:b, :, None]).max(axis=1)
            else:
                np.subtract(p[:, 0, :], shape[a:b, :1], out=g)
                np.abs(g, out=g)
                for d in range(1, dims):
                    np.subtract(p[:, d, :], shape[a:b, d : d + 1], out=t)
                    np.abs(t, out=t)
                    np.maximum(g, t, out=g)
            near = g.argmin(axis=1)
            dist[a:b] = g.min(axis=1)
            local = np.flatnonzero(full[a:b])
            if not len(local):
                continue
            novel = dist[a + local] > self.vigilance
            target = np.where(novel, self.last[a:b].argmin(axis=1)[local], near[local])
            rows = a + local
            at = (rows * (dims * size) + target)[:, None] + across
            current, fresh = cells[at], shape[rows]
            cells[at] = np.where(novel[:, None], fresh, current + self.rate * (fresh - current))
            last[rows * size + target] = self.seen[rows]
        return dist

    def _shape(self) -> np.ndarray:
        """The window averaged into `dims` blocks, scaled into the series' range so far (float32)."""
        width = self.window // self.dims
        total = self.buf[:, 0::width].copy()
        for i in range(1, width):
            total += self.buf[:, i::width]
        total /= width
        total -= self.lo[:, None]
        total /= np.maximum(self.hi - self.lo, 1e-12)[:, None]
        return total.astype(np.float32)

    def step(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        if ok.all():  # the usual case: shift every buffer in place instead of copying them out and back
            self.buf[:, :-1] = self.buf[:, 1:]
            self.buf[:, -1] = x
        else:
            self.buf[ok] = np.roll(self.buf[ok], -1, axis=1)
            self.buf[ok, -1] = x[ok]
        self.seen = np.where(ok, self.seen + 1, self.seen)
        self.lo = np.where(ok, np.minimum(self.lo, np.where(ok, x, np.inf)), self.lo)
        self.hi = np.where(ok, np.maximum(self.hi, np.where(ok, x, -np.inf)), self.hi)
        full = ok & (self.seen >= self.window)
        dist = self._match(self._shape(), full)
        return np.where(full & (self.seen > self.warm) & (dist < 1.0 + _UNUSED / 2), dist, np.nan)
