"""Problem-management KPIs: how much is known, how much of the incident load it covers, and whether
recording a known error made its incidents come back less often (continual improvement).

Pure: counts, known errors and incident openings in, numbers out; the caller gives the period.

Definitions:
- candidates, open problems (promoted, no workaround yet), known errors: as the store holds them now.
- linked incidents: incidents opened in the period that matched a known error when they opened.
- repeat rate before / after: for each known error, the incidents of its signatures per week in the
  `span` before it was recorded, and from its recording until the end of the period (at most `span`);
  the totals add the incidents and the weeks of every known error with a side to measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.core.kpis import Rate
from agent.core.records import IncidentBase

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Recorded:
    """A known error as the KPIs see it."""

    id: int
    title: str
    signatures: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Rates:
    """Incidents and weeks observed on one side of a known error's recording."""

    incidents: int
    weeks: float

    @property
    def per_week(self) -> float | None:
        return self.incidents / self.weeks if self.weeks > 0 else None

    def __add__(self, other: Rates) -> Rates:
        return Rates(self.incidents + other.incidents, self.weeks + other.weeks)


@dataclass(frozen=True)
class Effect:
    known_error_id: int
    title: str
    before: Rates
    after: Rates


@dataclass(frozen=True)
class ProblemReport:
    candidates: int
    open_problems: int
    known_errors: int
    linked_incidents: Rate
    before: Rates
    after: Rates
    effects: list[Effect] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "open_problems": self.open_problems,
            "known_errors": self.known_errors,
            "linked_incidents": _rate(self.linked_incidents),
            "repeat_rate_before_per_week": self.before.per_week,
            "repeat_rate_after_per_week": self.after.per_week,
            "known_error_effects": [
                {
                    "known_error_id": e.known_error_id,
                    "title": e.title,
                    "before": _rates(e.before),
                    "after": _rates(e.after),
                }
                for e in self.effects
            ],
        }


def compute_problems(
    by_status: Mapping[str, int],
    known: Sequence[Recorded],
    incidents: Iterable[IncidentBase],
    openings: Iterable[tuple[str, datetime]],
    span: timedelta,
    until: datetime,
) -> ProblemReport:
    """`incidents`: those opened in [until - span, until]; `openings`: (signature, opened_at) of the
    known errors' signatures, from `span` before the oldest known error was recorded until `until`."""
    in_period = [i for i in incidents if until - span <= i.opened_at <= until]
    by_signature: dict[str, list[datetime]] = {}
    for signature, at in openings:
        by_signature.setdefault(signature, []).append(at)
    effects = []
    for k in sorted(known, key=lambda k: k.id):
        times = [t for s in set(k.signatures) for t in by_signature.get(s, ())]
        after_end = min(until, k.created_at + span)
        before = Rates(sum(k.created_at - span <= t < k.created_at for t in times), span / WEEK)
        after = Rates(
            sum(k.created_at <= t <= after_end for t in times),
            max(after_end - k.created_at, timedelta(0)) / WEEK,
        )
        effects.append(Effect(k.id, k.title, before, after))
    return ProblemReport(
        candidates=by_status.get("candidate", 0),
        open_problems=by_status.get("problem", 0),
        known_errors=len(known),
        linked_incidents=Rate(sum(i.known_error_id is not None for i in in_period), len(in_period)),
        before=sum((e.before for e in effects), Rates(0, 0.0)),
        after=sum((e.after for e in effects), Rates(0, 0.0)),
        effects=effects,
    )


def _rate(r: Rate) -> dict[str, Any]:
    return {"part": r.part, "whole": r.whole, "rate": r.value}


def _rates(r: Rates) -> dict[str, Any]:
    return {"incidents": r.incidents, "weeks": round(r.weeks, 3), "per_week": r.per_week}
