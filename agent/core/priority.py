"""ITIL priority: impact x urgency through a configurable matrix, and the SLA clock each priority starts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from agent.config.models import PriorityConfig
from agent.core.domain import Level, Priority, Severity


@dataclass(frozen=True)
class Assessment:
    impact: Level
    urgency: Level
    priority: Priority
    why: str


class PriorityPolicy:
    """Impact comes from the service tier, raised one level when the incident is broad (many instances or
    dependent services affected); urgency from the most severe signal."""

    def __init__(self, config: PriorityConfig, breadth_instances: int = 3):
        self.config = config
        self.breadth_instances = breadth_instances

    def assess(
        self, tier: int, severities: Iterable[Severity], instances: int = 1, dependents_affected: int = 0
    ) -> Assessment:
        base = self.config.tier_impact.get(tier, Level.LOW)
        impact = base
        reasons = [f"tier {tier} -> impact {base}"]
        if instances >= self.breadth_instances or dependents_affected > 0:
            impact = base.raised()
            if impact is not base:
                what = (
                    f"{instances} instances" if instances >= self.breadth_instances else "dependent services"
                )
                reasons.append(f"raised to {impact} ({what} affected)")
        worst = max(severities, key=lambda s: s.rank, default=Severity.INFO)
        urgency = self.config.severity_urgency.get(worst, Level.LOW)
        reasons.append(f"{worst} signal -> urgency {urgency}")
        return Assessment(impact, urgency, self.config.matrix[impact][urgency], "; ".join(reasons))

    def due(self, priority: Priority, opened_at: datetime) -> tuple[datetime, datetime]:
        """(acknowledge by, resolve by) for an incident of `priority` opened at `opened_at`."""
        target = self.config.sla[priority]
        return opened_at + target.acknowledge, opened_at + target.resolve
