"""What runs while this agent leads: the core and its owner, the pollers and their schedule, the
remediation executor and the notifier, all bound to one lease epoch (their writes carry its fence).

Built from the store when leadership is won (start, restart, takeover), stopped when it is lost or
the agent stops; a standby runs none of it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from agent.core.decisions import Decisions
from agent.core.engine import Core, WorkingSet
from agent.core.events import Tick
from agent.durations import format_duration as _fmt
from agent.shell.executor import Executor
from agent.shell.logsources import build_source, legacy_state
from agent.shell.notifier import Notifier, build_sinks, routes
from agent.shell.polling import LogPoller, MetricPoller, Reader
from agent.shell.runtime import Runtime, Stopped
from agent.shell.scheduler import build_scheduler
from agent.shell.store.fence import Fence, Fenced
from agent.shell.verification import Verifier
from integrations.actions import ACTIONS
from integrations.logs.records import LogSource

if TYPE_CHECKING:
    from agent.shell.app import AgentApp

log = logging.getLogger("aiops")


class Leader:
    def __init__(self, app: AgentApp, fence: Fence, inline: bool = False):
        config = self.config = app.config
        a = config.agent
        self.app = app
        self.fence = fence
        self.store = app.store
        self.clock = app.clock
        self.metrics = app.metrics
        self.sources: list[LogSource] = []
        self.core = Core(config)
        ws = self._working_set()
        self.core.load(ws)
        self.runtime = Runtime(
            self.core,
            self.store.committer(routes(a.notifications), fence),
            self.clock,
            self._effects,
            inbox=self.store.inbox,
            resync=self._working_set,
            inline=inline,
            on_lost=app.lost,
            on_commit_error=lambda failures: self.metrics.store_write_failures.inc(),
        )
        data_dir = Path(a.remediation.data_dir) if a.remediation.data_dir else None
        self.executor = Executor(
            config,
            self.store,
            {name: make(data_dir) for name, make in ACTIONS.items()},
            Verifier(app.prometheus, a.remediation.verify_interval),
            fence,
            self.metrics,
            self.clock,
            self.runtime.wake,
        )
        self.notifier = Notifier(
            build_sinks(a.notifications, a.api.external_url),
            self.store.outbox,
            fence,
            self.clock,
            self.metrics,
            incidents=self.store.incidents.working_set,
            known_errors=self.store.known_errors.current,
        )
        reader = Reader(app.health, self.metrics, self.clock)
        try:
            self.metric_pollers = [
                MetricPoller(q, config, app.prometheus, self.runtime, reader, _saved_end(ws, q.name))
                for q in a.queries
            ]
            base = config.agent_file.parent
            for ls in a.log_sources:
                self.sources.append(build_source(ls, base, ws.sources.get(f"logs:{ls.name}:position")))
            self.log_pollers = [
                LogPoller(cfg, src, self.runtime, reader)
                for cfg, src in zip(a.log_sources, self.sources, strict=True)
            ]
        except BaseException:
            self._close_sources()
            raise
        self.scheduler: BackgroundScheduler | None = None
        if not inline:
            jobs: list[tuple[str, timedelta, Callable[[], None]]] = [
                (f"poll:{p.query.name}", p.query.interval or a.prometheus.poll_interval, _quiet(p.poll))
                for p in self.metric_pollers
            ]
            jobs += [(f"logs:{p.config.name}", p.config.interval, _quiet(p.poll)) for p in self.log_pollers]
            jobs.append(("housekeeping", a.housekeeping_interval, _quiet(self.housekeeping)))
            self.scheduler = build_scheduler(jobs)

    def _working_set(self) -> WorkingSet:
        """The store's working set; log state an older agent kept in files is imported on first use."""
        a = self.config.agent
        saved = self.store.sources.all()
        for ls in a.log_sources:
            if f"logs:{ls.name}:position" not in saved:
                for name, data in legacy_state(
                    ls, self.config.state_dir, self.config.agent_file.parent
                ).items():
                    self.store.sources.put(name, data, self.clock.now())
                    log.info("log source %s: %s imported from %s", ls.name, name, self.config.state_dir)
        return self.store.working_set(
            self.clock.now(), a.correlation.reopen_window, self.core.horizon, a.problems.lookback
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.runtime.start()
        self.notifier.start()
        lost = self.executor.take_over()
        self.runtime.wake()
        if self.scheduler is not None:
            self.scheduler.start()
        active = len(self.core.correlator.active())
        log.info(
            "leading (epoch %d): %d active incidents adopted, %d interrupted changes escalated",
            self.fence.epoch,
            active,
            lost,
        )

    def stop(self) -> None:
        """Stop polling, let running remediations finish or cancel them after the grace period, apply
        what they reported, then stop the core's owner and the notifier."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.executor.shutdown(self.config.agent.remediation.shutdown_grace)
        self.runtime.wake()
        self.runtime.stop(self.config.agent.remediation.shutdown_grace.total_seconds())
        self.notifier.stop()
        self._close_sources()

    def _close_sources(self) -> None:
        for source in self.sources:
            source.close()

    @property
    def running(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    # ------------------------------------------------------------------ jobs

    def housekeeping(self) -> None:
        """Time-driven work: the core's tick (quiet periods, SLA, log buckets, idle series), the inbox
        (input any replica or the CLI put there), the silences, kill switch and known errors people
        set, and the incident gauges."""
        now = self.clock.now()
        tick = Tick(
            tuple(self.store.silences.current(now)),
            tuple(self.store.switches.current()),
            tuple(self.store.known_errors.current()),
        )
        self.runtime.submit(tick).result()
        ends = self.config.agent.incidents
        if ends.auto_close is not None:
            why = f"closed: resolved more than {_fmt(ends.auto_close)} ago"
            closed = self.store.closing.auto_close(
                now, now - ends.auto_close, ends.review_required, self.fence, why
            )
            if closed:
                log.info("incidents closed (incidents.auto_close): %s", ", ".join(f"#{i}" for i in closed))
        self.runtime.wake()
        by_priority = self.store.incidents.count_active_by_priority()
        for p in ("P1", "P2", "P3", "P4"):
            self.metrics.open_incidents.labels(priority=p).set(by_priority.get(p, 0))

    # ------------------------------------------------------------------ after every commit

    def _effects(self, out: Decisions) -> None:
        m = self.metrics
        for sig in out.onsets:
            if sig.source == "logs":
                log.info("log anomaly: %s on %s: %s", sig.name, sig.service, sig.details.get("template", ""))
            else:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sig.labels.items()))
                log.info(
                    "anomaly detected: %s{%s} service=%s: %s", sig.name, labels, sig.service, sig.describe()
                )
        for (source, severity), n in out.signal_counts.items():
            m.signals.labels(source=source, severity=severity).inc(n)
        created = [e for new in out.changes if new.id is not None for e in new.entries]
        for entry in out.timeline + created:
            inc = entry.incident
            where = f"#{inc}" if isinstance(inc, int) else f"{inc.number} [{inc.priority}]"
            log.info("incident %s %s: %s", where, entry.kind, entry.text())
        for new in out.changes:
            if new.id is None:
                log.warning(
                    "incident #%s: the store refused a second open change for rule %s",
                    new.incident_id,
                    new.record.rule,
                )
                continue
            log.info("change #%d created for incident #%s: %s", new.id, new.incident_id, new.note)
            m.changes.labels(outcome=new.status.value).inc()
            if new.status.value == "approved":
                self.executor.submit(new.id)
        for change_id in out.run:
            if self.executor.submit(change_id):
                log.info("change #%d approved: queued", change_id)
        if out.notifications:
            self.notifier.wake()
        if out.series is not None:
            m.series.labels(state="ready").set(out.series[0])
            m.series.labels(state="warming").set(out.series[1])
        if out.alarms is not None:
            alarms, days = out.alarms
            m.series_days.set(days)
            m.alarm_rate.set(alarms / days if days > 0 else 0.0)


def _saved_end(ws: WorkingSet, query: str) -> float | None:
    saved: dict[str, Any] = ws.sources.get(f"prometheus:{query}", {})
    end = saved.get("end")
    return float(end) if isinstance(end, int | float) else None


def _quiet(job: Callable[[], None]) -> Callable[[], None]:
    """A job that stops quietly when leadership ends under it (its work is re-done by the next leader)."""

    def run() -> None:
        with contextlib.suppress(Stopped, Fenced):
            job()

    return run
