"""Streaming anomaly detectors: numbers in, scores in [0, 1] out. Nothing here knows about incidents.

Every kind has the per-series interface (`build`); every kind can also score many series at once
(`build_bank`): the bank kinds natively with state in arrays, the others through a loop.
"""

from __future__ import annotations

from typing import Any

from detectors.bank import DetectorBank
from detectors.banked import BankDetector, Ensemble, Level, Novelty, Seasonal, SeriesLoop, Shift
from detectors.base import Detector
from detectors.gaussian import RiverGaussian
from detectors.hst import HalfSpaceTrees
from detectors.robust import RobustZScore

REGISTRY: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (Ensemble, Level, Seasonal, Novelty, Shift, RobustZScore, RiverGaussian, HalfSpaceTrees)
}

DEFAULT_KIND = Ensemble.name

Bank = DetectorBank | SeriesLoop


def build(kind: str, params: dict[str, Any] | None = None) -> Detector:
    """Construct a detector by registry name; raises ValueError naming the known kinds or the bad parameter."""
    try:
        cls = REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown detector kind {kind!r} (known: {', '.join(sorted(REGISTRY))})") from None
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise ValueError(f"bad parameters for detector {kind!r}: {e}") from None


def build_bank(
    kind: str, params: dict[str, Any] | None = None, n: int = 0, budget: float | None = None
) -> Bank:
    """Many series of one kind at once: a native bank where the kind has one, else a loop of detectors.

    `budget` (false alarms per series per day) applies to the calibrated bank kinds unless `params`
    names its own; the other kinds keep their fixed score scales."""
    build(kind, params)  # validates kind and parameters with the same messages
    cls = REGISTRY[kind]
    if issubclass(cls, BankDetector):
        given = dict(params or {})
        if budget is not None:
            given.setdefault("budget", budget)
        return DetectorBank(n, members=cls.members, **given)
    return SeriesLoop(lambda: build(kind, params), n)


__all__ = ["DEFAULT_KIND", "REGISTRY", "Bank", "Detector", "DetectorBank", "build", "build_bank"]
