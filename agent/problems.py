"""Problem candidates: an incident signature that keeps coming back is probably one underlying problem."""

from __future__ import annotations

import logging
from datetime import datetime

from agent.config.models import ProblemConfig
from agent.incidents import IncidentState
from agent.store import Store
from agent.store.tables import Problem

log = logging.getLogger(__name__)


def check_recurrence(
    store: Store, config: ProblemConfig, inc: IncidentState, now: datetime
) -> tuple[Problem, set[int]] | None:
    """Create or update the candidate when `inc`'s signature recurred `recurrence_count` times in the window.

    Returns the problem and the ids of the incidents now linked to it (the caller updates its own copies).
    """
    recent = store.incidents.count_by_signature(inc.signature, now - config.recurrence_window)
    ids = {i.id for i in recent} | {inc.id}
    if len(ids) < config.recurrence_count:
        return None
    title = f"{inc.signature} recurring ({len(ids)}x in {config.recurrence_window})"
    problem, created = store.problems.record_recurrence(inc.signature, inc.service, title, ids, now)
    verb = "new problem candidate" if created else "problem candidate updated"
    log.info(
        "%s #%s: %s (incidents %s)", verb, problem.id, inc.signature, ", ".join(f"#{i}" for i in sorted(ids))
    )
    return problem, ids
