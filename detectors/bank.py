"""The combination layer: members on one calibrated scale, combined, damped, mapped into [0, 1].

A bank scores many series at once (one slot per series, one numpy step per tick). Each member turns
points into a surprise (NaN while it has no opinion yet: it is not calibrated on its own warm-up); a
per-member `TailCalibrator` turns surprises into rarity (-log10 of how often this series saw one as
large); the rarest member, plus a quarter of the runner-up (agreement between members is evidence),
gives the combined rarity. Rarity is relative to the series' own history, so on a series that is flat
to within `materiality` (a share of its level) a change smaller than that share is not an anomaly,
however rare: a p99 that wobbles by 0.03% is not news. `AlarmDamping` reports each event once; and
e / (e + scale), with e the rarity in excess of `floor`, maps it into [0, 1]. Ordinary points (the
rarest of five members is typically about one in ten to thirty) score 0. Where 0.8, the agent's
default alert threshold, falls is each series' own `AlarmBudget` line: the rarity at which that series
is expected to alarm `budget` times a day, given its sample rate and its tail (without a budget, a
fixed combined rarity of 3.5, about one point in three thousand).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.budget import AlarmBudget
from detectors.damping import AlarmDamping
from detectors.level import EWLevel, LogLevel
from detectors.novelty import ShapeNovelty
from detectors.seasonal import DailyProfile
from detectors.shift import MeanShift
from detectors.slots import Field, Slots
from detectors.tail import YOUNG_GAIN, TailCalibrator
from detectors.units import in_units, units_of

MEMBERS = ("level", "loglevel", "seasonal", "novelty", "shift")
DEFAULT_FLOOR = 1.5  # combined rarity of ordinary points
DEFAULT_SCALE = 0.5  # with the floor, rarity 3.5 (one point in ~3000) maps to 0.8
DEFAULT_MATERIALITY = 0.01  # changes under 1% of the level matter only on series that vary more than that
DEFAULT_BUDGET = 0.05  # false alarms per series per day at the alarm score
# Chosen by leave-one-category-out on NAB among settings that keep the default budget
# (`python -m bench.loco`, docs/benchmarks.md); a profile's params override each key.
DEFAULT_NOVELTY = {"window": 8}  # the shape compared with past shapes: 8 points
DEFAULT_LEVEL = {"alpha": 1 / 4096}  # the level's slowest adaptation: about 4,096 points
# Each member's calibration: 6000 points of history; a surprise beyond the record is an e-fold rarer per
# twentieth of the record it exceeds it by, once ~1500 points stand behind the record (detectors/tail.py).
DEFAULT_CALIBRATION = {"horizon": 6000, "record_gain": 20.0, "record_history": 1500}
# The daily profile's surprise is a residual over a spread learned from a handful of points per bin: a
# t-like heavy tail whose records fall to wide margins, so its records keep the gentle young gain.
HEAVY_TAILED = ("seasonal",)
# How many times as often as the budget's decade-per-unit model predicts alarms come near the record
# (detectors/budget.py); chosen with the rest by leave-one-category-out, on NAB's normal stretches.
DEFAULT_BUDGET_TAIL = 1.25
ALARM_SCORE = 0.8  # the score a series' budget line maps to: the agent's default threshold


class DetectorBank(Slots):
    """Scores `n` series in lockstep; `update(ts, values)` takes one point per series (NaN = no point).

    >>> import numpy as np
    >>> bank = DetectorBank(2, calibration={"min_count": 20})
    >>> rng = np.random.default_rng(0)
    >>> for t in range(300):
    ...     s = bank.update(np.full(2, 60.0 * t), rng.normal(10, 1, 2))
    >>> s = bank.update(np.full(2, 18000.0), np.array([10.5, 40.0]))
    >>> bool(s[0] < 0.5), bool(s[1] > 0.8)
    (True, True)
    """

    expected: np.ndarray
    unsuppressed: np.ndarray
    rarity: np.ndarray  # the combined rarity behind `unsuppressed` (0 for an immaterial point)
    deviation: np.ndarray  # |z| from the robust level: how far from normal the last point was
    unit: np.ndarray  # each series' unit (detectors.units), fixed by its first finite value

    def __init__(
        self,
        n: int = 0,
        members: Sequence[str] = MEMBERS,
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
        unknown = set(members) - set(MEMBERS)
        if unknown or not members:
            raise ValueError(f"members must be a non-empty subset of {', '.join(MEMBERS)}")
        self.members = tuple(members)
        if materiality < 0:
            raise ValueError("materiality must be >= 0")
        self.second_weight, self.floor = second_weight, floor
        self.scale, self.materiality = scale, materiality
        level = {**DEFAULT_LEVEL, **(level or {})}
        self.level = EWLevel(n, **level)
        self.loglevel = LogLevel(n, **level) if "loglevel" in members else None
        self.seasonal = DailyProfile(n, **(seasonal or {})) if "seasonal" in members else None
        self.novelty = (
            ShapeNovelty(n, **{**DEFAULT_NOVELTY, **(novelty or {})}) if "novelty" in members else None
        )
        self.shift = MeanShift(n, **(shift or {})) if "shift" in members else None
        cal = {**DEFAULT_CALIBRATION, **(calibration or {})}
        gain = cal.pop("record_gain")  # DEFAULT_CALIBRATION always holds one
        gains = [YOUNG_GAIN if m in HEAVY_TAILED else gain for m in self.members]
        self.calibration = TailCalibrator(n, width=len(self.members), record_gain=gains, **cal)
        self.damping = AlarmDamping(n, horizon=damping)
        self.budget = AlarmBudget(n, budget, tail=budget_tail) if budget is not None else None
        self._lead_columns = [self.members.index(m) for m in self._leads()]  # their calibration columns
        self.allocate(n)

    def fields(self) -> list[Field]:
        return [
            Field("expected", init=np.nan),
            Field("unsuppressed"),
            Field("rarity"),
            Field("deviation"),
            Field("unit", init=np.nan),
        ]

    def children(self) -> list[Slots]:
        parts: list[Slots | None] = [
            self.level,
            self.loglevel,
            self.seasonal,
            self.novelty,
            self.shift,
            self.damping,
            self.budget,
        ]
        return [p for p in parts if p is not None] + [self.calibration]

    @property
    def size(self) -> int:
        return int(self.expected.shape[0])

    def _leads(self) -> dict[str, int]:
        """Points each member stays silent before its first opinion, for the members that speak on every
        series (the daily profile waits for a day of history, the log level for a non-negative series)."""
        leads = {"level": self.level.warm, "shift": max(self.level.warm - 1, 0)}
        if self.novelty is not None:
            leads["novelty"] = max(self.novelty.window - 1, self.novelty.warm)
        return {m: leads[m] for m in self.members if m in leads}

    @property
    def warmup(self) -> int:
        """Points until `warm`: the level has its footing and every always-speaking member is calibrated."""
        calibrated = [lead + self.calibration.warmup for lead in self._leads().values()]
        return max([self.level.warm + 1, *calibrated])

    def warm(self) -> np.ndarray:
        return (self.level.cnt > self.level.warm) & self.calibration.ready()[:, self._lead_columns].all(
            axis=1
        )

    def update(self, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values)
        first = ok & np.isnan(self.unit)
        if first.any():
            self.unit = np.where(first, units_of(values), self.unit)
        x = np.where(ok, in_units(values, self.unit), 0.0)
        ts = np.asarray(ts, dtype=np.float64)
        before = self.level.m.copy()
        material = self._material(x, before)
        self.expected = np.where(ok, before * self.unit, self.expected)
        surprise: dict[str, np.ndarray] = {"level": self.level.step(x, ok)}
        if self.loglevel is not None:
            surprise["loglevel"] = self.loglevel.step(x, ok, self.level.m)
        if self.seasonal is not None:
            surprise["seasonal"] = self.seasonal.step(ts, x, ok, before, 0.1 * self.level.scale())
        if self.novelty is not None:
            surprise["novelty"] = self.novelty.step(x, ok)
        if self.shift is not None:
            surprise["shift"] = self.shift.step(self.level.z, ok & (self.level.cnt >= self.level.warm))
        surprises = np.stack([surprise[m] for m in self.members], axis=1)
        speaks = ok[:, None] & np.isfinite(surprises)
        rarity = self.calibration.step(np.where(speaks, surprises, 0.0), speaks)
        if self.seasonal is not None:
            rarity[:, self.members.index("seasonal")] *= self.seasonal.speaks
        if len(self.members) > 1:  # the rarest member, plus a share of the runner-up
            top = np.partition(rarity, len(self.members) - 2, axis=1)[:, -2:]
            combined = top[:, 1] + self.second_weight * top[:, 0]
        else:
            combined = rarity[:, 0]
        combined = np.where(material, combined, 0.0)
        damped = self.damping.step(combined, ok)
        shift = self._shift()
        if self.budget is not None:
            self.budget.observe(ts, damped, ok & self.warm())
        self.rarity = np.where(ok, combined, self.rarity)
        self.unsuppressed = np.where(ok, self._unit(combined - shift), self.unsuppressed)
        self.deviation = np.where(ok, np.abs(self.level.z), self.deviation)
        return np.where(ok, self._unit(damped - shift), 0.0)

    def _shift(self) -> np.ndarray | float:
        """How far each series' budget line sits above the rarity that maps to ALARM_SCORE."""
        if self.budget is None:
            return 0.0
        at_alarm = self.floor + self.scale * ALARM_SCORE / (1.0 - ALARM_SCORE)
        return self.budget.line() - at_alarm

    def _material(self, x: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Whether a point can be an anomaly at all: it moved at least `materiality` of the level away
        from it, or the series usually varies by more than that (then its own calibration judges)."""
        bar = self.materiality * np.abs(level)
        usual = 1.2533 * self.level.d  # the level's robust spread, before this point
        return ~(np.abs(x - level) < bar) | (usual >= bar)

    def _unit(self, rarity: np.ndarray) -> np.ndarray:
        return to_unit(rarity, self.floor, self.scale)


def to_unit(rarity: np.ndarray, floor: float = DEFAULT_FLOOR, scale: float = DEFAULT_SCALE) -> np.ndarray:
    """Rarity -> [0, 1]: e / (e + scale), e the rarity in excess of `floor` (0.8 at floor + 4 * scale)."""
    excess = np.maximum(rarity - floor, 0.0)
    return excess / (excess + scale)


def from_unit(score: np.ndarray, floor: float = DEFAULT_FLOOR, scale: float = DEFAULT_SCALE) -> np.ndarray:
    """The inverse of `to_unit` where it has one: a score of 0 says only "at most `floor`", read as 0."""
    u = np.clip(score, 0.0, 1.0 - 1e-12)
    return np.where(u > 0, floor + scale * u / (1.0 - u), 0.0)
