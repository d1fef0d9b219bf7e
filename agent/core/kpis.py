"""Service-management KPIs over a period: how fast incidents are seen, answered and fixed, how much the
automation fixed, and how well changes and SLAs went (continual improvement, ITIL 4 / ISO/IEC 20000).

Pure: incident and change records in, numbers out, `now` given by the caller.

Definitions (each over the incidents opened, or changes created, in the period):
- MTTD: first anomalous sample -> incident opened (`started_at` -> `opened_at`).
- MTTA: opened -> acknowledged by a person, over acknowledged incidents.
- MTTR: first anomalous sample -> resolved, over resolved incidents (time to restore the service).
- auto-remediation rate: incidents on which the agent ran a pre-approved (standard) change itself;
  success rate: of those, the incidents where such a change succeeded (ran and was verified).
- change success rate: executed changes (succeeded, failed, rolled back) that succeeded.
- SLA compliance: incidents that met their acknowledge / resolve target, among those whose target has
  passed or that were answered / resolved already.
- repeat incidents: incidents whose signature already had an incident earlier in the period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any

from agent.core.domain import Actor, ChangeStatus, IncidentStatus
from agent.core.records import ChangeBase, IncidentBase

EXECUTED = frozenset({ChangeStatus.SUCCEEDED, ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK})


@dataclass(frozen=True)
class Rate:
    """`part` of `whole`; `value` is None when there is nothing to take a share of."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    incidents: int
    by_priority: dict[str, int]
    resolved: int
    open: int
    mttd_s: float | None
    mtta_s: float | None
    mttr_s: float | None
    auto_remediation: Rate
    auto_remediation_success: Rate
    change_success: Rate
    changes_by_status: dict[str, int]
    ack_sla: Rate
    resolve_sla: Rate
    repeat_incidents: Rate
    top_repeats: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"], out["until"] = self.since.isoformat(), self.until.isoformat()
        for name, value in vars(self).items():
            if isinstance(value, Rate):
                out[name] = {"part": value.part, "whole": value.whole, "rate": value.value}
        out["top_repeats"] = [{"signature": s, "incidents": n} for s, n in self.top_repeats]
        return out


def compute(
    incidents: Sequence[IncidentBase], changes: Iterable[ChangeBase], since: datetime, until: datetime
) -> Report:
    """KPIs of the incidents opened and the changes created in [since, until]."""
    incidents = sorted(
        (i for i in incidents if since <= i.opened_at <= until),
        key=lambda i: (i.opened_at, getattr(i, "id", 0)),
    )
    ours = {getattr(i, "id", None) for i in incidents}
    changes = [c for c in changes if since <= c.created_at <= until]
    resolved = [i for i in incidents if i.resolved_at is not None]
    acked = [i for i in incidents if i.acknowledged_at is not None]

    automatic = [c for c in changes if _by_agent(c) and c.incident_id in ours]
    tried = {c.incident_id for c in automatic if c.status in EXECUTED}
    fixed = {c.incident_id for c in automatic if c.status == ChangeStatus.SUCCEEDED}
    executed = [c for c in changes if c.status in EXECUTED]

    ack_due = [i for i in incidents if i.status != IncidentStatus.OPEN or i.ack_due_at <= until]
    resolve_due = [i for i in incidents if i.resolved_at is not None or i.resolve_due_at <= until]

    seen: Counter[str] = Counter()
    repeats = 0
    for i in incidents:
        repeats += seen[i.signature] > 0
        seen[i.signature] += 1

    return Report(
        since=since,
        until=until,
        incidents=len(incidents),
        by_priority=dict(sorted(Counter(i.priority for i in incidents).items())),
        resolved=len(resolved),
        open=sum(IncidentStatus(i.status).active for i in incidents),
        mttd_s=_mean_seconds((i.started_at, i.opened_at) for i in incidents),
        mtta_s=_mean_seconds((i.opened_at, i.acknowledged_at) for i in acked),
        mttr_s=_mean_seconds((i.started_at, i.resolved_at) for i in resolved),
        auto_remediation=Rate(len(tried), len(incidents)),
        auto_remediation_success=Rate(len(fixed & tried), len(tried)),
        change_success=Rate(sum(c.status == ChangeStatus.SUCCEEDED for c in executed), len(executed)),
        changes_by_status=dict(sorted(Counter(c.status for c in changes).items())),
        ack_sla=Rate(sum(not i.ack_breached for i in ack_due), len(ack_due)),
        resolve_sla=Rate(sum(not i.resolve_breached for i in resolve_due), len(resolve_due)),
        repeat_incidents=Rate(repeats, len(incidents)),
        top_repeats=[(s, n) for s, n in seen.most_common(5) if n > 1],
    )


def _by_agent(change: ChangeBase) -> bool:
    """Pre-approved and started by the agent itself (`agent: standard change, pre-approved`)."""
    return change.decided_by.partition(":")[0] == Actor.AGENT.value


def _mean_seconds(spans: Iterable[tuple[datetime, datetime | None]]) -> float | None:
    seconds = [(end - start).total_seconds() for start, end in spans if end is not None]
    return fmean(seconds) if seconds else None
