"""A per-series unit, so detectors judge a series the same at any magnitude the floats can hold.

Detector arithmetic has absolute floors (a spread of 1e-12, a level offset of 1e-9) and float32 state
(daily profiles, shapes); near 1e300 sums of squares and differences overflow, and near 1e-300 every
value sits below the floors. Each series is therefore measured in a power of two fixed by its first
finite value: exact (dividing by a power of two only moves the exponent), so ordinary series, whose
unit is 1, score bit for bit as before. A later value beyond `LIMIT` units is clipped to it: still the
most extreme point the series has shown, without overflowing anything.

>>> unit_of(3.0), unit_of(0.0), 1e300 / unit_of(1e300), 1.7e308 / unit_of(1.7e308)
(1.0, 1.0, 1.4932217896051503, 1.891312779731121)
"""

from __future__ import annotations

import math

import numpy as np

ORDINARY = 2.0**60
"""Series whose first value lies within [1/ORDINARY, ORDINARY] (or is zero) keep the unit 1."""
LIMIT = 1e30
"""Values are clipped to +-LIMIT units: far beyond any judgement, far below float32's range."""


def unit_of(value: float) -> float:
    """The unit of a series whose first finite value is `value`."""
    magnitude = abs(value)
    if magnitude == 0.0 or 1.0 / ORDINARY <= magnitude <= ORDINARY:
        return 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1] - 1)  # so that 1 <= |value| / unit < 2


def units_of(values: np.ndarray) -> np.ndarray:
    """`unit_of` for every element (finite ones; others get 1)."""
    magnitude = np.abs(np.where(np.isfinite(values), values, 0.0))
    ordinary = (magnitude == 0.0) | ((magnitude >= 1.0 / ORDINARY) & (magnitude <= ORDINARY))
    return np.where(ordinary, 1.0, np.ldexp(1.0, np.frexp(magnitude)[1] - 1))


def in_units(values: np.ndarray | float, unit: np.ndarray | float) -> np.ndarray:
    return np.clip(np.divide(values, unit), -LIMIT, LIMIT)
