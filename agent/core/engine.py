"""The decision core: `Core.handle(event, now)` applies one event and returns what to record and do.

One owner (the shell's runtime, a replay, a test) feeds it events in order; it holds the working set
(detectors, log streams, active incidents, what it knows of changes) and touches nothing outside
itself. The store is the source of truth: `load` adopts what the store holds when the core starts
(a start, a takeover by a standby, a resync after an unclear commit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.config import Config
from agent.core.alerts import to_signals
from agent.core.correlation import Correlator
from agent.core.decisions import Audit, CancelChange, Decisions, NewChange, Notification
from agent.core.detection import DetectionStage
from agent.core.domain import Actor, ChangeStatus, ChangeType, IncidentStatus
from agent.core.events import (
    Acknowledge,
    AlertsReceived,
    ChangeDecided,
    ChangeProgress,
    Event,
    IncidentsStored,
    LogsRead,
    MetricsPolled,
    Tick,
)
from agent.core.incidents import Entry, IncidentState
from agent.core.ledger import ChangeLedger, Tracked
from agent.core.logs import LogStream
from agent.core.notifications import event_of, incident_payload
from agent.core.params import ParamError
from agent.core.priority import PriorityPolicy
from agent.core.problems import Recurrence
from agent.core.records import ChangeBase
from agent.core.rules import Plan, RuleEngine, Triggers, blocked_by_guards
from agent.core.topology import ServiceMap
from agent.errors import InvalidTransition

AGENT = Actor.AGENT.value
SERIES_IDLE = timedelta(hours=1)
_OPEN_OR_ACKED = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class WorkingSet:
    """What the store holds that the core needs to start: active and recently resolved incidents with
    their signals, the changes that matter to guards, recent openings per signature, source state."""

    incidents: list[IncidentState] = field(default_factory=list)
    changes: list[ChangeBase] = field(default_factory=list)
    openings: list[tuple[str, datetime, int]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


class Core:
    def __init__(self, config: Config):
        a = config.agent
        self.config = config
        self.services = ServiceMap(config.services)
        self.policy = PriorityPolicy(a.priority, a.correlation.breadth_instances)
        self.detection = DetectionStage(a.detectors, a.detection.threshold, self.services)
        self.queries = {q.name: q for q in a.queries}
        self.logs = {ls.name: LogStream(ls, self.services) for ls in a.log_sources}
        self.rules = RuleEngine(config.rules, config.catalog)
        self.horizon = max((r.guards.cooldown for r in config.rules), default=timedelta(0))
        self.resync(WorkingSet())

    # ------------------------------------------------------------------ start and commit

    def load(self, ws: WorkingSet) -> None:
        """Adopt the store's working set and the log streams' saved state (once, before any event)."""
        self.resync(ws)
        for name, stream in self.logs.items():
            stream.restore(
                {part: ws.sources.get(f"logs:{name}:{part}") for part in ("templates", "detector")}
            )

    def resync(self, ws: WorkingSet) -> None:
        """Replace what the core knows of incidents and changes with the store's working set (detector
        and log state are kept: the store holds no more than they do)."""
        a = self.config.agent
        self.correlator = Correlator(self.services, self.policy, a.correlation)
        self.ledger = ChangeLedger(self.horizon)
        self.recurrence = Recurrence(a.problems)
        self.triggers = Triggers(self.rules)
        self._skips: dict[tuple[int, str], str] = {}  # (incident ref, rule) -> kind of the last skip noted
        self._considered: dict[
            int, tuple[tuple[Any, ...], datetime]
        ] = {}  # ref -> (state, answer good until)
        self.correlator.adopt(ws.incidents)
        refs = {inc.id: inc.ref for inc in ws.incidents if inc.id is not None}
        self.ledger.load(ws.changes, refs)
        self.recurrence.load(ws.openings)
        for inc in ws.incidents:
            for sig in inc.signals.values():
                self.triggers.seen(inc, sig)

    def handle(self, event: Event, now: datetime) -> Decisions:
        out = Decisions(at=now)
        self.correlator.out = out
        _HANDLERS[type(event)](self, event, now, out)
        self._after(out, now)
        return out

    def committed(self, out: Decisions, problems: dict[str, int], cancelled: set[int]) -> None:
        """The store committed `out`: ids are set on its new records; learn what the store decided."""
        for inc in out.incidents.values():
            self.correlator.bound(inc)
        for new in out.changes:
            self.ledger.bound(new.tracked, new.id, new.incident.id)
        for change_id in cancelled:
            self.ledger.set_status(change_id, ChangeStatus.CANCELLED)
        for link in out.problems:
            problem_id = problems.get(link.signature)
            for held in link.incidents:
                if isinstance(held, IncidentState):
                    held.problem_id = problem_id

    # ------------------------------------------------------------------ events

    def _metrics(self, e: MetricsPolled, now: datetime, out: Decisions) -> None:
        query = self.queries[e.query]
        detected = self.detection.process(query, e.samples, e.history)
        out.samples += detected.samples
        out.onsets += detected.onsets
        for sig in detected.signals:
            out.signal_counts[("prometheus", sig.severity.value)] += 1
            self.correlator.observe(sig, now)
        for clear in detected.clears:
            self.correlator.clear(clear)
        if e.end is not None:
            out.state[f"prometheus:{e.query}"] = {"end": e.end}
        if detected.wants_history:
            out.wants_history.add(e.query)

    def _logs(self, e: LogsRead, now: datetime, out: Decisions) -> None:
        stream = self.logs[e.source]
        polled = stream.read(e.records, now)
        if polled is None:
            out.consumed = False
            return
        out.samples += polled.lines
        for sig in polled.signals:
            out.onsets.append(sig)
            out.signal_counts[("logs", sig.severity.value)] += 1
            self.correlator.observe(sig, now)
        for part, data in stream.saved(e.checkpoint, polled.new_templates > 0, now).items():
            out.state[f"logs:{e.source}:{part}"] = data

    def _alerts(self, e: AlertsReceived, now: datetime, out: Decisions) -> None:
        signals, clears = to_signals(e.alerts, self.services)
        counts = out.signal_counts
        for sig in signals:
            counts["alertmanager", sig.severity] += 1  # (a StrEnum is its value)
            self.correlator.observe(sig, now)
        for clear in clears:
            self.correlator.clear(clear)
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)

    def _progress(self, e: ChangeProgress, now: datetime, out: Decisions) -> None:
        """A remediation step: its timeline entry, and what it means for the incident (the incident is
        remediating before the run's first step is told; the last step is told before its outcome)."""
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)
        self.ledger.set_status(e.change_id, e.status)
        inc = self.correlator.by_id(e.incident_id)
        if inc is not None and e.outcome == "started":
            self.correlator.remediation_started(inc, e.at, e.summary)
        if e.reason:
            data = {"change_id": e.change_id, **e.data}
            out.entry(Entry(inc if inc is not None else e.incident_id, e.at, e.kind, AGENT, e.reason, data))
        if inc is not None and e.outcome == "verified":
            self.correlator.remediation_verified(inc, e.at, e.summary)
        elif inc is not None and e.outcome == "failed":
            self.correlator.remediation_failed(inc, e.at, e.summary)

    def _acknowledge(self, e: Acknowledge, now: datetime, out: Decisions) -> None:
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)
        inc = self.correlator.by_id(e.incident_id)
        if inc is None or not inc.status.active:
            return  # resolved meanwhile: the API told the person it was active a moment ago
        try:
            self.correlator.acknowledge(inc, now, e.actor, e.note)
        except InvalidTransition:
            return  # already acknowledged
        target = f"incident:{e.incident_id}"
        out.audit.append(Audit(now, e.actor, "incident.acknowledge", target, {"note": e.note}))

    def _decided(self, e: ChangeDecided, now: datetime, out: Decisions) -> None:
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)
        status = ChangeStatus.APPROVED if e.approved else ChangeStatus.REJECTED
        t = self.ledger.set_status(e.change_id, status)
        if e.approved and t is not None:
            out.run.append(e.change_id)

    def _tick(self, e: Tick, now: datetime, out: Decisions) -> None:
        for stream in self.logs.values():
            for clear in stream.tick(now):
                self.correlator.clear(clear)
        self.correlator.tick(now)
        self.detection.evict(now, SERIES_IDLE)
        self.ledger.prune(now)
        out.series = self.detection.counts()

    def _stored(self, e: IncidentsStored, now: datetime, out: Decisions) -> None:
        for ref in e.refs:
            inc = self.correlator.incidents.get(ref)
            if inc is not None and inc.status in _OPEN_OR_ACKED:
                self._consider(inc, now, out)

    # ------------------------------------------------------------------ after every event

    def _after(self, out: Decisions, now: datetime) -> None:
        for inc, sig in out.signals.values():
            self.triggers.seen(inc, sig)
        for inc in out.opened:
            link = self.recurrence.opened(inc, now)
            if link is not None:
                out.problems.append(link)
        for ref in out.forgotten:
            self.triggers.forget(ref)
            self._considered.pop(ref, None)
            self.ledger.forget_incident(ref)
        for inc in list(out.incidents.values()):
            if inc.status is IncidentStatus.RESOLVED:
                self._withdraw(inc, now, out)
                for key in [k for k in self._skips if k[0] == inc.ref]:
                    del self._skips[key]
            elif inc.status in _OPEN_OR_ACKED and inc.id is not None:
                self._consider(inc, now, out)
        for entry in out.timeline:
            event = event_of(entry)
            if event is not None and isinstance(entry.incident, IncidentState):
                out.notifications.append(Notification(event, _incident_payload(entry.incident, entry)))

    def _withdraw(self, inc: IncidentState, now: datetime, out: Decisions) -> None:
        t = self.ledger.open_change(inc.ref)
        if t is None or t.id is None or t.status is not ChangeStatus.AWAITING_APPROVAL:
            return
        why = f"change #{t.id} withdrawn: incident resolved"
        out.cancels.append(
            CancelChange(
                t.id,
                (ChangeStatus.AWAITING_APPROVAL,),
                "withdrawn: the incident resolved before anyone approved the change",
                Entry(inc, now, "change_cancelled", AGENT, why),
            )
        )

    def _consider(self, inc: IncidentState, now: datetime, out: Decisions) -> None:
        """The first rule (in file order) that applies and whose guards allow it makes a change.

        What rules decide depends on the incident's rules, priority, status and signals, on what the
        ledger knows of changes, and on time only through cooldowns: while none of these changed and
        no cooldown ended, the answer is the one already given (a storm of repeats costs nothing)."""
        rules = self.triggers.of(inc)
        state = (len(rules), inc.priority, inc.status, len(inc.signals), self.ledger.version(inc.service))
        seen = self._considered.get(inc.ref)
        if seen is not None and seen[0] == state and now < seen[1]:
            return
        retry = _NEVER
        if self.ledger.open_change(inc.ref) is not None:
            self._considered[inc.ref] = (state, retry)
            return
        for index in self.rules.applicable(rules, inc):
            rule = self.rules.rules[index]
            attempts = self.ledger.attempts(inc.ref, rule.name)
            last = self.ledger.last_change_at(rule.name, inc.service, now)
            blocked = blocked_by_guards(rule, attempts, last, now)
            if blocked is not None:
                if last is not None and attempts < rule.guards.max_attempts:
                    retry = min(retry, last + rule.guards.cooldown)
                self._note_skip(inc, rule.name, blocked, now, out)
                continue
            try:
                plan = self.rules.plan(rule, inc, rules[index])
            except ParamError as e:
                self._note_skip(inc, rule.name, f"parameters refused: {e}", now, out)
                continue
            self._create_change(inc, plan, attempts + 1, now, out)
            return
        self._considered[inc.ref] = (state, retry)

    def _note_skip(self, inc: IncidentState, rule: str, reason: str, now: datetime, out: Decisions) -> None:
        kind = reason.split(" ", 1)[0]
        if self._skips.get((inc.ref, rule)) == kind:
            return
        self._skips[(inc.ref, rule)] = kind
        out.entry(Entry(inc, now, "remediation_skipped", AGENT, f"rule {rule}: {reason}", {"rule": rule}))

    def _create_change(
        self, inc: IncidentState, plan: Plan, attempt: int, now: datetime, out: Decisions
    ) -> None:
        if self.config.dry_run:
            status = ChangeStatus.DRY_RUN
        elif plan.change_type is ChangeType.STANDARD:
            status = ChangeStatus.APPROVED
        else:
            status = ChangeStatus.AWAITING_APPROVAL
        approved = status is ChangeStatus.APPROVED
        rollback = self.config.playbook_path(plan.runbook.rollback) if plan.runbook.rollback else None
        record = ChangeBase(
            incident_id=inc.id or 0,
            rule=plan.rule.name,
            service=inc.service,
            runbook=plan.runbook_name,
            playbook=str(self.config.playbook_path(plan.runbook.playbook)),
            change_type=plan.change_type.value,
            risk=plan.runbook.risk,
            status=status,
            attempt=attempt,
            params=plan.shown_params,
            reason=f"rule {plan.rule.name} matched signal {plan.trigger.name} (priority {inc.priority})",
            created_at=now,
            decided_at=now if approved else None,
            decided_by="agent: standard change, pre-approved" if approved else "",
            verify_promql=plan.verify.promql,
            verify_deadline_s=plan.verify.deadline.total_seconds(),
            rollback_playbook=str(rollback) if rollback else "",
        )
        tracked = Tracked(None, inc.id, inc.ref, plan.rule.name, inc.service, status, now)
        self.ledger.add(tracked)
        note = {
            ChangeStatus.DRY_RUN: "dry-run: recorded, not executed",
            ChangeStatus.APPROVED: "standard change, pre-approved: running",
            ChangeStatus.AWAITING_APPROVAL: f"{plan.change_type} change: awaiting approval",
        }[status]
        new = NewChange(inc, record, tracked, note)
        out.changes.append(new)
        params = ", ".join(f"{k}={v!r}" for k, v in plan.shown_params.items())
        rule = plan.rule.name

        def created() -> str:
            approve = f" (aiops changes approve {new.id})" if status is ChangeStatus.AWAITING_APPROVAL else ""
            return f"change #{new.id}: {note}{approve}"

        matched = f"rule {rule} -> runbook {plan.runbook_name}({params})"
        new.entries += [
            Entry(inc, now, "rule_matched", AGENT, matched, {"rule": rule}),
            Entry(inc, now, "change_created", AGENT, created, {"change_id": lambda: new.id}),
        ]
        new.audit.append(
            Audit(
                now,
                AGENT,
                "change.create",
                lambda: f"change:{new.id}",
                {"status": status.value, "rule": rule},
            )
        )
        if status is ChangeStatus.AWAITING_APPROVAL:
            new.notifications.append(
                Notification(
                    "remediation",
                    lambda: {
                        "change_id": new.id,
                        "incident_id": inc.id,
                        "status": status.value,
                        "runbook": plan.runbook_name,
                        "service": inc.service,
                    },
                )
            )


_HANDLERS: dict[type, Callable[[Core, Any, datetime, Decisions], None]] = {
    MetricsPolled: Core._metrics,
    LogsRead: Core._logs,
    AlertsReceived: Core._alerts,
    ChangeProgress: Core._progress,
    Acknowledge: Core._acknowledge,
    ChangeDecided: Core._decided,
    Tick: Core._tick,
    IncidentsStored: Core._stored,
}


def _incident_payload(inc: IncidentState, entry: Entry) -> Callable[[], dict[str, Any]]:
    return lambda: incident_payload(inc, entry.at, entry.text())
