"""The safety envelope as it stood during a replayed window: silences and uses of the kill switch that
people recorded in the live store, handed to the core on each replayed tick as the leader hands the
store's current ones, so a replay of last week mutes what was silenced then and holds what was paused;
and the known errors recorded by then, so incidents are linked and workaround rules act as they would."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.core.envelope import Silence, Switch
from agent.core.events import Tick
from agent.core.known_errors import KnownError
from agent.errors import AiopsError
from agent.shell.store import Store
from agent.shell.store.envelope import silence
from agent.shell.store.known_errors import known_error_ref

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvelopeLog:
    silences: tuple[tuple[datetime, Silence], ...] = ()  # (created at, silence ending when it did)
    switches: tuple[Switch, ...] = ()  # oldest first
    known_errors: tuple[tuple[datetime, KnownError], ...] = ()  # (recorded at, known error)
    note: str = ""  # why nothing was read, when nothing was

    @classmethod
    def read(cls, url: str, since: datetime, until: datetime) -> EnvelopeLog:
        """What the live store at `url` recorded for [since, until]; empty, with a note, when there is
        no store yet or it cannot be read (a replay still runs on its own)."""
        try:
            store = Store.open(url, create=False)
        except AiopsError as e:
            return cls(note=f"silences and pauses not applied: {e}")
        try:
            rows = store.silences.list(until, include_ended=True)
            silences = tuple(
                (r.created_at, silence(r))
                for r in rows
                if r.created_at <= until and silence(r).ends_at > since
            )
            switches = tuple(s for s in store.switches.log_until(until))
            known = tuple(
                (k.created_at, known_error_ref(k))
                for k in store.known_errors.list(limit=100_000)
                if k.created_at <= until
            )
        finally:
            store.close()
        return cls(
            tuple(sorted(silences, key=lambda p: p[1].id)),
            switches,
            tuple(sorted(known, key=lambda p: p[1].id)),
        )

    def tick(self, at: float) -> Tick:
        """The tick of moment `at`: the silences that existed and had not ended, the switches and known
        errors made."""
        t = datetime.fromtimestamp(at, UTC)
        return Tick(
            tuple(s for made, s in self.silences if made <= t < s.ends_at),
            tuple(s for s in self.switches if s.at <= t),
            tuple(k for made, k in self.known_errors if made <= t),
        )
