"""river's Half-Space Trees on a min-max scaled value: the classic streaming baseline, kept for comparison."""

from __future__ import annotations

from river import anomaly, compose, preprocessing

from detectors.base import Detector


class HalfSpaceTrees(Detector):
    """`MinMaxScaler | HalfSpaceTrees`, scored before learning each point (river's own score, in [0, 1]).

    >>> d = HalfSpaceTrees(window_size=50, seed=1)
    >>> all(0.0 <= d.update(t, float(t % 5)) <= 1.0 for t in range(200))
    True
    """

    name = "hst"

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42):
        super().__init__(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
        self.window_size = window_size
        self._model: compose.Pipeline = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    @property
    def warmup(self) -> int:
        return self.window_size

    def _score_and_learn(self, ts: float, value: float) -> float:
        x = {"x": value}
        score = float(self._model.score_one(x))
        self._model.learn_one(x)
        return score if self.n_seen >= self.window_size else 0.0
