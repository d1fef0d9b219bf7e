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

SMALLEST, LARGEST = 2.0**-40, 2.0**100
"""Series whose first value lies within [SMALLEST, LARGEST] (about 1e-12 to 1e30) or is zero keep the unit
1. Below, the detectors' absolute floors would hide every change; above, float32 state would overflow."""
LIMIT = 1e33
"""Values are clipped to +-LIMIT units: far beyond any judgement, still within float32's range (3.4e38)."""


def unit_of(value: float) -> float:
    """The unit of a series whose first finite value is `value`."""
    magnitude = abs(value)
    if magnitude == 0.0 or SMALLEST <= magnitude <= LARGEST:
        return 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1] - 1)  # so that 1 <= |value| / unit < 2


def units_of(values: np.ndarray) -> np.ndarray:
    """`unit_of` for every element (finite ones; others get 1)."""
    magnitude = np.abs(np.where(np.isfinite(values), values, 0.0))
    ordinary = (magnitude == 0.0) | ((magnitude >= SMALLEST) & (magnitude <= LARGEST))
    return np.where(ordinary, 1.0, np.ldexp(1.0, np.frexp(magnitude)[1] - 1))


def in_units(values: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """`values` measured in `unit`, clipped to +-LIMIT (a quotient that overflows is clipped too)."""
    with np.errstate(over="ignore"):
        return np.clip(np.divide(values, unit), -LIMIT, LIMIT)
