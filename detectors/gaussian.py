"""A windowed Gaussian baseline kept by river's rolling statistics, with a variance floor."""

from __future__ import annotations

from typing import Any, ClassVar

from detectors.baseline import BaselineDetector


class RiverGaussian(BaselineDetector):
    """river's `GaussianScorer` window supplies mean and sigma; the z-score goes onto the shared scale.

    river's own score saturates near 1 at about 3 sigma and, with zero variance, calls every point
    anomalous; flooring sigma and using the shared calibration fixes both.

    >>> d = RiverGaussian(window=50, warmup=10)
    >>> _ = [d.update(t, float(t % 2)) for t in range(60)]
    >>> d.update(61, 0.5) < 0.1, d.update(62, 20.0) > 0.9
    (True, True)
    """

    name = "river_gaussian"
    test_params: ClassVar[dict[str, Any]] = {"window": 60, "warmup": 20}

    def _reset(self) -> None:
        from river import anomaly  # river (and scipy under it) loads only when this detector is used

        self._scorer = anomaly.GaussianScorer(window_size=self.window, grace_period=self.warmup)

    @property
    def _gaussian(self) -> Any:  # river's rolling Gaussian is untyped
        return self._scorer.gaussian

    def _count(self) -> int:
        return int(self._gaussian.n_samples)

    def _location(self) -> float:
        return float(self._gaussian.mu)

    def _spread(self, location: float) -> float:
        # On a constant window river's rolling variance cancels to a hair below zero, and its `var ** 0.5`
        # is then complex: that window has no spread (the floors in the base class take over).
        sigma = self._gaussian.sigma
        return 0.0 if isinstance(sigma, complex) else float(sigma)

    def _learn(self, value: float) -> None:
        self._scorer.learn_one(None, value)
