"""The rule engine: which runbook, with which parameters, answers an incident."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.config.models import Catalog, ParamValue, Rule, RunbookSpec, Verification
from agent.domain import ChangeType
from agent.incidents import IncidentState, SignalState
from agent.params import ParamError, coerce, render


@dataclass(frozen=True)
class Plan:
    """A remediation ready to become a change record."""

    rule: Rule
    runbook_name: str
    runbook: RunbookSpec
    params: dict[str, ParamValue]
    verify: Verification
    change_type: ChangeType
    trigger: SignalState

    @property
    def shown_params(self) -> dict[str, ParamValue]:
        """Parameters as they may be stored and logged: secrets masked."""
        return {k: ("***" if self.runbook.params[k].secret else v) for k, v in self.params.items()}

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(k for k, spec in self.runbook.params.items() if spec.secret)


@dataclass(frozen=True)
class History:
    """What the store knows about earlier changes, as far as the guards need it."""

    pending: bool
    attempts: int
    last_change_at: datetime | None


class RuleEngine:
    def __init__(self, rules: Sequence[Rule], catalog: Catalog):
        self.rules = list(rules)
        self.catalog = catalog

    def matches(self, inc: IncidentState) -> list[tuple[Rule, SignalState]]:
        """Rules whose conditions hold, in file order, each with the newest signal that satisfied it."""
        out = []
        for rule in self.rules:
            m = rule.match
            if m.services and inc.service not in m.services:
                continue
            if not inc.priority.at_least(m.min_priority):
                continue
            candidates = [
                s
                for s in inc.signals.values()
                if (not m.signals or s.name in m.signals)
                and all(s.labels.get(k) == v for k, v in m.labels.items())
            ]
            if candidates:
                out.append((rule, max(candidates, key=lambda s: s.last_at)))
        return out

    def plan(self, rule: Rule, inc: IncidentState, trigger: SignalState) -> Plan:
        """Fill and type-check the runbook's parameters; raises ParamError when they do not fit."""
        runbook = self.catalog.runbooks[rule.runbook]
        context = {
            "service": inc.service,
            "signal": trigger.name,
            "value": f"{trigger.last_value:g}",
            "incident.id": str(inc.id),
            "incident.priority": inc.priority.value,
            "incident.service": inc.service,
            **{f"labels.{k}": v for k, v in trigger.labels.items()},
        }
        params: dict[str, ParamValue] = {}
        for name, spec in runbook.params.items():
            if name in rule.params:
                params[name] = coerce(name, render(rule.params[name], context), spec)
            elif spec.default is not None:
                params[name] = coerce(name, spec.default, spec)
            elif spec.required:
                raise ParamError(f"parameter {name!r} has no value")
        verify = rule.verify or runbook.verify
        if verify is None:
            raise ParamError(f"rule {rule.name!r} has no verification")
        needs_approval = runbook.change_type is not ChangeType.STANDARD or rule.guards.approval == "required"
        return Plan(
            rule=rule,
            runbook_name=rule.runbook,
            runbook=runbook,
            params=params,
            verify=verify,
            change_type=ChangeType.NORMAL if needs_approval else ChangeType.STANDARD,
            trigger=trigger,
        )


def blocked_by_guards(rule: Rule, history: History, now: datetime) -> str | None:
    """Why the rule may not act now, or None. Guards keep automation from hammering a system."""
    if history.pending:
        return "a change for this incident is already pending"
    if history.attempts >= rule.guards.max_attempts:
        return f"max attempts reached ({history.attempts}/{rule.guards.max_attempts})"
    if history.last_change_at is not None:
        ready = history.last_change_at + rule.guards.cooldown
        if now < ready:
            wait = timedelta(seconds=round((ready - now).total_seconds()))
            return f"cooldown active for {wait} more"
    return None
