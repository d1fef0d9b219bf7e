"""A replay: the history of a window fed through the same core, runtime and store code as `aiops run`,
on a simulated clock and a throwaway store, with remediation planned and verified, never executed.

Dry-run is ignored (nothing runs anyway): a replay shows what the agent would do with automation on.
A change the rules would run is "started" where it was created, and its verification is evaluated
against the history that follows: it passes at the first moment the condition held in the past, or
fails at its deadline. Changes that need a person's approval stay awaiting it.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.clock import ManualClock
from agent.config import Config
from agent.core.decisions import Decisions
from agent.core.domain import ChangeStatus
from agent.core.engine import Core, WorkingSet
from agent.core.events import ChangeProgress
from agent.shell.leadership import LeaseLock
from agent.shell.replay.history import History
from agent.shell.runtime import Runtime
from agent.shell.store import Store
from agent.shell.store.tables import Change
from integrations.errors import IntegrationError
from integrations.prometheus import PrometheusClient

log = logging.getLogger(__name__)
C = ChangeStatus
Progress = Callable[[float, int], None]  # (share of the window replayed, incidents so far)


@dataclass(frozen=True)
class Replayed:
    """A finished replay: its store (open, for the report), and how long it took."""

    store: Store
    wall_seconds: float
    events: int


class Replay:
    def __init__(self, config: Config, client: PrometheusClient, history: History, workdir: Path):
        self.config = dataclasses.replace(config, agent=config.agent.model_copy(update={"dry_run": False}))
        self.client = client
        self.history = history
        self.workdir = workdir
        self._scheduled: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def run(self, progress: Progress | None = None) -> Replayed:
        began = time.perf_counter()
        since, until = self.history.since, self.history.until
        self.clock = ManualClock(_dt(since))
        self.store = Store.open(f"sqlite:///{self.workdir / 'replay.db'}")
        fence = LeaseLock(
            self.store.engine, timedelta(minutes=1), self.clock, "replay", exclusive=True
        ).try_acquire()
        assert fence is not None  # a fresh store of our own
        self.fence = fence
        core = Core(self.config)
        core.load(WorkingSet())
        self.runtime = Runtime(
            core, self.store.committer({}, fence), self.clock, self._effects, self.store.inbox, inline=True
        )
        events = 0
        reported = since
        for chunk in self.history.events():
            for timed in chunk:
                self._run_scheduled(timed.at)
                self.clock.set(_dt(timed.at))
                self.runtime.submit(timed.event).result()
                events += 1
                if progress is not None and timed.at - reported >= (until - since) / 20:
                    reported = timed.at
                    progress((timed.at - since) / max(until - since, 1e-9), len(core.correlator.incidents))
        self._run_scheduled(until)
        return Replayed(self.store, time.perf_counter() - began, events)

    # ------------------------------------------------------------------ remediation, simulated

    def _effects(self, out: Decisions) -> None:
        for new in out.changes:
            if new.id is not None and new.status is C.APPROVED:
                self._plan_run(new.id)
        for change_id in out.run:
            self._plan_run(change_id)

    def _plan_run(self, change_id: int) -> None:
        change = self.store.changes.get(change_id)
        at = change.created_at.timestamp()
        verified = self._verified_at(change)
        deadline = at + change.verify_deadline_s
        self._schedule(at, lambda: self._start(change))
        self._schedule(verified if verified is not None else deadline, lambda: self._finish(change, verified))

    def _verified_at(self, change: Change) -> float | None:
        """The first moment within the deadline the verification condition held in the history."""
        start = change.created_at.timestamp()
        step = self.config.agent.remediation.verify_interval.total_seconds()
        try:
            answer = self.client.query_range(
                change.verify_promql, start, start + change.verify_deadline_s, step
            )
        except IntegrationError as e:
            log.warning(
                "change #%s: verification `%s` could not be evaluated on history: %s",
                change.id,
                change.verify_promql,
                e,
            )
            return None
        return float(answer.ts.min()) if len(answer.ts) else None  # as live: any series means it holds

    def _start(self, change: Change) -> None:
        at = self.clock.now()
        progress = ChangeProgress(
            change.number,
            change.incident_id,
            "remediation_started",
            at,
            f"replay: runbook {change.runbook} would run here (not run)",
            C.RUNNING,
            "started",
            f"change #{change.id}: runbook {change.runbook} started (replay)",
        )
        if self.store.changes.transition(
            change.number, [C.APPROVED], C.RUNNING, self.fence, progress, started_at=at
        ):
            self.runtime.wake()

    def _finish(self, change: Change, verified: float | None) -> None:
        at = self.clock.now()
        if verified is not None:
            detail = f"condition held in the history at {_dt(verified).isoformat()}"
            status, outcome, kind, reason = C.SUCCEEDED, "verified", "verification", f"passed: {detail}"
            summary = f"change #{change.id} ({change.runbook}) verified: {detail}"
        else:
            detail = f"condition never held in the history within {change.verify_deadline_s:g}s"
            status, outcome, kind, reason = C.FAILED, "failed", "verification", f"failed: {detail}"
            summary = f"change #{change.id} ({change.runbook}) failed: {detail}"
        progress = ChangeProgress(
            change.number, change.incident_id, kind, at, reason, status, outcome, summary
        )
        fields = {"finished_at": at, "verification": detail, "outcome": f"replay: {detail}"}
        if self.store.changes.transition(change.number, [C.RUNNING], status, self.fence, progress, **fields):
            self.runtime.wake()

    def _schedule(self, at: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._scheduled, (at, self._seq, action))
        self._seq += 1

    def _run_scheduled(self, until: float) -> None:
        while self._scheduled and self._scheduled[0][0] <= until:
            at, _, action = heapq.heappop(self._scheduled)
            self.clock.set(_dt(max(at, self.clock.now().timestamp())))
            action()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
