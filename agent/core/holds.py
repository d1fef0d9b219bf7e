"""Why a rule that matches and passes its own guards may still not act now: the kill switch, inhibition
by an urgent incident upstream, flapping, an open circuit breaker, the rule's rate limit, budgets.

Each answer comes with the time until which it holds without anything else changing: a rate limit or
budget frees up with time, while a pause, a breaker, an upstream incident or flapping hold until an
event (a resume, a resolution, a tick) changes them and the core considers the incident again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from agent.config import Config
from agent.config.models import Rule
from agent.core.domain import Priority
from agent.core.envelope import Envelope, breaker_open, paused
from agent.core.flapping import FlapDetector
from agent.core.incidents import IncidentState
from agent.core.ledger import ChangeLedger
from agent.core.topology import ServiceMap
from agent.durations import format_duration

NEVER = datetime.max.replace(tzinfo=UTC)
INHIBITING = Priority.P2  # an active incident this urgent on a dependency holds its dependents


class Holds:
    def __init__(
        self,
        config: Config,
        ledger: ChangeLedger,
        envelope: Envelope,
        flaps: FlapDetector,
        services: ServiceMap,
        active_of: Callable[[str], Iterable[IncidentState]],
    ):
        self.remediation = config.agent.remediation
        self.ledger = ledger
        self.envelope = envelope
        self.flaps = flaps
        self.services = services
        self.active_of = active_of
        self._upstream = frozenset(s.name for s in config.services.services if services.dependents(s.name))

    def reason(self, inc: IncidentState, rule: Rule, runbook: str, now: datetime) -> tuple[str, datetime]:
        """Why `rule` (running `runbook`) may not act on `inc` now ("" when it may), and until when."""
        for check in (self._paused, self._inhibited, self._flapping, self._breaker):
            why = check(inc, runbook, now)
            if why:
                return why, NEVER
        limit = rule.guards.rate_limit
        if limit is not None:
            made = self.ledger.made_since(now - limit.per, rule=rule.name)
            if len(made) >= limit.max:
                why = f"rate limit: {len(made)} of {limit.max} changes of rule {rule.name} per {format_duration(limit.per)}"
                return why, made[len(made) - limit.max] + limit.per
        for budget in self.remediation.budgets:
            service = inc.service if budget.scope == "service" else None
            book = runbook if budget.scope == "runbook" else None
            made = self.ledger.made_since(now - budget.per, service, book)
            if len(made) >= budget.max:
                where = f" for {budget.scope} {service or book}" if budget.scope != "global" else ""
                why = f"budget spent: {len(made)} of {budget.max} changes per {format_duration(budget.per)}{where}"
                return why, made[len(made) - budget.max] + budget.per
        return "", NEVER

    def _paused(self, inc: IncidentState, runbook: str, now: datetime) -> str:
        pause = paused(self.envelope.switches, inc.service)
        if pause is None:
            return ""
        scope = f"for {pause.service}" if pause.service else "everywhere"
        return f"automation paused {scope} by {pause.actor}: {pause.reason}"

    def _inhibited(self, inc: IncidentState, runbook: str, now: datetime) -> str:
        for service in sorted(self.services.dependencies(inc.service)):
            for other in self.active_of(service):
                if other.priority.at_least(INHIBITING):
                    return (
                        f"inhibited by incident #{other.id} ({other.priority}) on {other.service}, "
                        f"which {inc.service} depends on"
                    )
        return ""

    def _flapping(self, inc: IncidentState, runbook: str, now: datetime) -> str:
        return f"incident flapping: {self.flaps.describe()}" if inc.flapping else ""

    def _breaker(self, inc: IncidentState, runbook: str, now: datetime) -> str:
        failures = self.ledger.failures(runbook, inc.service)
        if not failures:
            return ""
        cfg = self.remediation.circuit_breaker
        return breaker_open(failures, self.envelope.switches, inc.service, runbook, cfg, now) or ""

    def inhibits(self, inc: IncidentState) -> bool:
        """Whether `inc` holds automation elsewhere (so its changes make the core look again)."""
        return inc.service in self._upstream and inc.priority.at_least(INHIBITING)
