"""What the problem manager does, shared by `aiops problems|known-errors` and the API so both validate
and answer alike: promote a candidate, record root cause and workaround, read the known errors.

The writes go to the store directly (see agent/shell/store/known_errors.py for why that is safe); the
leader's core learns a new known error on its next housekeeping tick.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.core.known_errors import WORKAROUND_RUNBOOK
from agent.shell import views
from agent.shell.store import Store
from agent.shell.store.tables import Problem

Line = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


class PromoteRequest(BaseModel):
    """A candidate becomes a problem that `owner` takes on; `title` replaces the generated one."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Line
    title: str | None = Field(default=None, min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


class UpdateRequest(BaseModel):
    """What is known of a problem; fields left out stay as they are. A workaround makes it a known error
    (it can be changed, not removed); an empty `workaround_runbook` removes the runbook."""

    model_config = ConfigDict(extra="forbid")

    root_cause: str | None = Field(default=None, max_length=20_000, pattern=r"^[^\x00]*$")
    workaround: str | None = Field(default=None, min_length=1, max_length=20_000, pattern=r"^[^\x00]*$")
    workaround_runbook: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @model_validator(mode="after")
    def _something(self) -> UpdateRequest:
        if self.root_cause is None and self.workaround is None and self.workaround_runbook is None:
            raise ValueError("give a root cause, a workaround or a workaround runbook")
        return self


def promote(store: Store, problem_id: int, req: PromoteRequest, actor: str, now: datetime) -> Problem:
    """Raises NotFound (no such problem) or InvalidTransition (not a candidate)."""
    return store.known_errors.promote(problem_id, req.owner.strip(), (req.title or "").strip(), actor, now)


def update(
    store: Store,
    problem_id: int,
    req: UpdateRequest,
    actor: str,
    now: datetime,
    runbooks: Collection[str] | None,
) -> Problem:
    """Raises ValueError (a runbook the catalog does not have, a runbook without a workaround),
    NotFound or InvalidTransition (a candidate not yet promoted)."""
    runbook = req.workaround_runbook
    if runbook and runbooks is not None and runbook not in runbooks:
        known = ", ".join(sorted(runbooks)) or "none"
        raise ValueError(
            f"unknown workaround runbook {runbook!r}: not in the runbook catalog (it has: {known})"
        )
    if runbook == WORKAROUND_RUNBOOK:
        raise ValueError(f"{WORKAROUND_RUNBOOK!r} names the workaround itself; give a catalog runbook")
    return store.known_errors.record(problem_id, req.root_cause, req.workaround, runbook, actor, now)


def known_error_detail(store: Store, known_error_id: int) -> dict[str, Any]:
    """A known error with its problem and the incidents linked to it when they opened."""
    row = store.known_errors.get(known_error_id)
    return {
        **views.known_error_view(row),
        "incidents": [views.incident_summary(i) for i in store.incidents.of_known_error(known_error_id)],
    }
