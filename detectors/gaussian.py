"""A windowed Gaussian baseline kept by river's rolling statistics, with a variance floor."""

from __future__ import annotations

from river import anomaly

from detectors.base import Detector
from detectors.calibration import z_to_score


class RiverGaussian(Detector):
    """river's `GaussianScorer` window supplies mean and sigma; the z-score is calibrated onto the shared scale.

    river's own score saturates near 1 at about 3 sigma and, with zero variance, calls every point
    anomalous; flooring sigma and using the shared calibration fixes both.

    >>> d = RiverGaussian(window=50, warmup=10)
    >>> _ = [d.update(t, float(t % 2)) for t in range(60)]
    >>> d.update(61, 0.5) < 0.1, d.update(62, 20.0) > 0.9
    (True, True)
    """

    name = "river_gaussian"

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
        self._warmup = warmup
        self.min_scale = min_scale
        self.relative_scale = relative_scale
        self.hold_score = hold_score
        self.adapt_after = adapt_after
        self._scorer = anomaly.GaussianScorer(window_size=window, grace_period=warmup)
        self._streak = 0

    @property
    def warmup(self) -> int:
        return self._warmup

    def _score_and_learn(self, ts: float, value: float) -> float:
        g = self._scorer.gaussian
        if g.n_samples < self._warmup:
            self._scorer.learn_one(None, value)
            self.expected = g.mu
            return 0.0
        mu = g.mu
        self.expected = mu
        sigma = max(g.sigma, self.relative_scale * abs(mu), self.min_scale)
        score = z_to_score((value - mu) / sigma)
        if score < self.hold_score:
            self._streak = 0
            self._scorer.learn_one(None, value)
        else:
            self._streak += 1
            if self._streak >= self.adapt_after:
                self._scorer.learn_one(None, value)
        return score
