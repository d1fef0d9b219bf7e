"""Correlation: signals become incidents. Part of the pure core; every lookup goes through an index, so a
signal costs the same with ten active incidents or ten thousand.

A signal joins the active incident of its service when that incident already holds its signature or
saw activity within the correlation window; a signal whose signature was resolved moments ago reopens
that incident; otherwise a new incident opens, linked to an active incident of a service it depends on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from agent.config.models import CorrelationConfig
from agent.core.decisions import Decisions
from agent.core.domain import Actor, IncidentStatus, Severity, Signal, SignalClear
from agent.core.incidents import Entry, IncidentState, SignalState, Text
from agent.core.priority import PriorityPolicy
from agent.core.topology import ServiceMap
from agent.durations import format_duration as _fmt

AGENT = Actor.AGENT.value
_OPEN_OR_ACKED = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


class Correlator:
    """Holds the working set (active incidents and those resolved within the reopen window) and writes
    what it changes into `out`, the decisions of the event being handled."""

    def __init__(self, services: ServiceMap, policy: PriorityPolicy, config: CorrelationConfig):
        self.services = services
        self.policy = policy
        self.config = config
        self.out = Decisions()
        self.incidents: dict[int, IncidentState] = {}  # by ref
        self._next_ref = 1
        self._active: dict[str, dict[int, IncidentState]] = {}  # service -> active incidents
        self._holders: dict[str, dict[int, IncidentState]] = {}  # fingerprint -> incidents holding it
        self._by_id: dict[int, IncidentState] = {}
        self._last_signal: dict[int, datetime] = {}
        self._instances: dict[int, set[str]] = {}
        self._names: dict[int, dict[str, tuple[int, datetime]]] = {}  # name -> (severity rank, first seen)
        self._worst: dict[int, Severity] = {}
        self._children: dict[int, set[int]] = {}

    # ------------------------------------------------------------------ the working set

    def adopt(self, incidents: Iterable[IncidentState]) -> None:
        """Take over incidents from the store (active ones and recently resolved ones)."""
        for inc in sorted(incidents, key=lambda i: i.id or 0):
            inc.ref = self._next_ref
            self._next_ref += 1
            self._index(inc)
            for sig in inc.signals.values():
                self._index_signal(inc, sig)
        for inc in self.incidents.values():
            parent = self._by_id.get(inc.parent_id) if inc.parent_id is not None else None
            if parent is not None:
                inc.parent_ref = parent.ref
                self._children.setdefault(parent.ref, set()).add(inc.ref)

    def bound(self, inc: IncidentState) -> None:
        """The store assigned `inc.id`."""
        if inc.id is not None:
            self._by_id[inc.id] = inc

    def by_id(self, incident_id: int) -> IncidentState | None:
        return self._by_id.get(incident_id)

    def active(self) -> list[IncidentState]:
        return [i for by_service in self._active.values() for i in by_service.values()]

    def active_of(self, service: str) -> Iterable[IncidentState]:
        return self._active.get(service, {}).values()

    def _index(self, inc: IncidentState) -> None:
        self.incidents[inc.ref] = inc
        if inc.id is not None:
            self._by_id[inc.id] = inc
        if inc.status.active:
            self._active.setdefault(inc.service, {})[inc.ref] = inc
        self._instances[inc.ref] = set()
        self._names[inc.ref] = {}
        self._worst[inc.ref] = Severity.INFO

    def _index_signal(self, inc: IncidentState, sig: SignalState) -> None:
        self._holders.setdefault(sig.fingerprint, {})[inc.ref] = inc
        last = self._last_signal.get(inc.ref)
        if last is None or sig.last_at > last:
            self._last_signal[inc.ref] = sig.last_at
        self._instances[inc.ref].add(sig.labels.get("instance", ""))
        self._name_seen(inc, sig)

    def _name_seen(self, inc: IncidentState, sig: SignalState) -> bool:
        """Record the signal's name for the title; True when the title may have changed."""
        names = self._names[inc.ref]
        seen = names.get(sig.name)
        rank = sig.severity.rank
        if rank > self._worst[inc.ref].rank:
            self._worst[inc.ref] = sig.severity
        if seen is None or rank > seen[0]:
            names[sig.name] = (rank, seen[1] if seen else sig.first_at)
            return True
        return False

    def _forget(self, inc: IncidentState) -> None:
        self.out.forgotten.append(inc.ref)
        del self.incidents[inc.ref]
        if inc.id is not None:
            self._by_id.pop(inc.id, None)
        self._active.get(inc.service, {}).pop(inc.ref, None)
        for fp in inc.signals:
            holders = self._holders.get(fp)
            if holders is not None:
                holders.pop(inc.ref, None)
                if not holders:
                    del self._holders[fp]
        for index in (self._last_signal, self._instances, self._names, self._worst, self._children):
            index.pop(inc.ref, None)

    def _set_active(self, inc: IncidentState) -> None:
        if inc.status.active:
            self._active.setdefault(inc.service, {})[inc.ref] = inc
        else:
            self._active.get(inc.service, {}).pop(inc.ref, None)

    # ------------------------------------------------------------------ inputs

    def observe(self, sig: Signal, now: datetime) -> IncidentState:
        late = self._resolved_before(sig)
        if late is not None:
            state = late.signals[sig.fingerprint]
            state.repeat(sig, reactivate=False)
            self.out.signal(late, state)
            return late
        inc = self._joinable(sig) or self._reopenable(sig, now)
        if inc is None:
            return self._open(sig, now)
        known = inc.signals.get(sig.fingerprint)
        if known is None and len(inc.signals) >= self.config.max_signals:
            self._overflow(inc, sig, now)
            return inc
        if known is None:
            state = inc.signals[sig.fingerprint] = SignalState.first(sig)
            self._index_signal(inc, state)
            inc.title = self._title(inc)
            self._entry(inc, now, "signal", f"new signal joined: {sig.describe()}", _evidence(sig))
            self._reassess(inc, now)
        else:
            state = known
            if state.repeat(sig):
                if self._name_seen(inc, state):
                    inc.title = self._title(inc)
                self._reassess(inc, now)
            if sig.at > self._last_signal[inc.ref]:
                self._last_signal[inc.ref] = sig.at
        self.out.signal(inc, state)
        self._touch(inc, now)
        return inc

    def _overflow(self, inc: IncidentState, sig: Signal, now: datetime) -> None:
        """A signal the full incident cannot hold: it counts (activity, severity, the tally of signals
        beyond the cap) but is not kept, so a flood of distinct label sets costs neither time nor memory
        in proportion to its size."""
        inc.signals_dropped += 1
        if inc.signals_dropped == 1:
            self._entry(
                inc,
                now,
                "signals_capped",
                f"holding {len(inc.signals)} signals (correlation.max_signals): further signals are counted, "
                f"not kept; first one: {sig.describe()}",
                _evidence(sig),
            )
        if sig.at > self._last_signal[inc.ref]:
            self._last_signal[inc.ref] = sig.at
        if sig.severity.rank > self._worst[inc.ref].rank:
            self._worst[inc.ref] = sig.severity
            self._reassess(inc, now)
        self._touch(inc, now)

    def clear(self, c: SignalClear) -> None:
        """A series reported normal: signals of that series stop counting as active."""
        for inc in list(self._holders.get(c.fingerprint, {}).values()):
            state = inc.signals[c.fingerprint]
            if state.active and c.at > state.last_at:
                state.cleared_at = c.at
                self.out.signal(inc, state)

    def tick(self, now: datetime) -> None:
        """Time-driven rules: quiet-period resolution, SLA breaches, forgetting old resolved incidents."""
        quiet = self.config.quiet_period
        for inc in list(self.incidents.values()):
            if inc.status in _OPEN_OR_ACKED:
                cleared = [s.cleared_at for s in inc.signals.values()]
                if all(c is not None for c in cleared):
                    since = max(c for c in cleared if c is not None)
                    if now - since >= quiet:
                        self._resolve(
                            inc, now, AGENT, f"signals clear for {_fmt(now - since)} (quiet period)"
                        )
            if inc.status.active:
                self._check_sla(inc, now)
            elif inc.resolved_at is not None and now - inc.resolved_at > self.config.reopen_window:
                self._forget(inc)

    # ------------------------------------------------------------------ remediation and people

    def remediation_started(self, inc: IncidentState, now: datetime, reason: str) -> None:
        if inc.status in _OPEN_OR_ACKED:
            self.out.entry(inc.transition(IncidentStatus.REMEDIATING, now, AGENT, reason))
            self._touch(inc, now)

    def remediation_verified(self, inc: IncidentState, now: datetime, reason: str) -> None:
        if inc.status.active:
            for s in inc.signals.values():
                if s.cleared_at is None:
                    s.cleared_at = now
                    self.out.signal(inc, s)
            self._resolve(inc, now, AGENT, reason)

    def remediation_failed(self, inc: IncidentState, now: datetime, reason: str) -> None:
        if inc.status is IncidentStatus.REMEDIATING:
            back = IncidentStatus.ACKNOWLEDGED if inc.acknowledged_at else IncidentStatus.OPEN
            self.out.entry(inc.transition(back, now, AGENT, reason))
        self.escalate(inc, now, reason)

    def escalate(self, inc: IncidentState, now: datetime, reason: str) -> None:
        inc.escalated = True
        self._entry(inc, now, "escalated", reason)
        self._touch(inc, now)

    def close(self, inc: IncidentState, now: datetime, actor: str) -> None:
        """A resolved incident is closed: the core lets it go, so a recurrence opens a new incident."""
        inc.status = IncidentStatus.CLOSED
        inc.closed_at, inc.closed_by = now, actor
        self._forget(inc)

    def acknowledge(self, inc: IncidentState, now: datetime, actor: str, reason: str) -> None:
        """A person takes the incident; raises InvalidTransition when its status does not allow it."""
        self.out.entry(inc.transition(IncidentStatus.ACKNOWLEDGED, now, actor, reason))
        self._touch(inc, now)

    # ------------------------------------------------------------------ internals

    def _joinable(self, sig: Signal) -> IncidentState | None:
        best = None
        best_at = None
        active = self._active.get(sig.service)
        if not active:
            return None
        window = self.config.window
        for inc in active.values():
            last = self._last_signal[inc.ref]
            related = sig.fingerprint in inc.signals or sig.at - last <= window
            if related and (best_at is None or last > best_at):
                best, best_at = inc, last
        return best

    def _resolved_before(self, sig: Signal) -> IncidentState | None:
        """A resolved incident this signal belongs to but barely outlives: data from before the resolution
        arriving late, or the tail of a rate window still covering the fault (within `settle_period`),
        is evidence for the old incident, not a recurrence."""
        holders = self._holders.get(sig.fingerprint)
        if not holders:
            return None
        for inc in holders.values():
            if (
                inc.status is IncidentStatus.RESOLVED
                and inc.resolved_at is not None
                and sig.at <= inc.resolved_at + self.config.settle_period
            ):
                return inc
        return None

    def _reopenable(self, sig: Signal, now: datetime) -> IncidentState | None:
        for inc in self._holders.get(sig.fingerprint, {}).values():
            if (
                inc.status is IncidentStatus.RESOLVED
                and inc.resolved_at is not None
                and sig.at - inc.resolved_at <= self.config.reopen_window
            ):
                why = f"recurred {_fmt(sig.at - inc.resolved_at)} after resolution: {sig.describe()}"
                self.out.entry(inc.transition(IncidentStatus.OPEN, now, AGENT, why))
                self._set_active(inc)
                return inc
        return None

    def _open(self, sig: Signal, now: datetime) -> IncidentState:
        a = self.policy.assess(self.services.tier(sig.service), [sig.severity])
        ack_due, resolve_due = self.policy.due(a.priority, now)
        state = SignalState.first(sig)
        inc = IncidentState(
            ref=self._next_ref,
            service=sig.service,
            signature=f"{sig.service}:{sig.name}",
            title="",
            status=IncidentStatus.OPEN,
            priority=a.priority,
            impact=a.impact,
            urgency=a.urgency,
            started_at=sig.at,
            opened_at=now,
            updated_at=now,
            ack_due_at=ack_due,
            resolve_due_at=resolve_due,
            signals={sig.fingerprint: state},
        )
        self._next_ref += 1
        self._index(inc)
        self._index_signal(inc, state)
        inc.title = self._title(inc)
        self.out.signal(inc, state)
        self.out.opened.append(inc)
        data = {
            "priority": a.priority.value,
            "impact": a.impact.value,
            "urgency": a.urgency.value,
            **_evidence(sig),
        }
        self._entry(inc, now, "opened", f"{a.priority} ({a.why}): {sig.describe()}", data)
        self._link_topology(inc, now)
        self._touch(inc, now)
        return inc

    def _link_topology(self, inc: IncidentState, now: datetime) -> None:
        deps = self.services.dependencies(inc.service)
        dependents = self.services.dependents(inc.service)
        candidates = [
            other
            for service in deps | dependents
            for other in self._active.get(service, {}).values()
            if now - other.updated_at <= self.config.window
        ]
        for other in sorted(candidates, key=lambda i: i.ref):
            if other.service in deps and inc.parent_ref is None:
                self._adopt_child(other, inc, now)
            elif other.service in dependents and other.parent_ref is None:
                self._adopt_child(inc, other, now)

    def _adopt_child(self, parent: IncidentState, child: IncidentState, now: datetime) -> None:
        """`child`'s service depends on `parent`'s: the child is likely a symptom of the parent. (A parent
        new in this event has no id yet: the store sets `parent_id` from `parent_ref` when it has one.)"""
        child.parent_ref, child.parent_id = parent.ref, parent.id
        self._children.setdefault(parent.ref, set()).add(child.ref)
        self._entry(
            child,
            now,
            "correlated",
            lambda: f"{child.service} depends on {parent.service}: likely part of {parent.number}",
        )
        self._entry(
            parent, now, "correlated", lambda: f"dependent service {child.service} affected: {child.number}"
        )
        self._reassess(parent, now)
        self._touch(parent, now)
        self._touch(child, now)

    def _reassess(self, inc: IncidentState, now: datetime) -> None:
        children = sum(1 for ref in self._children.get(inc.ref, ()) if self.incidents[ref].status.active)
        a = self.policy.assess(
            self.services.tier(inc.service),
            [self._worst[inc.ref]],
            instances=len(self._instances[inc.ref]) or 1,
            dependents_affected=children,
        )
        if a.priority.rank < inc.priority.rank:
            old = inc.priority
            inc.priority, inc.impact, inc.urgency = a.priority, a.impact, a.urgency
            inc.ack_due_at, inc.resolve_due_at = self.policy.due(a.priority, inc.opened_at)
            self._entry(
                inc,
                now,
                "priority",
                f"raised {old} -> {a.priority} ({a.why})",
                {"from": old, "to": a.priority},
            )

    def _check_sla(self, inc: IncidentState, now: datetime) -> None:
        """Near-breach warnings when `priority.sla_warning` of a target's time has passed, then the
        breach, which also marks the incident escalated."""
        share = self.policy.config.sla_warning
        unacked = inc.status is IncidentStatus.OPEN
        for target, due, warned, live in (
            ("acknowledge", inc.ack_due_at, inc.ack_warned, unacked),
            ("resolve", inc.resolve_due_at, inc.resolve_warned, True),
        ):
            if warned or not live or now < inc.opened_at + share * (due - inc.opened_at) or now > due:
                continue
            setattr(inc, "ack_warned" if target == "acknowledge" else "resolve_warned", True)
            left = timedelta(seconds=round((due - now).total_seconds()))
            why = f"{inc.priority} {target} target due in {left} (at {due:%H:%M:%S})"
            self._entry(inc, now, "sla_warning", why, {"target": target})
            self._touch(inc, now)
        if not inc.ack_breached and unacked and now > inc.ack_due_at:
            inc.ack_breached = inc.escalated = True
            self._entry(
                inc,
                now,
                "sla_breach",
                f"{inc.priority} acknowledge target missed (due {inc.ack_due_at:%H:%M:%S})",
                {"target": "acknowledge"},
            )
            self._touch(inc, now)
        if not inc.resolve_breached and now > inc.resolve_due_at:
            inc.resolve_breached = inc.escalated = True
            self._entry(
                inc,
                now,
                "sla_breach",
                f"{inc.priority} resolve target missed (due {inc.resolve_due_at:%H:%M:%S})",
                {"target": "resolve"},
            )
            self._touch(inc, now)

    def _resolve(self, inc: IncidentState, now: datetime, actor: str, reason: str) -> None:
        self.out.entry(inc.transition(IncidentStatus.RESOLVED, now, actor, reason))
        self._set_active(inc)
        self._touch(inc, now)

    def _entry(
        self,
        inc: IncidentState,
        at: datetime,
        kind: str,
        reason: Text,
        data: dict[str, object] | None = None,
    ) -> None:
        self.out.entry(Entry(inc, at, kind, AGENT, reason, data or {}))

    def _touch(self, inc: IncidentState, now: datetime) -> None:
        if now > inc.updated_at:
            inc.updated_at = now
        self.out.incident(inc)

    def _title(self, inc: IncidentState, most: int = 3) -> str:
        """What is anomalous, most severe first (then in order of arrival): a log anomaly that opened the
        incident does not keep naming it once a critical metric signal has joined."""
        ranked = sorted(self._names[inc.ref].items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        names = [name for name, _ in ranked]
        more = f" and {len(names) - most} more" if len(names) > most else ""
        return f"{', '.join(names[:most])}{more} anomalous on {inc.service}"


def _evidence(sig: Signal) -> dict[str, object]:
    return {
        "signal": sig.name,
        "labels": dict(sig.labels),
        "value": sig.value,
        "expected": sig.expected,
        "score": round(sig.score, 4),
        "detector": sig.detector,
        "severity": sig.severity.value,
        "at": sig.at.isoformat(),
        **({"details": dict(sig.details)} if sig.details else {}),
    }
