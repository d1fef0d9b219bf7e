"""Map deviation statistics onto one score scale, so one alert threshold serves every detector.

The scale is the two-sided Gaussian tail probability of the deviation on a log axis:
score = -log10(p) / 10, clipped to [0, 1]. A 3-sigma deviation scores 0.26, 5 sigma 0.62,
6 sigma 0.87, and 7 sigma or more 1.0; the default alert threshold of 0.8 is about 5.7 sigma.
"""

from __future__ import annotations

import math

_DECADES = 10.0


def z_to_score(z: float) -> float:
    z = abs(z)
    if z < 1e-12:
        return 0.0
    p = math.erfc(z / math.sqrt(2.0))
    if p <= 0.0:
        return 1.0
    return min(1.0, -math.log10(p) / _DECADES)
