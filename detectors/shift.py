"""Level-shift (change-point) evidence: a run of same-signed deviations, however small each one is."""

from __future__ import annotations

import numpy as np

from detectors.slots import Field, Slots


class MeanShift(Slots):
    """An exponentially weighted mean of the level's z-scores, scaled to unit variance under no change.

    Single outliers barely move it; a sustained shift of even one standard deviation builds up to
    several within about 1/alpha points: the streaming form of a CUSUM-style change detector.
    """

    e: np.ndarray

    def __init__(self, n: int, alpha: float = 0.1, clip: float = 6.0):
        self.alpha, self.clip = alpha, clip
        self.gain = float(np.sqrt((2 - alpha) / alpha))
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [Field("e")]

    def step(self, z: np.ndarray, ok: np.ndarray) -> np.ndarray:
        self.e = np.where(
            ok, self.e + self.alpha * (np.minimum(np.maximum(z, -self.clip), self.clip) - self.e), self.e
        )
        return np.where(ok, np.abs(self.e) * self.gain, np.nan)
