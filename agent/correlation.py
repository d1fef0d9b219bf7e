"""Correlation: signals become incidents. Pure and clock-driven, so live polling and replays share it.

A signal joins the active incident of its service when that incident already holds its signature or
saw activity within the correlation window; a signal whose signature was resolved moments ago reopens
that incident; otherwise a new incident opens, linked to an active incident of a service it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agent.config.models import CorrelationConfig
from agent.domain import Actor, IncidentStatus, Signal, SignalClear, TimelineEntry
from agent.durations import format_duration as _fmt
from agent.incidents import IncidentState, SignalState
from agent.priority import PriorityPolicy
from agent.topology import ServiceMap

AGENT = Actor.AGENT.value


@dataclass
class Outcome:
    """What changed since the last drain: timeline entries in order, touched and newly opened incidents."""

    entries: list[TimelineEntry] = field(default_factory=list)
    touched: dict[int, IncidentState] = field(default_factory=dict)
    opened: list[int] = field(default_factory=list)
    new_signals: list[tuple[int, Signal]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entries or self.touched)


class Correlator:
    def __init__(
        self, services: ServiceMap, policy: PriorityPolicy, config: CorrelationConfig, next_id: int = 1
    ):
        self.services = services
        self.policy = policy
        self.config = config
        self.next_id = next_id
        self.incidents: dict[int, IncidentState] = {}
        self._out = Outcome()

    # ------------------------------------------------------------------ inputs

    def load(self, incidents: list[IncidentState]) -> None:
        """Adopt incidents persisted by an earlier run (active ones and recently resolved ones)."""
        for inc in incidents:
            self.incidents[inc.id] = inc
            self.next_id = max(self.next_id, inc.id + 1)

    def observe(self, sig: Signal, now: datetime) -> IncidentState:
        late = self._resolved_before(sig)
        if late is not None:
            late.signals[sig.fingerprint].repeat(sig, reactivate=False)
            self._out.touched[late.id] = late
            return late
        inc = self._joinable(sig) or self._reopenable(sig, now)
        if inc is None:
            return self._open(sig, now)
        state = inc.signals.get(sig.fingerprint)
        if state is None:
            inc.signals[sig.fingerprint] = SignalState.first(sig)
            inc.title = _title(inc)
            self._entry(inc, now, "signal", f"new signal joined: {sig.describe()}", _evidence(sig))
            self._out.new_signals.append((inc.id, sig))
        else:
            state.repeat(sig)
        self._reassess(inc, now)
        self._touch(inc, now)
        return inc

    def clear(self, c: SignalClear) -> None:
        """A series reported normal: signals of that series stop counting as active."""
        for inc in self.incidents.values():
            state = inc.signals.get(c.fingerprint)
            if state is not None and state.active and c.at > state.last_at:
                state.cleared_at = c.at
                self._out.touched[inc.id] = inc

    def tick(self, now: datetime) -> None:
        """Time-driven rules: quiet-period resolution, SLA breaches, forgetting old resolved incidents."""
        quiet = self.config.quiet_period
        for inc in list(self.incidents.values()):
            if inc.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
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
                del self.incidents[inc.id]

    # ------------------------------------------------------------------ remediation feedback

    def remediation_started(self, incident_id: int, now: datetime, reason: str) -> None:
        inc = self.incidents.get(incident_id)
        if inc is not None and inc.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
            self._out.entries.append(inc.transition(IncidentStatus.REMEDIATING, now, AGENT, reason))
            self._touch(inc, now)

    def remediation_verified(self, incident_id: int, now: datetime, reason: str) -> None:
        inc = self.incidents.get(incident_id)
        if inc is not None and inc.status.active:
            for s in inc.signals.values():
                s.cleared_at = s.cleared_at or now
            self._resolve(inc, now, AGENT, reason)

    def remediation_failed(self, incident_id: int, now: datetime, reason: str) -> None:
        inc = self.incidents.get(incident_id)
        if inc is None:
            return
        if inc.status is IncidentStatus.REMEDIATING:
            back = IncidentStatus.ACKNOWLEDGED if inc.acknowledged_at else IncidentStatus.OPEN
            self._out.entries.append(inc.transition(back, now, AGENT, reason))
        self.escalate(inc, now, reason)

    def escalate(self, inc: IncidentState, now: datetime, reason: str) -> None:
        inc.escalated = True
        self._entry(inc, now, "escalated", reason)
        self._touch(inc, now)

    def acknowledge(self, incident_id: int, now: datetime, actor: str, reason: str) -> IncidentState | None:
        inc = self.incidents.get(incident_id)
        if inc is not None:
            self._out.entries.append(inc.transition(IncidentStatus.ACKNOWLEDGED, now, actor, reason))
            self._touch(inc, now)
        return inc

    def drain(self) -> Outcome:
        out, self._out = self._out, Outcome()
        return out

    def active(self) -> list[IncidentState]:
        return [i for i in self.incidents.values() if i.status.active]

    # ------------------------------------------------------------------ internals

    def _joinable(self, sig: Signal) -> IncidentState | None:
        best = None
        for inc in self.incidents.values():
            if not inc.status.active or inc.service != sig.service:
                continue
            related = sig.fingerprint in inc.signals or sig.at - inc.last_signal_at <= self.config.window
            if related and (best is None or inc.last_signal_at > best.last_signal_at):
                best = inc
        return best

    def _resolved_before(self, sig: Signal) -> IncidentState | None:
        """A resolved incident this signal belongs to but barely outlives: data from before the resolution
        arriving late, or the tail of a rate window still covering the fault (within `settle_period`),
        is evidence for the old incident, not a recurrence."""
        for inc in self.incidents.values():
            if (
                inc.status is IncidentStatus.RESOLVED
                and inc.resolved_at is not None
                and sig.fingerprint in inc.signals
                and sig.at <= inc.resolved_at + self.config.settle_period
            ):
                return inc
        return None

    def _reopenable(self, sig: Signal, now: datetime) -> IncidentState | None:
        for inc in self.incidents.values():
            if (
                inc.status is IncidentStatus.RESOLVED
                and inc.resolved_at is not None
                and sig.fingerprint in inc.signals
                and sig.at - inc.resolved_at <= self.config.reopen_window
            ):
                why = f"recurred {_fmt(sig.at - inc.resolved_at)} after resolution: {sig.describe()}"
                self._out.entries.append(inc.transition(IncidentStatus.OPEN, now, AGENT, why))
                return inc
        return None

    def _open(self, sig: Signal, now: datetime) -> IncidentState:
        a = self.policy.assess(self.services.tier(sig.service), [sig.severity])
        ack_due, resolve_due = self.policy.due(a.priority, now)
        inc = IncidentState(
            id=self.next_id,
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
            signals={sig.fingerprint: SignalState.first(sig)},
        )
        inc.title = _title(inc)
        self.next_id += 1
        self.incidents[inc.id] = inc
        self._out.opened.append(inc.id)
        self._out.new_signals.append((inc.id, sig))
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
        for other in self.active():
            if other.id == inc.id or now - other.updated_at > self.config.window:
                continue
            if other.service in deps and inc.parent_id is None:
                inc.parent_id = other.id
                self._entry(
                    inc,
                    now,
                    "correlated",
                    f"{inc.service} depends on {other.service}: likely part of #{other.id}",
                )
                self._entry(other, now, "correlated", f"dependent service {inc.service} affected: #{inc.id}")
                self._reassess(other, now)
                self._touch(other, now)
            elif other.service in dependents and other.parent_id is None:
                other.parent_id = inc.id
                self._entry(
                    other,
                    now,
                    "correlated",
                    f"{other.service} depends on {inc.service}: likely part of #{inc.id}",
                )
                self._entry(
                    inc, now, "correlated", f"dependent service {other.service} affected: #{other.id}"
                )
                self._reassess(inc, now)
                self._touch(other, now)

    def _reassess(self, inc: IncidentState, now: datetime) -> None:
        children = sum(1 for i in self.incidents.values() if i.parent_id == inc.id and i.status.active)
        a = self.policy.assess(
            self.services.tier(inc.service),
            [s.severity for s in inc.signals.values()],
            instances=inc.instances,
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
        if not inc.ack_breached and inc.status is IncidentStatus.OPEN and now > inc.ack_due_at:
            inc.ack_breached = True
            self._entry(
                inc,
                now,
                "sla_breach",
                f"{inc.priority} acknowledge target missed (due {inc.ack_due_at:%H:%M:%S})",
                {"target": "acknowledge"},
            )
            self._touch(inc, now)
        if not inc.resolve_breached and now > inc.resolve_due_at:
            inc.resolve_breached = True
            self._entry(
                inc,
                now,
                "sla_breach",
                f"{inc.priority} resolve target missed (due {inc.resolve_due_at:%H:%M:%S})",
                {"target": "resolve"},
            )
            self._touch(inc, now)

    def _resolve(self, inc: IncidentState, now: datetime, actor: str, reason: str) -> None:
        self._out.entries.append(inc.transition(IncidentStatus.RESOLVED, now, actor, reason))
        self._touch(inc, now)

    def _entry(
        self, inc: IncidentState, at: datetime, kind: str, reason: str, data: dict[str, object] | None = None
    ) -> None:
        self._out.entries.append(TimelineEntry(inc.id, at, kind, AGENT, reason, data or {}))

    def _touch(self, inc: IncidentState, now: datetime) -> None:
        inc.updated_at = max(inc.updated_at, now)
        self._out.touched[inc.id] = inc


def _title(inc: IncidentState, most: int = 3) -> str:
    """What is anomalous, most severe first (then in order of arrival): a log anomaly that opened the
    incident does not keep naming it once a critical metric signal has joined."""
    names: list[str] = []
    for s in sorted(inc.signals.values(), key=lambda s: (-s.severity.rank, s.first_at)):
        if s.name not in names:
            names.append(s.name)
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
