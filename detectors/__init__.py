"""Streaming anomaly detectors: numbers in, scores in [0, 1] out. Nothing here knows about incidents."""

from __future__ import annotations

from typing import Any

from detectors.base import Detector
from detectors.gaussian import RiverGaussian
from detectors.hst import HalfSpaceTrees
from detectors.robust import RobustZScore

REGISTRY: dict[str, type[Detector]] = {
    RobustZScore.name: RobustZScore,
    RiverGaussian.name: RiverGaussian,
    HalfSpaceTrees.name: HalfSpaceTrees,
}

DEFAULT_KIND = RobustZScore.name


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


__all__ = ["DEFAULT_KIND", "REGISTRY", "Detector", "build"]
