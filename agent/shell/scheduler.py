"""APScheduler wiring: one job per source at its own interval, coalescing, never overlapping itself."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


def build_scheduler(jobs: Sequence[tuple[str, timedelta, Callable[[], None]]]) -> BackgroundScheduler:
    """`jobs` are (id, interval, function). Every job starts at once; a job still running when its next
    turn comes makes that turn skip (logged), and missed turns coalesce instead of running in a burst."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(min(32, len(jobs) + 2))},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    now = datetime.now(UTC)
    for key, interval, job in jobs:
        seconds = interval.total_seconds()
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=key,
            name=key.replace(":", " ", 1),
            next_run_time=now,
            misfire_grace_time=max(1, int(seconds)),
        )
    scheduler.add_listener(_on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _on_job_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("job %s still running at its next turn; this turn is skipped", event.job_id)
    elif (exc := getattr(event, "exception", None)) is not None:
        log.error("job %s failed: %s", event.job_id, exc, exc_info=exc)
