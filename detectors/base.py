"""The one small interface every streaming detector follows.

A detector sees one series, one point at a time, in time order, and returns a score in [0, 1]
using only the points before and at it. Its state is built from constructor arguments alone,
so `clone()` gives a fresh, identically configured detector for the next series.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class Detector:
    """Base class: subclasses implement `_score_and_learn` and keep their parameters as attributes."""

    name: ClassVar[str]
    test_params: ClassVar[dict[str, Any]] = {}
    """Small, fast parameters for the conformance suite (tests/detectors/test_conformance.py)."""
    plants: ClassVar[str] = "spike"
    """The anomaly the conformance suite plants to check judgement: "spike" or "shift" (a level change)."""
    lag: ClassVar[int] = 0
    """Points after a planted spike within which the detector must single it out (shape detectors judge
    blocks of points, so they see a spike once its block is complete)."""

    def __init__(self, **params: Any):
        self._params = params
        self.expected: float | None = None
        self.n_seen = 0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def clone(self) -> Detector:
        return type(self)(**self._params)

    @property
    def warm(self) -> bool:
        """True once the detector has seen enough points for its scores to mean something."""
        return self.n_seen >= self.warmup

    @property
    def warmup(self) -> int:
        return 0

    def update(self, ts: float, value: float) -> float:
        """Score `value` at `ts` against what came before, then learn from it. NaN is skipped (score 0)."""
        if not math.isfinite(value):
            return 0.0
        score = self._score_and_learn(ts, value)
        self.n_seen += 1
        return min(1.0, max(0.0, score))

    def _score_and_learn(self, ts: float, value: float) -> float:
        raise NotImplementedError
