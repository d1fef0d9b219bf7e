"""Two adapters between the per-series `Detector` interface and array-at-a-time banks.

`BankDetector` gives one series a private bank (for `aiops detect`, the conformance suite, one-off use);
`SeriesLoop` makes any per-series detector family look like a bank, so the agent drives every kind
through one interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from detectors.bank import (
    DEFAULT_BUDGET,
    DEFAULT_BUDGET_TAIL,
    DEFAULT_FLOOR,
    DEFAULT_MATERIALITY,
    DEFAULT_SCALE,
    MEMBERS,
    DetectorBank,
    from_unit,
)
from detectors.base import Detector

_SMALL: dict[str, Any] = {
    "calibration": {"min_count": 30, "horizon": 300},
    "level": {"warm": 10},
    "novelty": {"warm": 30},
    "damping": 50,
    "budget": 500.0,  # the suite's series tick every second: 43,200 points a day, not 288
}


class BankDetector(Detector):
    """A bank of one series behind the per-series interface."""

    members: ClassVar[tuple[str, ...]] = MEMBERS
    test_params: ClassVar[dict[str, Any]] = _SMALL

    def __init__(
        self,
        second_weight: float = 0.25,
        damping: int = 400,
        floor: float = DEFAULT_FLOOR,
        scale: float = DEFAULT_SCALE,
        materiality: float = DEFAULT_MATERIALITY,
        budget: float | None = DEFAULT_BUDGET,
        level: dict[str, Any] | None = None,
        seasonal: dict[str, Any] | None = None,
        novelty: dict[str, Any] | None = None,
        shift: dict[str, Any] | None = None,
        calibration: dict[str, Any] | None = None,
        budget_tail: float = DEFAULT_BUDGET_TAIL,
    ):
        params: dict[str, Any] = {
            "second_weight": second_weight,
            "damping": damping,
            "floor": floor,
            "scale": scale,
            "materiality": materiality,
            "budget": budget,
            "level": level,
            "seasonal": seasonal,
            "novelty": novelty,
            "shift": shift,
            "calibration": calibration,
            "budget_tail": budget_tail,
        }
        super().__init__(**params)
        self.bank = DetectorBank(1, members=self.members, **params)
        self._ts = np.zeros(1)
        self._x = np.zeros(1)

    @property
    def warm(self) -> bool:
        return bool(self.bank.warm()[0])

    @property
    def warmup(self) -> int:
        return self.bank.warmup

    @property
    def unsuppressed(self) -> float:
        return float(self.bank.unsuppressed[0])

    def _score_and_learn(self, ts: float, value: float) -> float:
        self._ts[0], self._x[0] = ts, value
        score = float(self.bank.update(self._ts, self._x)[0])
        expected = float(self.bank.expected[0])
        self.expected = expected if np.isfinite(expected) else None
        return score


class Ensemble(BankDetector):
    """The default: level, log-level, daily profile, shape novelty and mean shift, calibrated and combined."""

    name = "ensemble"


class Level(BankDetector):
    """The robust exponentially weighted level alone (spikes and dips)."""

    name = "level"
    members = ("level",)


class Seasonal(BankDetector):
    """The daily profile alone: silent until the series shows a daily pattern worth trusting."""

    name = "seasonal"
    members = ("seasonal",)
    test_params: ClassVar[dict[str, Any]] = {**_SMALL, "seasonal": {"period": 50.0, "bins": 10, "gate": 2.0}}


class Novelty(BankDetector):
    """Shape novelty alone."""

    name = "novelty"
    members = ("novelty",)
    lag = 3


class Shift(BankDetector):
    """Mean-shift (change-point) evidence alone."""

    name = "shift"
    members = ("shift",)
    plants = "shift"


class SeriesLoop:
    """Any per-series detector family driven like a bank: one detector object per slot."""

    def __init__(self, factory: Callable[[], Detector], n: int = 0):
        self.factory = factory
        self.detectors = [factory() for _ in range(n)]
        self.expected = np.full(n, np.nan)
        self.unsuppressed = np.zeros(n)
        self.deviation = np.zeros(n)  # per-series detectors report no separate distance from normal

    @property
    def size(self) -> int:
        return len(self.detectors)

    def grow(self, n: int) -> None:
        """Make room for `n` series in total; new slots start empty (no expected value, no score)."""
        added = n - len(self.detectors)
        if added <= 0:
            return
        self.detectors.extend(self.factory() for _ in range(added))
        self.expected = np.concatenate([self.expected, np.full(added, np.nan)])
        self.unsuppressed = np.concatenate([self.unsuppressed, np.zeros(added)])
        self.deviation = np.zeros(n)

    def reset(self, rows: np.ndarray) -> None:
        for r in np.atleast_1d(rows):
            self.detectors[int(r)] = self.factory()
        self.expected[rows] = np.nan
        self.unsuppressed[rows] = 0.0

    def warm(self) -> np.ndarray:
        return np.array([d.warm for d in self.detectors], dtype=bool)

    @property
    def rarity(self) -> np.ndarray:
        """Scores read back as the bank's rarity scale, for joint scoring (detectors.joint)."""
        return from_unit(self.unsuppressed)

    def update(self, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.zeros(len(values))
        for i, (d, t, v) in enumerate(zip(self.detectors, ts, values, strict=False)):
            if np.isfinite(v):
                out[i] = d.update(float(t), float(v))
                self.expected[i] = d.expected if d.expected is not None else np.nan
                self.unsuppressed[i] = out[i]
        return out

    def nbytes_per_series(self) -> int:
        return 0
