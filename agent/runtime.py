"""The imperative shell around the pure core: polls sources, persists what the core decides, plans and
submits remediations, and feeds their results back. Every core call happens under one lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from agent.alerts import SOURCE as ALERTS_SOURCE
from agent.alerts import to_signals
from agent.clock import Clock
from agent.config import Config
from agent.config.models import LogSourceConfig, QueryConfig
from agent.correlation import Correlator, Outcome
from agent.detection import DetectionStage
from agent.domain import Actor, ChangeStatus, IncidentStatus, Signal, SignalClear, TimelineEntry
from agent.errors import NotFound
from agent.health import SourceHealth
from agent.incidents import IncidentState
from agent.logpipeline import LogPipeline
from agent.metrics import AgentMetrics
from agent.notifier import Notifier
from agent.params import ParamError
from agent.priority import PriorityPolicy
from agent.problems import check_recurrence
from agent.remediation import Remediator
from agent.rules import History, Plan, RuleEngine, blocked_by_guards
from agent.store import Store
from agent.store.tables import Change
from agent.topology import ServiceMap
from agent.verification import Verifier
from integrations.alertmanager import ExternalAlert
from integrations.ansible import AnsibleRunner
from integrations.errors import IntegrationError
from integrations.logs.records import LogSource
from integrations.prometheus import PrometheusClient, RangeCursor

log = logging.getLogger("aiops")
T = TypeVar("T")
AGENT = Actor.AGENT.value
SERIES_IDLE = timedelta(hours=1)


class Agent:
    def __init__(
        self,
        config: Config,
        store: Store,
        prometheus: PrometheusClient,
        runner: AnsibleRunner,
        notifier: Notifier,
        metrics: AgentMetrics,
        clock: Clock,
        health: SourceHealth | None = None,
        log_sources: list[tuple[LogSourceConfig, LogSource]] | None = None,
    ):
        a = config.agent
        self.config = config
        self.store = store
        self.prometheus = prometheus
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        self.health = health or SourceHealth()
        self.services = ServiceMap(config.services)
        policy = PriorityPolicy(a.priority, a.correlation.breadth_instances)
        self.correlator = Correlator(self.services, policy, a.correlation)
        self.detection = DetectionStage(a.detectors, a.detection.threshold, self.services)
        self.rules = RuleEngine(config.rules, config.catalog)
        verifier = Verifier(prometheus, a.remediation.verify_interval)
        self.remediator = Remediator(config, store, runner, verifier, self, metrics, clock)
        self.cursors = {
            q.name: RangeCursor(
                step=(q.step or a.prometheus.step).total_seconds(),
                delay=a.prometheus.delay.total_seconds(),
                max_backfill=a.prometheus.max_backfill.total_seconds(),
            )
            for q in a.queries
        }
        self.log_pipelines = [
            LogPipeline(cfg, source, config.state_dir, self.services) for cfg, source in log_sources or []
        ]
        self.lock = threading.RLock()
        self._skip_notes: dict[tuple[int, str], str] = {}

    # ------------------------------------------------------------------ start-up

    def recover(self) -> None:
        """Settle what a previous process left behind, then adopt its incidents. Call once, before polling."""
        now = self.clock.now()
        for run in self.store.runs.interrupt_running(now):
            log.warning("run #%s of change #%s was interrupted by an agent restart", run.id, run.change_id)
        interrupted = self.store.changes.with_status(ChangeStatus.RUNNING, ChangeStatus.VERIFYING)
        reason = (
            "interrupted: the agent stopped while this change was in progress; outcome unknown, not re-run"
        )
        for ch in interrupted:
            self.store.changes.transition(
                ch.number,
                [ChangeStatus.RUNNING, ChangeStatus.VERIFYING],
                ChangeStatus.FAILED,
                finished_at=now,
                outcome=reason,
            )
            self.metrics.changes.labels(outcome=ChangeStatus.FAILED.value).inc()
        self.correlator.next_id = self.store.incidents.max_id() + 1
        self.correlator.load(
            self.store.incidents.load_working_set(now - self.config.agent.correlation.reopen_window)
        )
        with self.lock:
            for ch in interrupted:
                self.correlator.remediation_failed(ch.incident_id, now, f"change #{ch.id} {reason}")
            self._commit(now)
        for ch in self.store.changes.with_status(ChangeStatus.APPROVED):
            self.remediator.submit(ch.number)
        active = len(self.correlator.active())
        log.info("recovered %d active incidents, %d interrupted changes", active, len(interrupted))

    # ------------------------------------------------------------------ scheduled jobs

    def poll_query(self, query: QueryConfig) -> None:
        """One poll of one query: fetch the window since the last successful poll, then judge it."""
        cursor = self.cursors[query.name]
        now = self.clock.now()
        window = cursor.window(now.timestamp())
        if window is None:
            return
        start, end, skipped = window
        source = f"prometheus:{query.name}"
        if skipped:
            log.warning("%s: %.0fs of history beyond max_backfill skipped (not judged)", source, skipped)
        batch = self._fetch(
            source, now, lambda: self.prometheus.query_range(query.promql, start, end, cursor.step)
        )
        if batch is None:
            return
        cursor.advance(end)
        with self.lock:
            t1 = time.perf_counter()
            detected = self.detection.process(query, batch)
            self.metrics.detector_seconds.labels(source=source).observe(time.perf_counter() - t1)
            self.metrics.samples.labels(source=source).inc(detected.samples)
            for sig in detected.onsets:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sig.labels.items()))
                log.info(
                    "anomaly detected: %s{%s} service=%s: %s", sig.name, labels, sig.service, sig.describe()
                )
            self._correlate("prometheus", detected.signals, detected.clears, self.clock.now())

    def poll_logs(self, pipeline: LogPipeline) -> None:
        """One poll of one log source: new lines mined and judged, signals correlated, then committed."""
        source = f"logs:{pipeline.name}"
        now = self.clock.now()
        polled = self._fetch(source, now, lambda: pipeline.poll(now), (IntegrationError, OSError))
        if polled is None:
            return
        result, batch = polled
        self.metrics.samples.labels(source=source).inc(result.lines)
        for sig in result.signals:
            log.info("log anomaly: %s on %s: %s", sig.name, sig.service, sig.details.get("template", ""))
        with self.lock:
            self._correlate("logs", result.signals, [], now)
        pipeline.commit(batch, result.new_templates)

    def _correlate(
        self, source: str, signals: list[Signal], clears: list[SignalClear], now: datetime
    ) -> None:
        """Signals and clears of one source into correlation, then the outcome recorded. Hold the lock."""
        for sig in signals:
            self.metrics.signals.labels(source=source, severity=sig.severity.value).inc()
            self.correlator.observe(sig, now)
        for clear in clears:
            self.correlator.clear(clear)
        self._commit(now)

    def _fetch(
        self,
        source: str,
        now: datetime,
        fetch: Callable[[], T],
        errors: tuple[type[Exception], ...] = (IntegrationError,),
    ) -> T | None:
        """One read of a source with its bookkeeping: poll counters and timing, and source health. A
        failure returns None: it is reported as the source being down, never judged as data."""
        self.metrics.polls.labels(source=source).inc()
        t0 = time.perf_counter()
        try:
            result = fetch()
        except errors as e:
            self.metrics.poll_errors.labels(source=source).inc()
            self.metrics.source_up.labels(source=source).set(0)
            self.health.failure(source, str(e))
            return None
        finally:
            self.metrics.poll_seconds.labels(source=source).observe(time.perf_counter() - t0)
        self.health.success(source, now)
        self.metrics.source_up.labels(source=source).set(1)
        return result

    def housekeeping(self) -> None:
        """Time-driven work: quiet-period resolution, SLA checks, approvals made elsewhere, gauges."""
        with self.lock:
            now = self.clock.now()
            for pipeline in self.log_pipelines:
                for clear in pipeline.tick(now):
                    self.correlator.clear(clear)
            self.correlator.tick(now)
            self._commit(now)
            self.detection.evict(now, SERIES_IDLE)
            warm, warming = self.detection.counts()
        self.metrics.series.labels(state="ready").set(warm)
        self.metrics.series.labels(state="warming").set(warming)
        for ch in self.store.changes.with_status(ChangeStatus.APPROVED):
            if self.remediator.submit(ch.number):
                log.info("change #%d approved by %s: queued", ch.id, ch.decided_by or "?")
        by_priority = self.store.incidents.count_active_by_priority()
        for p in ("P1", "P2", "P3", "P4"):
            self.metrics.open_incidents.labels(priority=p).set(by_priority.get(p, 0))

    # ------------------------------------------------------------------ feedback from the remediator

    def remediation_started(self, change: Change, at: datetime) -> None:
        with self.lock:
            self.correlator.remediation_started(
                change.incident_id, at, f"change #{change.id}: runbook {change.runbook} started"
            )
            self._commit(at)

    def remediation_verified(self, change: Change, at: datetime, detail: str) -> None:
        with self.lock:
            self.correlator.remediation_verified(change.incident_id, at, detail)
            self._commit(at)

    def remediation_failed(self, change: Change, at: datetime, reason: str) -> None:
        with self.lock:
            self.correlator.remediation_failed(change.incident_id, at, reason)
            self._commit(at)

    def receive_alerts(self, alerts: list[ExternalAlert], actor: str) -> tuple[int, int]:
        """Alerts pushed by Alertmanager join correlation like the agent's own signals; returns how
        many were firing and how many resolved."""
        signals, clears = to_signals(alerts, self.services)
        with self.lock:
            self._correlate(ALERTS_SOURCE, signals, clears, self.clock.now())
        log.info("alertmanager (%s): %d firing, %d resolved", actor, len(signals), len(clears))
        return len(signals), len(clears)

    def acknowledge(self, incident_id: int, actor: str, reason: str) -> IncidentState:
        """A human takes the incident (stops the acknowledge SLA clock); raises NotFound or InvalidTransition."""
        with self.lock:
            now = self.clock.now()
            inc = self.correlator.acknowledge(incident_id, now, actor, reason)
            if inc is None:
                raise NotFound(
                    f"incident {incident_id} is not active (only active incidents can be acknowledged)"
                )
            self._commit(now)
        self.store.audit.record(
            now, actor, "incident.acknowledge", f"incident:{incident_id}", {"note": reason}
        )
        return inc

    # ------------------------------------------------------------------ persistence and decisions

    def _commit(self, now: datetime) -> None:
        out = self.correlator.drain()
        if not out:
            return
        self.store.incidents.save(out.touched.values(), out.entries)
        self._report(out)
        for iid in out.opened:
            self._link_problem(out.touched[iid], now)
        for inc in out.touched.values():
            if inc.status is IncidentStatus.RESOLVED:
                self._withdraw_pending(inc, now)
                for key in [k for k in self._skip_notes if k[0] == inc.id]:
                    del self._skip_notes[key]
            elif inc.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
                self._consider_rules(inc, now)

    def _report(self, out: Outcome) -> None:
        for e in out.entries:
            inc = out.touched.get(e.incident_id) or self.correlator.incidents.get(e.incident_id)
            pri = inc.priority.value if inc else "?"
            log.info("incident #%d [%s] %s: %s", e.incident_id, pri, e.kind, e.reason)
            event = {"escalated": "escalation", "sla_breach": "sla_breach", "opened": "incident_opened"}.get(
                e.kind
            )
            if event and inc is not None:
                self.notifier.notify(event, _incident_payload(inc, e))

    def _link_problem(self, inc: IncidentState, now: datetime) -> None:
        found = check_recurrence(self.store, self.config.agent.problems, inc, now)
        if found is None:
            return
        problem, ids = found
        for iid in ids:
            if iid in self.correlator.incidents:
                self.correlator.incidents[iid].problem_id = problem.id
        self.store.incidents.add_entries(
            [
                TimelineEntry(
                    inc.id,
                    now,
                    "problem",
                    AGENT,
                    f"linked to problem candidate #{problem.id}: {problem.title}",
                )
            ]
        )

    def _withdraw_pending(self, inc: IncidentState, now: datetime) -> None:
        for ch in self.store.changes.pending_for_incident(inc.id):
            if self.store.changes.transition(
                ch.number,
                [ChangeStatus.AWAITING_APPROVAL],
                ChangeStatus.CANCELLED,
                finished_at=now,
                outcome="withdrawn: the incident resolved before anyone approved the change",
            ):
                self.store.incidents.add_entries(
                    [
                        TimelineEntry(
                            inc.id,
                            now,
                            "change_cancelled",
                            AGENT,
                            f"change #{ch.id} withdrawn: incident resolved",
                        )
                    ]
                )

    def _consider_rules(self, inc: IncidentState, now: datetime) -> None:
        if self.store.changes.pending_for_incident(inc.id):
            return
        for rule, trigger in self.rules.matches(inc):
            last = self.store.changes.last_for(rule.name, inc.service)
            history = History(
                pending=False,
                attempts=self.store.changes.attempts(inc.id, rule.name),
                last_change_at=last.created_at if last else None,
            )
            blocked = blocked_by_guards(rule, history, now)
            if blocked is not None:
                self._note_skip(inc, rule.name, blocked, now)
                continue
            try:
                plan = self.rules.plan(rule, inc, trigger)
            except ParamError as e:
                self._note_skip(inc, rule.name, f"parameters refused: {e}", now)
                continue
            self._create_change(inc, plan, history.attempts + 1, now)
            return

    def _note_skip(self, inc: IncidentState, rule: str, reason: str, now: datetime) -> None:
        kind = reason.split(" ", 1)[0]
        if self._skip_notes.get((inc.id, rule)) == kind:
            return
        self._skip_notes[(inc.id, rule)] = kind
        log.info("incident #%d: rule %s matched but not acting: %s", inc.id, rule, reason)
        self.store.incidents.add_entries(
            [
                TimelineEntry(
                    inc.id, now, "remediation_skipped", AGENT, f"rule {rule}: {reason}", {"rule": rule}
                )
            ]
        )

    def _create_change(self, inc: IncidentState, plan: Plan, attempt: int, now: datetime) -> None:
        dry = self.config.dry_run
        approved = plan.change_type.value == "standard"
        status = (
            ChangeStatus.DRY_RUN
            if dry
            else (ChangeStatus.APPROVED if approved else ChangeStatus.AWAITING_APPROVAL)
        )
        rollback = self.config.playbook_path(plan.runbook.rollback) if plan.runbook.rollback else None
        change = self.store.changes.create(
            Change(
                incident_id=inc.id,
                rule=plan.rule.name,
                service=inc.service,
                runbook=plan.runbook_name,
                playbook=str(self.config.playbook_path(plan.runbook.playbook)),
                change_type=plan.change_type.value,
                risk=plan.runbook.risk,
                status=status.value,
                attempt=attempt,
                params=plan.shown_params,
                reason=f"rule {plan.rule.name} matched signal {plan.trigger.name} (priority {inc.priority})",
                created_at=now,
                decided_at=now if status is ChangeStatus.APPROVED else None,
                decided_by="agent: standard change, pre-approved" if status is ChangeStatus.APPROVED else "",
                verify_promql=plan.verify.promql,
                verify_deadline_s=plan.verify.deadline.total_seconds(),
                rollback_playbook=str(rollback) if rollback else "",
            )
        )
        assert change.id is not None
        what = {
            ChangeStatus.DRY_RUN: "dry-run: recorded, not executed",
            ChangeStatus.APPROVED: "standard change, pre-approved: running",
            ChangeStatus.AWAITING_APPROVAL: f"{plan.change_type} change: awaiting approval (aiops changes approve {change.id})",
        }[status]
        params = ", ".join(f"{k}={v!r}" for k, v in plan.shown_params.items())
        self.store.incidents.add_entries(
            [
                TimelineEntry(
                    inc.id,
                    now,
                    "rule_matched",
                    AGENT,
                    f"rule {plan.rule.name} -> runbook {plan.runbook_name}({params})",
                    {"rule": plan.rule.name},
                ),
                TimelineEntry(
                    inc.id,
                    now,
                    "change_created",
                    AGENT,
                    f"change #{change.id}: {what}",
                    {"change_id": change.id},
                ),
            ]
        )
        self.store.audit.record(
            now,
            AGENT,
            "change.create",
            f"change:{change.id}",
            {"status": status.value, "rule": plan.rule.name},
        )
        log.info(
            "incident #%d: rule %s matched -> runbook %s(%s)",
            inc.id,
            plan.rule.name,
            plan.runbook_name,
            params,
        )
        log.info("change #%d created for incident #%d: %s", change.id, inc.id, what)
        self.metrics.changes.labels(outcome=status.value).inc()
        if status is ChangeStatus.APPROVED:
            self.remediator.submit(change.id)
        elif status is ChangeStatus.AWAITING_APPROVAL:
            self.notifier.notify(
                "remediation",
                {
                    "change_id": change.id,
                    "incident_id": inc.id,
                    "status": status.value,
                    "runbook": plan.runbook_name,
                    "service": inc.service,
                },
            )


def _incident_payload(inc: IncidentState, entry: TimelineEntry) -> dict[str, Any]:
    return {
        "incident_id": inc.id,
        "title": inc.title,
        "service": inc.service,
        "priority": inc.priority.value,
        "status": inc.status.value,
        "reason": entry.reason,
        "at": entry.at.isoformat(),
        "opened_at": inc.opened_at.isoformat(),
        "signals": [
            {
                "name": s.name,
                "labels": dict(s.labels),
                "value": s.last_value,
                "expected": s.last_expected,
                "score": s.peak_score,
            }
            for s in inc.signals.values()
        ],
    }
