"""Calibration: turn any member's surprise into how rare it is for this series, on one scale for all.

Each series keeps a decayed histogram (log-spaced bins) of a member's surprises. A new surprise scores
-log10 of the share of recent surprises at least as large, so "as rare as one point in a thousand"
means the same for a noisy tweet count and a flat CPU gauge. Beyond the largest recent surprise the
tail is extended exponentially, so a record that dwarfs the previous one still outranks a near-record.
How steeply it falls there (`record_gain`: e-fold rarer per 1/gain beyond the record) depends on how
much history stands behind the record: a record over a few hundred points is beaten often and by wide
margins, so young series use the gentle YOUNG_GAIN and reach `record_gain` after `record_history`
points (as the fourth power of the share of it seen: a history of half of it leans on its record by a
sixteenth of the difference). Each source may have its own gain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.slots import Field, Slots

_LN10 = float(np.log(10.0))
_BLOCK = 1024  # rows per cache-sized block of the histogram update
YOUNG_GAIN = 3.0  # the record gain of a record with little history behind it


class TailCalibrator(Slots):
    """Surprises of `width` sources per series (an ensemble's members): a decayed histogram per series
    and source, and the record. All sources of all series step at once, so a bank pays one set of
    numpy calls per tick for its calibration, not one per member.

    `step` takes surprises shaped `(n, width)` (or `(n,)` when `width` is 1) and returns rarities in
    the same shape."""

    above: np.ndarray
    total: np.ndarray
    weight: np.ndarray
    record: np.ndarray

    def __init__(
        self,
        n: int,
        horizon: int = 3000,
        bins: int = 64,
        smallest: float = 0.05,
        growth: float = 1.2,
        min_count: int = 100,
        record_gain: float | Sequence[float] = YOUNG_GAIN,
        width: int = 1,
        record_history: int = 0,
    ):
        self.edges = smallest * growth ** np.arange(bins)
        # Row k + 1: 1.0 in bins 0..k (a surprise in bin k counts in each of them), row 0 all 0.0
        self._prefix = (np.arange(bins + 1)[None, :] <= np.arange(-1, bins + 1)[:, None]).astype(np.float32)
        self.bins, self.decay, self.min_count = bins, 1.0 - 1.0 / horizon, min_count
        self.width = width
        gains = np.broadcast_to(np.asarray(record_gain, dtype=np.float64), (width,))
        if record_history < 0 or (gains < 0).any():
            raise ValueError("record_gain and record_history must be >= 0")
        self.record_gain, self.record_history = gains.copy(), record_history
        self.allocate(n)

    def fields(self) -> list[Field]:
        # Weights grow by 1/decay per point instead of decaying the whole histogram each tick; the
        # histogram is kept cumulative from the top (`above[j]`: weight in bins j and up), so the tail
        # share of a new surprise is one lookup.
        w = self.width
        return [
            Field("above", (w, self.bins + 1), np.float32),
            Field("total", (w,)),
            Field("weight", (w,), init=1.0),
            Field("record", (w,)),
        ]

    def step(self, u: np.ndarray, ok: np.ndarray) -> np.ndarray:
        shape = u.shape
        u, ok = u.reshape(-1), ok.reshape(-1)  # one row per (series, source)
        above = self.above.reshape(-1, self.bins + 1)
        total, weight, record = self.total.reshape(-1), self.weight.reshape(-1), self.record.reshape(-1)
        b = np.searchsorted(self.edges, u, side="right")
        cells = above.reshape(-1)  # one dimension: gathers by flat index are cheap
        at = np.arange(len(u)) * (self.bins + 1)
        at_bin = cells[at + b].astype(np.float64)
        higher = np.where(b < self.bins, cells[at + np.minimum(b + 1, self.bins)], 0.0)
        at_least = 0.5 * (at_bin + higher) + weight
        p = at_least / (total + weight)
        score = -np.log10(np.minimum(np.maximum(p, 1e-300), 1.0))
        beyond = (u > record) & (record > 0)
        if beyond.any():
            at = np.flatnonzero(beyond)
            with np.errstate(over="ignore"):  # a huge surprise over a tiny record: capped below
                excess = np.minimum(u[at] / record[at] - 1.0, 1e6)
            score[at] += excess * self._gain(at, total[at], weight[at]) / _LN10
        score = np.where(ok & self.ready().reshape(-1), score, 0.0)
        self._count(above, np.where(ok, b, -1), weight.astype(np.float32))
        np.copyto(total, total + weight, where=ok)
        np.copyto(record, np.maximum(record * self.decay**0.1, u), where=ok)
        np.copyto(weight, weight / self.decay, where=ok)
        self._rescale()
        return score.reshape(shape)

    def _gain(self, rows: np.ndarray, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The record gain of each row (a source's own) for the history behind its record (its decayed
        count of points)."""
        gain = self.record_gain[rows % self.width]
        if self.record_history == 0:
            return gain
        grown = np.minimum(total / (weight * self.record_history), 1.0) ** 4
        return YOUNG_GAIN + (gain - YOUNG_GAIN) * grown

    def _count(self, above: np.ndarray, b: np.ndarray, w: np.ndarray) -> None:
        """Add each row's weight to its bins 0..b (none where b < 0). In blocks of rows small enough
        for the CPU cache, over only the bins the block reaches (surprises are mostly small); adding
        0.0 to the bins a row does not reach leaves them exactly as they were."""
        for lo in range(0, len(b), _BLOCK):
            hi = min(lo + _BLOCK, len(b))
            reach = int(b[lo:hi].max()) + 1
            if reach > 0:
                add = np.take(self._prefix[:, :reach], b[lo:hi] + 1, axis=0)
                add *= w[lo:hi, None]
                above[lo:hi, :reach] += add

    def ready(self) -> np.ndarray:
        """Scores start once the decayed count of surprises seen reaches `min_count`: `(n, width)`,
        per series and source."""
        return self.total >= self.min_count * self.weight

    @property
    def warmup(self) -> int:
        """Points until `ready` (the same decayed count, computed ahead)."""
        n, decayed = 0, 0.0
        while decayed < self.min_count:
            decayed = (decayed + 1.0) * self.decay
            n += 1
        return n

    def _rescale(self) -> None:
        big = self.weight > 1e6  # float32 histograms keep their precision below this
        if big.any():
            f = 1.0 / self.weight[big]
            self.above[big] *= f[:, None].astype(np.float32)
            self.total[big] *= f
            self.weight[big] = 1.0
