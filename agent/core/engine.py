"""The decision core: `Core.handle(event, now)` applies one event and returns what to record and do.

One owner (the shell's runtime, a replay, a test) feeds it events in order; it holds the working set
(detectors, log streams, active incidents, what it knows of changes) and touches nothing outside
itself. The store is the source of truth: `load` adopts what the store holds when the core starts
(a start, a takeover by a standby, a resync after an unclear commit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agent.config import Config
from agent.core.alerts import to_signals
from agent.core.cooccurrence import Cooccurrence
from agent.core.correlation import Correlator
from agent.core.decisions import Audit, CancelChange, Closure, Decisions, NewChange, Notification
from agent.core.detection import DetectionStage
from agent.core.domain import Actor, ChangeKind, ChangeStatus, ChangeType, IncidentStatus, Priority, Review
from agent.core.envelope import Envelope, Silence, Switch, breaker_open, paused
from agent.core.events import (
    Acknowledge,
    AlertsReceived,
    ChangeDecided,
    ChangeProgress,
    ChangeRequested,
    CloseIncident,
    Event,
    IncidentsStored,
    LogsRead,
    MetricsPolled,
    Tick,
)
from agent.core.flapping import FlapDetector
from agent.core.holds import NEVER, Holds
from agent.core.incidents import Entry, IncidentState, SignalState
from agent.core.known_errors import WORKAROUND_RUNBOOK, KnownError, KnownErrors
from agent.core.ledger import FAILED, ChangeLedger, Tracked
from agent.core.logs import LogStream
from agent.core.notifications import event_of, incident_payload
from agent.core.params import ParamError
from agent.core.priority import PriorityPolicy
from agent.core.problems import Opening, Recurrence
from agent.core.records import ChangeBase
from agent.core.rules import Plan, RuleEngine, Triggers, blocked_by_guards
from agent.core.topology import ServiceMap
from agent.durations import format_duration as _fmt
from agent.errors import InvalidTransition

AGENT = Actor.AGENT.value
SERIES_IDLE = timedelta(hours=1)
_OPEN_OR_ACKED = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


@dataclass
class WorkingSet:
    """What the store holds that the core needs to start: active and recently resolved incidents with
    their signals, the changes that matter to guards, recent openings per signature, source state."""

    incidents: list[IncidentState] = field(default_factory=list)
    changes: list[ChangeBase] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    silences: list[Silence] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    known_errors: list[KnownError] = field(default_factory=list)


class Core:
    def __init__(self, config: Config):
        a = config.agent
        self.config = config
        self.services = ServiceMap(config.services)
        self.policy = PriorityPolicy(a.priority, a.correlation.breadth_instances)
        self.detection = DetectionStage(
            a.detectors,
            a.detection.threshold,
            self.services,
            a.detection.false_alarm_budget,
            a.detection.joint,
        )
        self.queries = {q.name: q for q in a.queries}
        self.logs = {ls.name: LogStream(ls, self.services) for ls in a.log_sources}
        self.rules = RuleEngine(config.rules, config.catalog)
        r = a.remediation
        self.horizon = max(  # the longest any guard looks back (a breaker: failures of changes begun before)
            [rule.guards.cooldown for rule in config.rules]
            + [rule.guards.rate_limit.per for rule in config.rules if rule.guards.rate_limit]
            + [b.per for b in r.budgets]
            + [2 * r.circuit_breaker.within],
        )
        self.envelope = Envelope({s.name: s.maintenance for s in config.services.services if s.maintenance})
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
        self.cooccurrence = Cooccurrence(a.problems)
        self.known = KnownErrors(ws.known_errors)
        self.triggers = Triggers(self.rules)
        self._skips: dict[tuple[int, str], str] = {}  # (incident ref, rule) -> kind of the last skip noted
        self._considered: dict[
            int, tuple[tuple[Any, ...], datetime]
        ] = {}  # ref -> (state, answer good until)
        self._held: dict[tuple[int, str], str] = {}  # (incident ref, rule) -> why it was last held back
        self._reconsider = False  # a hold may have ended: every active incident is considered again
        self._inhibiting: set[int] = set()  # refs of active incidents that hold their dependents back
        self._again: dict[int, IncidentState] = {}  # incidents to consider again after this event
        self.flaps = FlapDetector(a.correlation.flapping)
        self.holds = Holds(
            self.config, self.ledger, self.envelope, self.flaps, self.services, self.correlator.active_of
        )
        self.envelope.update(ws.silences, ws.switches)
        self.correlator.adopt(ws.incidents)
        refs = {inc.id: inc.ref for inc in ws.incidents if inc.id is not None}
        self.ledger.load(ws.changes, refs)
        self.recurrence.load(ws.openings)
        self.cooccurrence.load(ws.openings)
        for inc in ws.incidents:
            for sig in inc.signals.values():
                self.triggers.seen(inc, sig)
            self.flaps.adopt(inc)
            if inc.status.active and self.holds.inhibits(inc):
                self._inhibiting.add(inc.ref)

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
        for inc in out.opened:
            self.cooccurrence.bound(inc)
        for new in out.changes:
            self.ledger.bound(new.tracked, new.id, new.incident_id)
        for change_id in cancelled:
            self.ledger.set_status(change_id, ChangeStatus.CANCELLED)
        for link in out.problems:
            if link.kind != "recurrence":  # an incident's problem is its own signature's
                continue
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
        t = self.ledger.set_status(e.change_id, e.status, e.at)
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
        if t is not None and e.status in FAILED:
            self._breaker_check(t, inc if inc is not None else e.incident_id, e.at, out)

    def _breaker_check(self, t: Tracked, inc: IncidentState | int, at: datetime, out: Decisions) -> None:
        """The failure of `t` may open its runbook's circuit breaker on its service: said once, in the
        timeline, the audit log and to the escalation sinks, since the agent stops acting there."""
        config = self.config.agent.remediation.circuit_breaker
        failures = self.ledger.failures(t.runbook, t.service)
        switches = self.envelope.switches
        now_open = breaker_open(failures, switches, t.service, t.runbook, config, at)
        before = breaker_open([f for f in failures if f < at], switches, t.service, t.runbook, config, at)
        if now_open is None or before is not None:
            return
        data = {"change_id": t.id, "runbook": t.runbook, "service": t.service}
        out.entry(Entry(inc, at, "circuit_breaker_opened", AGENT, now_open, data))
        target = f"runbook:{t.runbook}@{t.service}"
        out.audit.append(Audit(at, AGENT, "circuit_breaker.open", target, {"reason": now_open}))

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

    def _requested(self, e: ChangeRequested, now: datetime, out: Decisions) -> None:
        """A person asked to retry or roll back a change: a new change linked to it, approved by that
        person (the operator role allows it), unless it may not run now; a refusal is in the timeline."""
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)
        o = e.origin
        inc = self.correlator.by_id(o.incident_id)
        target: IncidentState | int = inc if inc is not None else o.incident_id
        why = self._refusal(e, inc)
        if why:
            text = f"{e.kind} of change #{e.origin_id} refused: {why}"
            out.entry(Entry(target, now, "change_request_refused", e.actor, text, {"change_id": e.origin_id}))
            refused = {"refused": why, "note": e.note}
            out.audit.append(Audit(now, e.actor, f"change.{e.kind}", f"change:{e.origin_id}", refused))
            return
        rollback = e.kind is ChangeKind.ROLLBACK
        status = ChangeStatus.DRY_RUN if self.config.dry_run else ChangeStatus.APPROVED
        approved = status is ChangeStatus.APPROVED
        record = ChangeBase.model_validate(
            {
                **o.model_dump(),
                "status": status,
                "kind": e.kind,
                "origin_id": e.origin_id,
                "attempt": o.attempt if rollback else o.attempt + 1,
                "reason": f"{e.kind} of change #{e.origin_id} requested by {e.actor}",
                "created_at": now,
                "decided_at": now if approved else None,
                "decided_by": e.actor if approved else "",
                "decision_note": e.note,
                "playbook": o.rollback_playbook if rollback else o.playbook,
                "rollback_playbook": "" if rollback else o.rollback_playbook,
                "verify_promql": ""
                if rollback
                else o.verify_promql,  # a rollback restores; nothing to verify
                "verify_deadline_s": 0.0 if rollback else o.verify_deadline_s,
                **_UNRUN,
            }
        )
        ref = inc.ref if inc is not None else None
        tracked = Tracked(None, o.incident_id, ref, o.rule, o.service, status, now, o.runbook)
        self.ledger.add(tracked)
        note = f"{e.kind} of change #{e.origin_id}: " + (
            "running" if approved else "dry-run: recorded, not executed"
        )
        new = NewChange(target, record, tracked, note)
        out.changes.append(new)
        said = f"{e.kind} of change #{e.origin_id} requested" + (f": {e.note}" if e.note else "")
        new.entries.append(
            Entry(
                target,
                now,
                "change_created",
                e.actor,
                lambda: f"change #{new.id}: {said}",
                {"change_id": lambda: new.id},
            )
        )
        new.audit.append(
            Audit(
                now,
                e.actor,
                f"change.{e.kind}",
                lambda: f"change:{new.id}",
                {"origin": e.origin_id, "note": e.note},
            )
        )

    def _refusal(self, e: ChangeRequested, inc: IncidentState | None) -> str:
        o = e.origin
        if e.kind is ChangeKind.RETRY and (inc is None or not inc.status.active):
            return f"incident #{o.incident_id} is no longer active"
        if inc is not None:
            t = self.ledger.open_change(inc.ref)
            if t is not None:
                return f"change #{t.id} is still open for this incident"
        pause = paused(self.envelope.switches, o.service)
        if pause is not None:
            return f"automation is paused by {pause.actor} ({pause.reason}); resume it first"
        if e.kind is ChangeKind.ROLLBACK and not o.rollback_playbook:
            return f"runbook {o.runbook} has no rollback playbook"
        if e.kind is ChangeKind.ROLLBACK and o.kind is ChangeKind.ROLLBACK:
            return "a rollback is not rolled back; retry the change it rolled back instead"
        return ""

    def _close(self, e: CloseIncident, now: datetime, out: Decisions) -> None:
        """A person closes a resolved incident; those of a priority that needs a post-incident review
        only with one. The store closes it only if it is still resolved when this is committed."""
        if e.inbox_id is not None:
            out.inbox.append(e.inbox_id)
        inc = self.correlator.by_id(e.incident_id)
        target: IncidentState | int = inc if inc is not None else e.incident_id
        priority = inc.priority if inc is not None else e.priority
        why = ""
        if inc is not None and inc.status is not IncidentStatus.RESOLVED:
            why = f"incident #{e.incident_id} is {inc.status}; only a resolved incident is closed"
        elif e.review is None and priority in self.config.agent.incidents.review_required:
            why = f"{priority} incidents need a post-incident review before they are closed"
        if why:
            out.entry(Entry(target, now, "close_refused", e.actor, why))
            out.audit.append(
                Audit(now, e.actor, "incident.close", f"incident:{e.incident_id}", {"refused": why})
            )
            return
        said = "closed" + (" with a post-incident review" if e.review is not None else "")
        entry = Entry(e.incident_id, now, "closed", e.actor, said)
        audit = Audit(
            now, e.actor, "incident.close", f"incident:{e.incident_id}", {"review": e.review is not None}
        )
        out.closes.append(Closure(e.incident_id, entry, audit, e.review))
        if inc is not None:
            self.correlator.out = out
            self.correlator.close(inc, now, e.actor)

    def _tick(self, e: Tick, now: datetime, out: Decisions) -> None:
        changed = e.silences is not None and self.envelope.update(e.silences, e.switches or ())
        if changed:
            self._reconsider = True
            self._considered.clear()
        if changed or self.envelope.any_muting():  # the last silence ending unmutes too
            for inc in self.correlator.active():
                for state in list(inc.signals.values()):
                    self._mute(inc, state, now, out)
        for stream in self.logs.values():
            for clear in stream.tick(now):
                self.correlator.clear(clear)
        if e.known_errors is not None:
            self.known.update(e.known_errors)
        self.correlator.tick(now)
        for inc in self.correlator.active():
            if inc.flapping:
                self._flap(inc, now, out)
        self.detection.evict(now, SERIES_IDLE)
        self.ledger.prune(now)
        self.cooccurrence.prune(now)
        out.series = self.detection.counts()
        out.alarms = self.detection.alarm_rate()

    def _stored(self, e: IncidentsStored, now: datetime, out: Decisions) -> None:
        for ref in e.refs:
            inc = self.correlator.incidents.get(ref)
            if inc is not None and inc.status in _OPEN_OR_ACKED:
                self._consider(inc, now, out)

    # ------------------------------------------------------------------ after every event

    def _after(self, out: Decisions, now: datetime) -> None:
        muting = self.envelope.any_muting()
        for inc, sig in list(out.signals.values()):
            if muting and inc.status.active:
                self._mute(inc, sig, now, out)
            if self.triggers.seen(inc, sig):  # a rule that waits for more signals may act now
                self._considered.pop(inc.ref, None)
            self.flaps.seen(inc, sig)
        for inc in list(out.incidents.values()):
            self._flap(inc, now, out)
            self._inhibition(inc)
        for inc in out.opened:
            known = self.known.link(inc, now)
            if known is not None:
                out.entry(known)
            link = self.recurrence.opened(inc, now)
            if link is not None:
                out.problems.append(link)
            out.problems += [pair.link(now, inc) for pair in self.cooccurrence.opened(inc, now)]
        for ref in out.forgotten:
            self.triggers.forget(ref)
            self.flaps.forget(ref)
            self._considered.pop(ref, None)
            self.ledger.forget_incident(ref)
        considered = list(out.incidents.values())
        if self._reconsider:  # a resume, an expired silence: what was held back may act now
            self._reconsider = False
            self._again = {i.ref: i for i in self.correlator.active()}
        considered += [i for ref, i in self._again.items() if ref not in out.incidents and i.status.active]
        self._again = {}
        for inc in considered:
            if inc.status is IncidentStatus.RESOLVED:
                self._withdraw(inc, now, out)
                for key in [k for k in self._skips if k[0] == inc.ref]:
                    del self._skips[key]
            elif inc.status in _OPEN_OR_ACKED and inc.id is not None:
                self._consider(inc, now, out)
        for entry in out.timeline:
            event = event_of(entry)
            if event is not None and isinstance(entry.incident, IncidentState) and not _muted(entry.incident):
                payload = _incident_payload(entry.incident, entry, self.known)
                out.notifications.append(Notification(event, payload))

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
        retry = NEVER
        if self.ledger.open_change(inc.ref) is not None:
            self._considered[inc.ref] = (state, retry)
            return
        for index in self.rules.applicable(rules, inc):
            rule = self.rules.rules[index]
            trigger = rules[index] if not rules[index].muted else self._unmuted_trigger(index, inc)
            if trigger is None:
                self._note_held(inc, rule.name, f"its signals are muted: {rules[index].muted}", now, out)
                continue
            if rule.require is not None:
                arrived = self.triggers.count_since(inc.ref, index, now - rule.require.within)
                if arrived < rule.require.count:
                    need = (
                        f"waits for {rule.require.count} matching signals within {_fmt(rule.require.within)}"
                    )
                    self._note_held(inc, rule.name, need, now, out)
                    continue
            attempts = self.ledger.attempts(inc.ref, rule.name)
            last = self.ledger.last_change_at(rule.name, inc.service, now)
            blocked = blocked_by_guards(rule, attempts, last, now)
            if blocked is not None:
                if last is not None and attempts < rule.guards.max_attempts:
                    retry = min(retry, last + rule.guards.cooldown)
                self._note_skip(inc, rule.name, blocked, now, out)
                continue
            runbook, missing = self._runbook(rule.runbook, inc)
            if missing:
                self._note_skip(inc, rule.name, missing, now, out)
                continue
            held, until = self.holds.reason(inc, rule, runbook, now)
            if held:
                retry = min(retry, until)
                self._note_held(inc, rule.name, held, now, out)
                continue
            try:
                plan = self.rules.plan(rule, inc, trigger, runbook)
            except ParamError as e:
                self._note_skip(inc, rule.name, f"parameters refused: {e}", now, out)
                continue
            self._held.pop((inc.ref, rule.name), None)
            self._create_change(inc, plan, attempts + 1, now, out)
            return
        self._considered[inc.ref] = (state, retry)

    def _runbook(self, name: str, inc: IncidentState) -> tuple[str, str]:
        """The catalog runbook a rule naming runbook `name` runs on `inc`, or why there is none: the
        rule's own, or for `known_error_workaround` the workaround runbook of the incident's known error."""
        if name != WORKAROUND_RUNBOOK:
            return name, ""
        known = self.known.get(inc.known_error_id)
        if known is None:
            return "", "no workaround runbook: the incident matches no known error"
        if not known.workaround_runbook:
            return "", f"no workaround runbook: known error #{known.id} has no workaround runbook"
        if known.workaround_runbook not in self.config.catalog.runbooks:
            return "", (
                f"no workaround runbook: known error #{known.id} names runbook {known.workaround_runbook!r}, "
                "which the catalog does not have"
            )
        return known.workaround_runbook, ""

    def _unmuted_trigger(self, index: int, inc: IncidentState) -> SignalState | None:
        """The newest signal of `inc` that rule `index` matches and that is not muted (the newest one is)."""
        candidates = [
            s for s in inc.signals.values() if not s.muted and index in self.rules.matching(inc.service, s)
        ]
        return max(candidates, key=lambda s: s.last_at, default=None)

    def _flap(self, inc: IncidentState, now: datetime, out: Decisions) -> None:
        """Mark `inc` flapping, or settled, as its signals' recent transitions say."""
        flapping = self.flaps.flapping(inc, now) and inc.status.active
        if flapping == inc.flapping:
            return
        inc.flapping = flapping
        out.incident(inc)
        self._considered.pop(inc.ref, None)
        if flapping:
            out.entry(Entry(inc, now, "flapping", AGENT, f"{self.flaps.describe()}: automation holds"))
        else:
            out.entry(Entry(inc, now, "flapping_ended", AGENT, "signals settled: automation may act again"))

    def _inhibition(self, inc: IncidentState) -> None:
        """An urgent incident upstream started or stopped holding its dependents: look at them again."""
        inhibits = self.holds.inhibits(inc) and inc.status.active
        if inhibits == (inc.ref in self._inhibiting):
            return
        (self._inhibiting.add if inhibits else self._inhibiting.discard)(inc.ref)
        for service in self.services.dependents(inc.service):
            for other in self.correlator.active_of(service):
                self._considered.pop(other.ref, None)
                self._again[other.ref] = other

    def _note_held(self, inc: IncidentState, rule: str, reason: str, now: datetime, out: Decisions) -> None:
        """A rule would act but the envelope holds it back: said once per reason in the timeline."""
        if self._held.get((inc.ref, rule)) == reason:
            return
        self._held[(inc.ref, rule)] = reason
        out.entry(
            Entry(inc, now, "remediation_held", AGENT, f"rule {rule} held back: {reason}", {"rule": rule})
        )

    def _mute(self, inc: IncidentState, state: SignalState, now: datetime, out: Decisions) -> None:
        """Mark `state` muted or not as silences and maintenance windows say now; changes go in the
        timeline, and the incident's rules are considered again."""
        reason = self.envelope.muted(inc.service, state.name, state.labels, now)
        if reason == state.muted:
            return
        state.muted = reason
        out.signal(inc, state)
        out.incident(inc)
        self._considered.pop(inc.ref, None)
        if reason:
            out.entry(
                Entry(
                    inc, now, "signal_muted", AGENT, f"{state.name} muted by {reason}", {"signal": state.name}
                )
            )
        else:
            out.entry(
                Entry(
                    inc, now, "signal_unmuted", AGENT, f"{state.name} no longer muted", {"signal": state.name}
                )
            )

    def _note_skip(self, inc: IncidentState, rule: str, reason: str, now: datetime, out: Decisions) -> None:
        kind = reason.split(" ", 1)[0]
        if self._skips.get((inc.ref, rule)) == kind:
            return
        self._skips[(inc.ref, rule)] = kind
        out.entry(Entry(inc, now, "remediation_skipped", AGENT, f"rule {rule}: {reason}", {"rule": rule}))

    def _create_change(
        self, inc: IncidentState, plan: Plan, attempt: int, now: datetime, out: Decisions
    ) -> None:
        emergency = plan.change_type is ChangeType.EMERGENCY and inc.priority is Priority.P1
        if self.config.dry_run:
            status = ChangeStatus.DRY_RUN
        elif plan.change_type is ChangeType.STANDARD or emergency:
            status = ChangeStatus.APPROVED
        else:
            status = ChangeStatus.AWAITING_APPROVAL
        approved = status is ChangeStatus.APPROVED
        decided_by = (
            "agent: emergency change for a P1 incident, retrospective review due"
            if emergency
            else "agent: standard change, pre-approved"
        )
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
            decided_by=decided_by if approved else "",
            review=Review.PENDING if emergency and approved else Review.NONE,
            verify_promql=plan.verify.promql,
            verify_deadline_s=plan.verify.deadline.total_seconds(),
            rollback_playbook=str(rollback) if rollback else "",
        )
        tracked = Tracked(None, inc.id, inc.ref, plan.rule.name, inc.service, status, now, plan.runbook_name)
        self.ledger.add(tracked)
        note = {
            ChangeStatus.DRY_RUN: "dry-run: recorded, not executed",
            ChangeStatus.APPROVED: "emergency change for a P1 incident: running now, review it afterwards"
            if emergency
            else "standard change, pre-approved: running",
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


# What a retry or rollback does not inherit from the change it is of: everything about running it.
_UNRUN = {
    "started_at": None,
    "finished_at": None,
    "verified_at": None,
    "verification": "",
    "outcome": "",
    "epoch": None,
    "review": Review.NONE,
    "reviewed_by": "",
    "reviewed_at": None,
    "review_note": "",
}

_HANDLERS: dict[type, Callable[[Core, Any, datetime, Decisions], None]] = {
    MetricsPolled: Core._metrics,
    LogsRead: Core._logs,
    AlertsReceived: Core._alerts,
    ChangeProgress: Core._progress,
    Acknowledge: Core._acknowledge,
    ChangeDecided: Core._decided,
    ChangeRequested: Core._requested,
    CloseIncident: Core._close,
    Tick: Core._tick,
    IncidentsStored: Core._stored,
}


def _muted(inc: IncidentState) -> bool:
    """Every signal of the incident is muted: nobody is told about it."""
    return bool(inc.signals) and all(s.muted for s in inc.signals.values())


def _incident_payload(inc: IncidentState, entry: Entry, known: KnownErrors) -> Callable[[], dict[str, Any]]:
    return lambda: incident_payload(inc, entry.at, entry.text(), known.get(inc.known_error_id))
