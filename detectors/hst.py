"""river's Half-Space Trees on a min-max scaled value: the classic streaming baseline, kept for comparison."""

from __future__ import annotations

from typing import Any, ClassVar

from detectors.base import Detector
from detectors.robust import RobustZScore

# The scaled series fills [0, 1]; the trees' work space is wider, so a value beyond the range seen so
# far lands in cells that hold no reference mass instead of sharing the boundary cell of the maximum.
_WORK_SPACE = (-0.5, 1.5)
_CALIBRATION_WARMUP = 20


class HalfSpaceTrees(Detector):
    """`MinMaxScaler | HalfSpaceTrees`, scored before learning each point, calibrated onto the shared scale.

    river's raw score (1 - mass / largest possible mass) sits near 1 for ordinary points (0.95+ with
    the default height), so it cannot share one alert threshold with the other detectors. It is judged
    instead as a one-sided robust z-score against the raw scores of recent points (a point is anomalous
    when its region holds unusually little mass), on the same calibrated scale.

    >>> d = HalfSpaceTrees(window_size=50, seed=1)
    >>> all(0.0 <= d.update(t, float(t % 5)) <= 1.0 for t in range(200))
    True
    """

    name = "hst"
    test_params: ClassVar[dict[str, Any]] = {"n_trees": 10, "height": 8, "window_size": 100, "seed": 1}

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250, seed: int = 42):
        if window_size < _CALIBRATION_WARMUP:
            raise ValueError(f"need window_size >= {_CALIBRATION_WARMUP}")
        super().__init__(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
        self.window_size = window_size
        from river import anomaly, preprocessing  # river (and scipy) load only when this detector is used

        self._model: Any = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed, limits={"x": _WORK_SPACE}
        )
        self._calibration = RobustZScore(window=window_size, warmup=_CALIBRATION_WARMUP)

    @property
    def warmup(self) -> int:
        return self.window_size + _CALIBRATION_WARMUP

    def _score_and_learn(self, ts: float, value: float) -> float:
        x = {"x": value}
        raw = float(self._model.score_one(x))
        self._model.learn_one(x)
        if self.n_seen < self.window_size:  # river scores 0 until its first reference window is full
            return 0.0
        baseline = self._calibration.expected
        score = self._calibration.update(ts, raw)
        return score if baseline is None or raw > baseline else 0.0
