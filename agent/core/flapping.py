"""Flapping: an incident whose signals keep going active and clear. Each such transition of one of its
signals is counted; more than `transitions` within `within` mark the incident flapping, and it settles
once the window holds no more than that. A runbook cannot fix what comes and goes by itself, and running
it on every swing is how automation makes an outage worse, so automation holds while it flaps."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from agent.config.models import Flapping
from agent.core.incidents import IncidentState, SignalState
from agent.durations import format_duration


class FlapDetector:
    def __init__(self, config: Flapping):
        self.config = config
        self._active: dict[int, dict[str, bool]] = {}  # ref -> fingerprint -> active when last seen
        self._swings: dict[int, deque[datetime]] = {}  # ref -> times of recent transitions

    def seen(self, inc: IncidentState, sig: SignalState) -> None:
        """`sig` was touched: a change of its active state is one transition."""
        known = self._active.setdefault(inc.ref, {})
        was = known.get(sig.fingerprint)
        known[sig.fingerprint] = sig.active
        if was is not None and was != sig.active:
            swings = self._swings.setdefault(inc.ref, deque(maxlen=self.config.transitions + 1))
            swings.append(sig.cleared_at or sig.last_at)

    def adopt(self, inc: IncidentState) -> None:
        """An incident from the store: its signals' states, and if it was flapping, a window that keeps
        it so for `within` after its last update (the transitions themselves are not stored)."""
        self._active[inc.ref] = {fp: sig.active for fp, sig in inc.signals.items()}
        if inc.flapping:
            n = self.config.transitions + 1
            self._swings[inc.ref] = deque([inc.updated_at] * n, maxlen=n)

    def flapping(self, inc: IncidentState, now: datetime) -> bool:
        """More than the allowed transitions within the window before `now`."""
        swings = self._swings.get(inc.ref)
        if not swings:
            return False
        since = now - self.config.within
        return sum(t > since for t in swings) > self.config.transitions

    def describe(self) -> str:
        c = self.config
        return f"more than {c.transitions} open/clear transitions of its signals within {format_duration(c.within)}"

    def forget(self, ref: int) -> None:
        self._active.pop(ref, None)
        self._swings.pop(ref, None)
