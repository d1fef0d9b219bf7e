"""APScheduler wiring: one job per source at its own interval, coalescing, never overlapping itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

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

    def poll_every(interval: timedelta, job: Callable[[Any], None], arg: Any, key: str) -> None:
        seconds = interval.total_seconds()
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            args=[arg],
            id=key,
            name=key.replace(":", " ", 1),
            next_run_time=now,
            misfire_grace_time=max(1, int(seconds)),
        )

    for q in a.queries:
        poll_every(q.interval or a.prometheus.poll_interval, agent.poll_query, q, f"poll:{q.name}")
    for pipeline in agent.log_pipelines:
        poll_every(pipeline.config.interval, agent.poll_logs, pipeline, f"logs:{pipeline.name}")
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
