"""What a problem (or candidate) costs, and whether it is getting worse: the problem manager works the
costliest first (SPEC "ITSM rules": candidates are ranked by cost).

Pure: a problem's incidents, their changes and `now` in, numbers out; the shell reads them from the store.

Cost, in priority-weighted hours (an hour of a P1 incident open costs 8, of a P4 1):
- open: for each incident, the hours from its opening to its resolution (to its closing when it was closed
  unresolved, to `now` while it is open) times its priority's weight: P1 8, P2 4, P3 2, P4 1;
- failed changes: each change that failed or was rolled back costs `PER_FAILED_CHANGE` (8, an hour of P1);
- manual changes: each change a person had to make or approve (a retry or rollback someone asked for, or a
  change decided by anyone but the agent) costs `PER_MANUAL_CHANGE` (4); a failed manual change counts
  as both;
- SLA breaches: each breached target (acknowledge, resolve) costs `PER_SLA_BREACH` (8).

Trend: the incidents opened in the last 7 days against the weekly mean of the 28 days before them.
`rising` when this week has at least 1.5 times the mean (or any incident after four quiet weeks),
`falling` when at most half of it, else `steady`.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 1, 29, tzinfo=UTC)
>>> trend([datetime(2026, 1, 28, tzinfo=UTC)], now).label
'rising'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent.core.domain import Actor, ChangeKind, ChangeStatus, Priority
from agent.core.records import ChangeBase, IncidentBase

WEIGHTS: Mapping[Priority, float] = {Priority.P1: 8.0, Priority.P2: 4.0, Priority.P3: 2.0, Priority.P4: 1.0}
PER_FAILED_CHANGE = 8.0
PER_MANUAL_CHANGE = 4.0
PER_SLA_BREACH = 8.0
WEEK = timedelta(days=7)
BEFORE = 4  # weeks the current one is compared with
RISING = 1.5
FALLING = 0.5
_FAILED = {ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK}
_ASKED = {ChangeKind.RETRY, ChangeKind.ROLLBACK}


@dataclass(frozen=True)
class Cost:
    """A problem's cost and its parts; `total` is what lists are ranked by."""

    open_hours: float  # priority-weighted hours its incidents were open
    failed_changes: int
    manual_changes: int
    sla_breaches: int

    @property
    def total(self) -> float:
        return (
            self.open_hours
            + PER_FAILED_CHANGE * self.failed_changes
            + PER_MANUAL_CHANGE * self.manual_changes
            + PER_SLA_BREACH * self.sla_breaches
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": round(self.total, 2),
            "open_hours": round(self.open_hours, 2),
            "failed_changes": self.failed_changes,
            "manual_changes": self.manual_changes,
            "sla_breaches": self.sla_breaches,
        }


@dataclass(frozen=True)
class Trend:
    this_week: int
    weekly_mean: float  # over the four weeks before this one
    label: str  # rising | steady | falling

    @property
    def ratio(self) -> float | None:
        return self.this_week / self.weekly_mean if self.weekly_mean > 0 else None

    def as_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "this_week": self.this_week,
            "weekly_mean": round(self.weekly_mean, 2),
            "ratio": round(ratio, 2) if ratio is not None else None,
            "label": self.label,
        }


def manual(change: ChangeBase) -> bool:
    """A person asked for it (retry, rollback) or decided it (approved a normal change, or rejected it)."""
    if ChangeKind(change.kind) in _ASKED:
        return True
    return bool(change.decided_by) and change.decided_by.partition(":")[0] != Actor.AGENT.value


def open_hours(incident: IncidentBase, now: datetime) -> float:
    """The incident's priority-weighted hours from opening to resolution (closing, or `now`)."""
    end = incident.resolved_at or incident.closed_at or now
    hours = max(0.0, (end - incident.opened_at).total_seconds() / 3600)
    return hours * WEIGHTS[Priority(incident.priority)]


def cost(incidents: Iterable[IncidentBase], changes: Iterable[ChangeBase], now: datetime) -> Cost:
    """The cost of one problem: its incidents and the changes made for them."""
    listed = list(incidents)
    made = list(changes)
    return Cost(
        open_hours=sum(open_hours(i, now) for i in listed),
        failed_changes=sum(ChangeStatus(c.status) in _FAILED for c in made),
        manual_changes=sum(manual(c) for c in made),
        sla_breaches=sum(int(i.ack_breached) + int(i.resolve_breached) for i in listed),
    )


def trend(opened: Iterable[datetime], now: datetime) -> Trend:
    """Incidents opened in the week up to `now` against the weekly mean of the four weeks before."""
    week = before = 0
    for at in opened:
        if now - WEEK <= at <= now:
            week += 1
        elif now - (BEFORE + 1) * WEEK <= at < now - WEEK:
            before += 1
    mean = before / BEFORE
    if (mean == 0 and week > 0) or (mean > 0 and week >= RISING * mean):
        label = "rising"
    elif mean > 0 and week <= FALLING * mean:
        label = "falling"
    else:
        label = "steady"
    return Trend(week, mean, label)


def daily(incidents: Iterable[IncidentBase], now: datetime, days: int = 30) -> dict[str, Any]:
    """Incidents opened per UTC day and service over the `days` days up to `now` (`from` and `to`, both
    included; days with none left out), for a problem's timeline chart."""
    first, last = (now - timedelta(days=days - 1)).date(), now.date()
    counts = Counter(
        (i.opened_at.date().isoformat(), i.service) for i in incidents if first <= i.opened_at.date() <= last
    )
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "counts": [{"day": d, "service": s, "incidents": n} for (d, s), n in sorted(counts.items())],
    }
