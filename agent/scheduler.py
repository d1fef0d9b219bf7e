"""APScheduler wiring: one job per source at its own interval, coalescing, never overlapping itself."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from agent.config import Config
from agent.runtime import Agent

log = logging.getLogger(__name__)


def build_scheduler(agent: Agent, config: Config) -> BackgroundScheduler:
    """Polls start at once; a poll still running when its next turn comes makes that turn skip (logged),
    and missed turns are coalesced into one instead of replayed in a burst."""
    a = config.agent
    workers = min(32, len(a.queries) + len(a.log_sources) + 2)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(workers)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    now = datetime.now(UTC)
    for q in a.queries:
        interval = (q.interval or a.prometheus.poll_interval).total_seconds()
        scheduler.add_job(
            agent.poll_query,
            "interval",
            seconds=interval,
            args=[q],
            id=f"poll:{q.name}",
            name=f"poll {q.name}",
            next_run_time=now,
            misfire_grace_time=max(1, int(interval)),
        )
    for pipeline in agent.log_pipelines:
        interval = pipeline.config.interval.total_seconds()
        scheduler.add_job(
            agent.poll_logs,
            "interval",
            seconds=interval,
            args=[pipeline],
            id=f"logs:{pipeline.name}",
            name=f"logs {pipeline.name}",
            next_run_time=now,
            misfire_grace_time=max(1, int(interval)),
        )
    scheduler.add_job(
        agent.housekeeping,
        "interval",
        seconds=a.housekeeping_interval.total_seconds(),
        id="housekeeping",
        name="housekeeping",
        next_run_time=now,
    )
    scheduler.add_listener(_on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _on_job_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("job %s still running at its next turn; this turn is skipped", event.job_id)
    elif (exc := getattr(event, "exception", None)) is not None:
        log.error("job %s failed: %s", event.job_id, exc, exc_info=exc)
