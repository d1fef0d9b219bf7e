"""Problem candidates: an incident signature that keeps coming back is probably one underlying problem."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from agent.config.models import ProblemConfig
from agent.core.decisions import ProblemLink
from agent.core.incidents import IncidentState


class Opening(NamedTuple):
    """An incident's opening, as the store knows it: what problem candidates are counted from."""

    signature: str
    service: str
    at: datetime
    id: int


class Recurrence:
    """The incidents opened per signature within `recurrence_window`, kept in memory (loaded from the
    store at start, as ids), so an opening costs a deque append, not a query."""

    def __init__(self, config: ProblemConfig):
        self.config = config
        self._opened: dict[str, deque[tuple[datetime, IncidentState | int]]] = {}

    def load(self, openings: Iterable[Opening]) -> None:
        """Incidents opened within the window (or before: they are let go at the next opening)."""
        for o in sorted(openings, key=lambda o: (o.at, o.id)):
            self._opened.setdefault(o.signature, deque()).append((o.at, o.id))

    def opened(self, inc: IncidentState, now: datetime) -> ProblemLink | None:
        """Record an opening; a link when the signature recurred `recurrence_count` times in the window."""
        seen = self._opened.setdefault(inc.signature, deque())
        seen.append((inc.opened_at, inc))
        since = now - self.config.recurrence_window
        while seen and seen[0][0] < since:
            seen.popleft()
        if len(seen) < self.config.recurrence_count:
            return None
        title = f"{inc.signature} recurring ({len(seen)}x in {self.config.recurrence_window})"
        return ProblemLink(inc.signature, inc.service, title, tuple(i for _, i in seen), now, inc)
