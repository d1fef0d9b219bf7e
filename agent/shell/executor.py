"""Executing approved changes: run the runbook's action off the core's thread, verify, roll back or escalate.

A change is claimed with an atomic, fenced status move (approved -> running, stamped with the leader's
epoch), so it runs at most once whoever tries to start it and however many replicas there are. Every
step is recorded as it happens and told to the core through the store's inbox in the same transaction,
so the incident follows the change even if the agent stops between two steps. A run a lost leader left
behind is recorded as interrupted and escalated by the next leader, never re-run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.clock import Clock
from agent.config import Config
from agent.config.models import ParamValue
from agent.core.domain import ChangeKind, ChangeStatus
from agent.core.events import ChangeProgress
from agent.core.params import render
from agent.shell.metrics import AgentMetrics
from agent.shell.store import Store
from agent.shell.store.fence import Fence, Fenced
from agent.shell.store.tables import Change, RunbookEvent
from agent.shell.verification import Verifier
from integrations.actions import Action
from integrations.ansible import PlaybookRun, RunEvent, RunOutcome

log = logging.getLogger(__name__)
C = ChangeStatus
INTERRUPTED = "interrupted: the agent running this change was lost mid-change; outcome unknown, not re-run"


class Executor:
    def __init__(
        self,
        config: Config,
        store: Store,
        actions: Mapping[str, Action],
        verifier: Verifier,
        fence: Fence,
        metrics: AgentMetrics,
        clock: Clock,
        wake: Callable[[], None],
    ):
        self.config = config
        self.store = store
        self.actions = actions
        self.verifier = verifier
        self.fence = fence
        self.metrics = metrics
        self.clock = clock
        self.wake = wake
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

    def take_over(self) -> int:
        """On becoming leader: record the changes a lost leader left running as interrupted (and escalate
        them through the inbox), and queue the approved ones nobody claimed yet."""
        now = self.clock.now()
        lost = 0
        for ch in self.store.changes.with_status(C.RUNNING, C.VERIFYING):
            if ch.epoch == self.fence.epoch:
                continue
            progress = self._progress(ch, "", "", C.FAILED, "failed", f"change #{ch.id} {INTERRUPTED}")
            if self.store.changes.abandon(ch.number, self.fence, now, INTERRUPTED, progress):
                lost += 1
                self.metrics.changes.labels(outcome=C.FAILED.value).inc()
                log.warning(
                    "change #%s was interrupted when its agent was lost: escalated, not re-run", ch.id
                )
        for ch in self.store.changes.with_status(C.APPROVED):
            self.submit(ch.number)
        if lost:
            self.wake()
        return lost

    # ------------------------------------------------------------------ one change

    def _cancelled(self) -> bool:
        return self._stopping.is_set() and time.monotonic() >= self._cancel_at

    def _guarded(self, change_id: int) -> None:
        try:
            self._execute(change_id)
        except Fenced:
            log.warning(
                "change #%d: this agent lost the lease mid-change; the new leader records it", change_id
            )
        except Exception as e:
            log.exception("change #%d: unexpected error while remediating", change_id)
            change = self.store.changes.get(change_id)
            if change.status in (C.RUNNING, C.VERIFYING):
                self._finish_failed(change, f"internal error: {type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._inflight.discard(change_id)
            self.wake()

    def _execute(self, change_id: int) -> None:
        change = self.store.changes.get(change_id)
        playbook = Path(change.playbook)

        restoring = change.kind == ChangeKind.ROLLBACK  # puts back what a change did: it fixes nothing

        def started(run_id: int) -> ChangeProgress:
            return self._progress(
                change,
                "remediation_started",
                f"runbook {change.runbook} ({playbook.name}) started, run #{run_id}",
                C.RUNNING,
                "" if restoring else "started",
                f"change #{change.id}: runbook {change.runbook} started",
                {"run_id": run_id},
            )

        run_id = self.store.changes.claim(change_id, self.fence, self.clock.now(), str(playbook), started)
        if run_id is None:
            return
        self.wake()
        log.info("change #%d: remediation runbook %s running (run #%d)", change.id, change.runbook, run_id)
        outcome = self._run(change, "remediation", playbook, run_id, C.RUNNING)
        if not outcome.ok:
            self._finish_failed(change, _describe_failure(change.runbook, outcome))
            return
        if restoring:
            self._finish_rollback(change)
            return
        checking = f"checking `{change.verify_promql}` for up to {change.verify_deadline_s:g}s"
        self.store.changes.transition(
            change.number,
            [C.RUNNING],
            C.VERIFYING,
            fence=self.fence,
            progress=self._progress(change, "verification", checking, C.VERIFYING),
        )
        self.wake()
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
            fence=self.fence,
            progress=self._progress(
                change,
                "verification",
                f"passed: {result.detail}",
                C.SUCCEEDED,
                "verified",
                f"change #{change.id} ({change.runbook}) verified: {result.detail}",
                {"ok": True},
                at,
            ),
            finished_at=at,
            verified_at=at,
            verification=result.detail,
            outcome="runbook succeeded and verification passed",
        )
        self.metrics.changes.labels(outcome=C.SUCCEEDED.value).inc()
        log.info("change #%d: verification passed: %s", change.id, result.detail)

    def _finish_rollback(self, change: Change) -> None:
        """A requested rollback's playbook succeeded: that is its outcome (there is nothing to verify,
        and the incident is not moved: undoing a change does not fix what it was for)."""
        at = self.clock.now()
        done = f"rollback playbook of change #{change.origin_id} succeeded"
        self.store.changes.transition(
            change.number,
            [C.RUNNING],
            C.SUCCEEDED,
            fence=self.fence,
            progress=self._progress(change, "rollback_finished", done, C.SUCCEEDED, at=at),
            finished_at=at,
            outcome=done,
        )
        self.metrics.changes.labels(outcome=C.SUCCEEDED.value).inc()
        log.info("change #%d: %s", change.id, done)

    def _run(
        self, change: Change, kind: str, playbook: Path, run_id: int, status: ChangeStatus
    ) -> RunOutcome:
        """Run one playbook (the run row exists), streaming its events into the store as they come."""
        started = self.clock.now()
        spec = PlaybookRun(
            playbook=playbook,
            params=self._real_params(change),
            timeout=self._timeout(change).total_seconds(),
            inventory=self._inventory(),
            secret_params=self._secret_names(change),
            pass_env=self._pass_env(change),
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
                ),
                fence=self.fence,
            )
            if e.kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                state = "failed" if e.failed else ("changed" if e.changed else "ok")
                log.info("change #%d:   [%s] %s: %s", change.id, e.host, e.task, state)

        action = self.actions[self._action(change)]
        try:
            outcome = action.run(spec, on_event=on_event, cancel=self._cancelled)
        except Fenced:
            raise
        except Exception as e:
            outcome = RunOutcome(
                status="failed", rc=-1, started=time.time(), finished=time.time(), stdout=str(e)
            )
        finished = self.clock.now()
        took = (finished - started).total_seconds()
        self.store.runs.finish(
            run_id,
            outcome.status,
            outcome.rc,
            finished,
            outcome.stdout,
            outcome.failed_tasks,
            fence=self.fence,
            progress=self._progress(
                change,
                f"{kind}_finished",
                f"runbook {change.runbook} {outcome.status} (rc {outcome.rc}) in {took:.1f}s",
                status,
                data={"run_id": run_id, "status": outcome.status, "rc": outcome.rc},
                at=finished,
            ),
        )
        self.wake()
        self.metrics.runbook_seconds.labels(runbook=change.runbook, status=outcome.status).observe(
            outcome.finished - outcome.started
        )
        log.info(
            "change #%d: %s runbook %s %s (rc %s) in %.1fs",
            change.id,
            kind,
            change.runbook,
            outcome.status,
            outcome.rc,
            took,
        )
        return outcome

    def _finish_failed(self, change: Change, reason: str, verification: str = "") -> None:
        status, note = C.FAILED, reason
        if change.rollback_playbook and not self._cancelled():
            playbook = Path(change.rollback_playbook)

            def started(run_id: int) -> ChangeProgress:
                what = f"runbook {change.runbook} ({playbook.name}) started, run #{run_id}"
                return self._progress(change, "rollback_started", what, C.RUNNING, data={"run_id": run_id})

            run_id = self.store.runs.start(
                change.number, "rollback", str(playbook), self.clock.now(), self.fence, started
            )
            rb = self._run(change, "rollback", playbook, run_id, C.RUNNING)
            status = C.ROLLED_BACK if rb.ok else C.FAILED
            note += "; rolled back" if rb.ok else f"; rollback also failed ({rb.status}, rc {rb.rc})"
        at = self.clock.now()
        summary = f"change #{change.id} ({change.runbook}) {status.value}: {note}"
        self.store.changes.transition(
            change.number,
            [C.RUNNING, C.VERIFYING],
            status,
            fence=self.fence,
            progress=self._progress(change, "", "", status, "failed", summary, at=at),
            finished_at=at,
            outcome=note,
            verification=verification,
        )
        self.metrics.changes.labels(outcome=status.value).inc()
        log.warning("change #%d: %s: %s", change.id, status.value, note)

    def _progress(
        self,
        change: Change,
        kind: str,
        reason: str,
        status: ChangeStatus,
        outcome: str = "",
        summary: str = "",
        data: dict[str, object] | None = None,
        at: datetime | None = None,
    ) -> ChangeProgress:
        return ChangeProgress(
            change_id=change.number,
            incident_id=change.incident_id,
            kind=kind,
            at=at or self.clock.now(),
            reason=reason,
            status=status,
            outcome=outcome,
            summary=summary,
            data=data or {},
        )

    # ------------------------------------------------------------------ what the catalog says

    def _action(self, change: Change) -> str:
        spec = self.config.catalog.runbooks.get(change.runbook)
        return spec.action if spec else "ansible"

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

    def _pass_env(self, change: Change) -> tuple[str, ...]:
        spec = self.config.catalog.runbooks.get(change.runbook)
        return tuple(spec.env) if spec else ()

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
