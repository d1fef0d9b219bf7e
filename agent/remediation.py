"""Executing approved changes: run the runbook off the scheduler thread, verify, roll back or escalate.

Every step is recorded as it happens. A change is claimed with an atomic status flip (approved ->
running), so it runs at most once even if several paths try to start it; a run interrupted by a crash
is marked as such on the next start and escalated, never silently re-run.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from agent.clock import Clock
from agent.config import Config
from agent.config.models import ParamValue
from agent.domain import Actor, ChangeStatus, TimelineEntry
from agent.metrics import AgentMetrics
from agent.params import render
from agent.store import Store
from agent.store.tables import Change, RunbookEvent
from agent.verification import Verifier
from integrations.ansible import AnsibleRunner, PlaybookRun, RunEvent, RunOutcome

log = logging.getLogger(__name__)
AGENT = Actor.AGENT.value
C = ChangeStatus


class Feedback(Protocol):
    """How the remediator tells the incident core what happened (implemented by the runtime)."""

    def remediation_started(self, change: Change, at: datetime) -> None: ...
    def remediation_verified(self, change: Change, at: datetime, detail: str) -> None: ...
    def remediation_failed(self, change: Change, at: datetime, reason: str) -> None: ...


class Remediator:
    def __init__(
        self,
        config: Config,
        store: Store,
        runner: AnsibleRunner,
        verifier: Verifier,
        feedback: Feedback,
        metrics: AgentMetrics,
        clock: Clock,
    ):
        self.config = config
        self.store = store
        self.runner = runner
        self.verifier = verifier
        self.feedback = feedback
        self.metrics = metrics
        self.clock = clock
        self._pool = ThreadPoolExecutor(
            config.agent.remediation.max_parallel, thread_name_prefix="aiops-remediation"
        )
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._cancel_at = float("inf")

    def submit(self, change_id: int) -> bool:
        """Queue an approved change for execution; False when it is already queued or we are stopping."""
        with self._lock:
            if self._stopping.is_set() or change_id in self._inflight:
                return False
            self._inflight.add(change_id)
        self._pool.submit(self._guarded, change_id)
        return True

    def shutdown(self, grace: timedelta) -> None:
        """Stop taking work; running playbooks get `grace` to finish, then are cancelled and recorded so."""
        self._stopping.set()
        self._cancel_at = time.monotonic() + grace.total_seconds()
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._inflight)

    def _cancelled(self) -> bool:
        return self._stopping.is_set() and time.monotonic() >= self._cancel_at

    def _guarded(self, change_id: int) -> None:
        try:
            self._execute(change_id)
        except Exception as e:
            log.exception("change #%d: unexpected error while remediating", change_id)
            change = self.store.changes.get(change_id)
            if not C(change.status).final and change.status != C.APPROVED:
                self._finish_failed(change, f"internal error: {type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._inflight.discard(change_id)

    def _execute(self, change_id: int) -> None:
        now = self.clock.now()
        if not self.store.changes.transition(change_id, [C.APPROVED], C.RUNNING, started_at=now):
            return
        change = self.store.changes.get(change_id)
        self.feedback.remediation_started(change, now)
        outcome = self._run(change, "remediation", Path(change.playbook))
        if not outcome.ok:
            self._finish_failed(change, _describe_failure(change.runbook, outcome))
            return
        self.store.changes.transition(change.number, [C.RUNNING], C.VERIFYING)
        self._timeline(
            change,
            "verification",
            f"checking `{change.verify_promql}` for up to {change.verify_deadline_s:g}s",
        )
        log.info("change #%d: verifying: %s", change.id, change.verify_promql)
        result = self.verifier.wait(
            change.verify_promql, timedelta(seconds=change.verify_deadline_s), self._cancelled
        )
        if not result.ok:
            self._finish_failed(change, f"verification failed: {result.detail}", verification=result.detail)
            return
        at = self.clock.now()
        self.store.changes.transition(
            change.number,
            [C.VERIFYING],
            C.SUCCEEDED,
            finished_at=at,
            verified_at=at,
            verification=result.detail,
            outcome="runbook succeeded and verification passed",
        )
        self.metrics.changes.labels(outcome=C.SUCCEEDED.value).inc()
        log.info("change #%d: verification passed: %s", change.id, result.detail)
        self._timeline(change, "verification", f"passed: {result.detail}", {"ok": True})
        self.feedback.remediation_verified(
            change, at, f"change #{change.id} ({change.runbook}) verified: {result.detail}"
        )

    def _run(self, change: Change, kind: str, playbook: Path) -> RunOutcome:
        started = self.clock.now()
        run_id = self.store.runs.start(change.number, kind, str(playbook), started)
        spec = PlaybookRun(
            playbook=playbook,
            params=self._real_params(change),
            timeout=self._timeout(change).total_seconds(),
            inventory=self._inventory(),
            secret_params=self._secret_names(change),
        )
        log.info("change #%d: %s runbook %s running (run #%d)", change.id, kind, change.runbook, run_id)
        self._timeline(
            change, f"{kind}_started", f"runbook {change.runbook} ({playbook.name}) started, run #{run_id}"
        )

        def on_event(e: RunEvent) -> None:
            self.store.runs.add_event(
                RunbookEvent(
                    run_id=run_id,
                    seq=e.seq,
                    kind=e.kind,
                    task=e.task,
                    host=e.host,
                    failed=e.failed,
                    changed=e.changed,
                    stdout=e.stdout,
                    at=datetime.fromtimestamp(e.at, UTC),
                )
            )
            if e.kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                state = "failed" if e.failed else ("changed" if e.changed else "ok")
                log.info("change #%d:   [%s] %s: %s", change.id, e.host, e.task, state)

        try:
            outcome = self.runner.run(spec, on_event=on_event, cancel=self._cancelled)
        except Exception as e:
            outcome = RunOutcome(
                status="failed", rc=-1, started=time.time(), finished=time.time(), stdout=str(e)
            )
        finished = self.clock.now()
        status = outcome.status
        self.store.runs.finish(run_id, status, outcome.rc, finished, outcome.stdout, outcome.failed_tasks)
        self.metrics.runbook_seconds.labels(runbook=change.runbook, status=status).observe(
            outcome.finished - outcome.started
        )
        took = (finished - started).total_seconds()
        log.info(
            "change #%d: %s runbook %s %s (rc %s) in %.1fs",
            change.id,
            kind,
            change.runbook,
            status,
            outcome.rc,
            took,
        )
        self._timeline(
            change,
            f"{kind}_finished",
            f"runbook {change.runbook} {status} (rc {outcome.rc}) in {took:.1f}s",
            {"run_id": run_id, "status": status, "rc": outcome.rc},
        )
        return outcome

    def _finish_failed(self, change: Change, reason: str, verification: str = "") -> None:
        status, note = C.FAILED, reason
        if change.rollback_playbook and not self._cancelled():
            rb = self._run(change, "rollback", Path(change.rollback_playbook))
            status = C.ROLLED_BACK if rb.ok else C.FAILED
            note += "; rolled back" if rb.ok else f"; rollback also failed ({rb.status}, rc {rb.rc})"
        at = self.clock.now()
        self.store.changes.transition(
            change.number,
            [C.RUNNING, C.VERIFYING],
            status,
            finished_at=at,
            outcome=note,
            verification=verification,
        )
        self.metrics.changes.labels(outcome=status.value).inc()
        log.warning("change #%d: %s: %s", change.id, status.value, note)
        self.feedback.remediation_failed(
            change, at, f"change #{change.id} ({change.runbook}) {status.value}: {note}"
        )

    def _timeline(
        self, change: Change, kind: str, reason: str, data: dict[str, object] | None = None
    ) -> None:
        entry = TimelineEntry(
            change.incident_id,
            self.clock.now(),
            kind,
            AGENT,
            reason,
            {"change_id": change.id, **(data or {})},
        )
        self.store.incidents.add_entries([entry])

    def _real_params(self, change: Change) -> dict[str, ParamValue]:
        """Stored params have secrets masked; secrets are re-read from config (they never touch the store)."""
        params: dict[str, ParamValue] = dict(change.params)
        spec = self.config.catalog.runbooks.get(change.runbook)
        rule = next((r for r in self.config.rules if r.name == change.rule), None)
        if spec is None:
            return params
        for name, p in spec.params.items():
            if p.secret:
                raw = rule.params.get(name) if rule else None
                value = raw if raw is not None else p.default
                if value is not None:
                    params[name] = render(value, {})
        return params

    def _secret_names(self, change: Change) -> frozenset[str]:
        spec = self.config.catalog.runbooks.get(change.runbook)
        return frozenset(n for n, p in spec.params.items() if p.secret) if spec else frozenset()

    def _timeout(self, change: Change) -> timedelta:
        spec = self.config.catalog.runbooks.get(change.runbook)
        return (
            spec.timeout if spec and spec.timeout else None
        ) or self.config.agent.remediation.default_timeout

    def _inventory(self) -> Path | None:
        inv = self.config.agent.remediation.inventory
        return (self.config.agent_file.parent / inv).resolve() if inv else None


def _describe_failure(runbook: str, outcome: RunOutcome) -> str:
    what = {"timeout": "timed out", "canceled": "was cancelled (agent shutting down)"}.get(
        outcome.status, f"failed (rc {outcome.rc})"
    )
    tasks = f" at task {', '.join(repr(t) for t in outcome.failed_tasks[:3])}" if outcome.failed_tasks else ""
    return f"runbook {runbook} {what}{tasks}"
