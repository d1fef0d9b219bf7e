"""The rule engine: which runbook, with which parameters, answers an incident.

A rule's conditions on a signal (service, signal name, labels) never change once the signal exists,
so they are checked once per signal as it joins an incident; what can change (priority, guards) is
checked when the rule might act.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.config.models import Catalog, ParamValue, Rule, RunbookSpec, Verification
from agent.core.domain import ChangeType
from agent.core.incidents import IncidentState, SignalState
from agent.core.params import ParamError, coerce, render


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


class RuleEngine:
    def __init__(self, rules: Sequence[Rule], catalog: Catalog):
        self.rules = list(rules)
        self.catalog = catalog
        self._any_service: list[int] = []
        self._by_service: dict[str, list[int]] = {}
        for i, rule in enumerate(self.rules):
            services = rule.match.services
            if not services:
                self._any_service.append(i)
            for service in services:
                self._by_service.setdefault(service, []).append(i)

    def matching(self, service: str, sig: SignalState) -> list[int]:
        """Indexes of the rules whose conditions on service, signal name and labels `sig` meets."""
        out = []
        for i in self._by_service.get(service, []) + self._any_service:
            m = self.rules[i].match
            if (not m.signals or sig.name in m.signals) and all(
                sig.labels.get(k) == v for k, v in m.labels.items()
            ):
                out.append(i)
        return out

    def applicable(self, candidates: Iterable[int], inc: IncidentState) -> list[int]:
        """Of the rules some signal of `inc` meets, those whose priority condition holds now, in file order."""
        return [i for i in sorted(candidates) if inc.priority.at_least(self.rules[i].match.min_priority)]

    def plan(self, rule: Rule, inc: IncidentState, trigger: SignalState, runbook_name: str = "") -> Plan:
        """Fill and type-check the runbook's parameters; raises ParamError when they do not fit.
        `runbook_name` is the catalog runbook to run when the rule's is `known_error_workaround` (the
        rule's parameters go to it where it takes them)."""
        runbook_name = runbook_name or rule.runbook
        runbook = self.catalog.runbooks[runbook_name]
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
            raise ParamError(f"rule {rule.name!r} has no verification (nor has runbook {runbook_name!r})")
        kind = runbook.change_type
        if rule.guards.approval == "required":
            kind = ChangeType.NORMAL  # a person decides first, even for an emergency runbook
        return Plan(
            rule=rule,
            runbook_name=runbook_name,
            runbook=runbook,
            params=params,
            verify=verify,
            change_type=kind,
            trigger=trigger,
        )


class Triggers:
    """Per incident, the newest signal each rule matches, kept up to date as signals arrive: asking which
    signal triggers a rule costs the same whether the incident holds one signal or thousands."""

    def __init__(self, engine: RuleEngine):
        self.engine = engine
        self._matches: dict[int, dict[str, tuple[int, ...]]] = {}  # ref -> fingerprint -> rule indexes
        self._newest: dict[int, dict[int, SignalState]] = {}  # ref -> rule index -> newest signal
        # (ref, rule index) -> when matching signals arrived, for rules that `require` several
        self._arrivals: dict[tuple[int, int], deque[datetime]] = {}

    def seen(self, inc: IncidentState, sig: SignalState) -> bool:
        """`sig` of `inc` is new or has changed (a repeat moves its `last_at` on). True when a rule
        that requires several signals counted it."""
        by_signal = self._matches.setdefault(inc.ref, {})
        indexes = by_signal.get(sig.fingerprint)
        if indexes is None:
            indexes = by_signal[sig.fingerprint] = tuple(self.engine.matching(inc.service, sig))
        newest = self._newest.setdefault(inc.ref, {})
        counted = False
        for i in indexes:
            held = newest.get(i)
            if held is None or sig.last_at >= held.last_at:
                newest[i] = sig
            require = self.engine.rules[i].require
            if require is not None:
                key = (inc.ref, i)
                arrivals = self._arrivals.get(key)
                if arrivals is None:
                    arrivals = self._arrivals[key] = deque(maxlen=require.count)
                arrivals.append(sig.last_at)
                counted = True
        return counted

    def count_since(self, ref: int, index: int, since: datetime) -> int:
        """Matching signals of incident `ref` that arrived for rule `index` after `since`."""
        return sum(t > since for t in self._arrivals.get((ref, index), ()))

    def of(self, inc: IncidentState) -> dict[int, SignalState]:
        """Rule index -> the newest signal of `inc` that the rule matches, for every rule some signal meets."""
        return self._newest.get(inc.ref, {})

    def forget(self, ref: int) -> None:
        self._matches.pop(ref, None)
        self._newest.pop(ref, None)
        for key in [k for k in self._arrivals if k[0] == ref]:
            del self._arrivals[key]


def blocked_by_guards(
    rule: Rule, attempts: int, last_change_at: datetime | None, now: datetime
) -> str | None:
    """Why the rule may not act now, or None. Guards keep automation from hammering a system."""
    if attempts >= rule.guards.max_attempts:
        return f"max attempts reached ({attempts}/{rule.guards.max_attempts})"
    if last_change_at is not None:
        ready = last_change_at + rule.guards.cooldown
        if now < ready:
            wait = timedelta(seconds=round((ready - now).total_seconds()))
            return f"cooldown active for {wait} more"
    return None
