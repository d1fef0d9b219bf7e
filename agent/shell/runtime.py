"""The core's one owner: applies events in order, commits each event's decisions in one transaction, then
has their effects applied. No lock guards the core: only the owner's thread ever touches it.

Events come from pollers (`submit`, which hands back a future the poller waits on before it moves its
source on), and from the store's inbox (`wake`: alerts, people's decisions, remediation progress). A
commit the store refuses for a while is retried with backoff, never dropped: events queue behind it,
and nothing a source delivered is acknowledged before it is recorded. In inline mode (tests, replay)
`submit` applies the event in the caller's thread, so the same code runs with no thread at all.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from agent.clock import Clock
from agent.core.decisions import Committed, Decisions
from agent.core.engine import Core, WorkingSet
from agent.core.events import Event, IncidentsStored
from agent.errors import AiopsError
from agent.shell.store import inbox as inbox_codec
from agent.shell.store.fence import AlreadyCommitted, Fenced
from agent.shell.store.inbox import InboxRepo

log = logging.getLogger("aiops")
_DRAIN = object()
MAX_BACKOFF = 5.0


class Commits(Protocol):
    def commit(self, out: Decisions, seq: int) -> Committed: ...


class Stopped(AiopsError):
    """The runtime stopped before the event could be applied (it was not)."""


class Runtime:
    def __init__(
        self,
        core: Core,
        committer: Commits,
        clock: Clock,
        effects: Callable[[Decisions], None],
        inbox: InboxRepo | None = None,
        resync: Callable[[], WorkingSet] | None = None,
        inline: bool = False,
        on_lost: Callable[[str], None] = lambda why: None,
        on_commit_error: Callable[[int], None] = lambda failures: None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.core = core
        self.committer = committer
        self.clock = clock
        self.effects = effects
        self.inbox = inbox
        self.resync = resync
        self.inline = inline
        self.on_lost = on_lost
        self.on_commit_error = on_commit_error
        self.sleep = sleep
        self._queue: queue.Queue[tuple[object, Future[Decisions]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._stopping = threading.Event()
        self._drain_queued = threading.Event()
        self._give_up_at = float("inf")

    # ------------------------------------------------------------------ the outside

    def start(self) -> None:
        if not self.inline and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="aiops-core", daemon=True)
            self._thread.start()

    def submit(self, event: Event) -> Future[Decisions]:
        """Have `event` applied; the future completes once its decisions are committed."""
        future: Future[Decisions] = Future()
        if self.inline:
            try:
                future.set_result(self._apply(event))
            except BaseException as e:
                future.set_exception(e)
            return future
        if self._stopping.is_set():
            future.set_exception(Stopped("the agent is stopping"))
            return future
        self._queue.put((event, future))
        return future

    def wake(self) -> None:
        """Something was put in the inbox: apply it soon (at once in inline mode)."""
        if self.inline:
            self._drain()
        elif not self._drain_queued.is_set():
            self._drain_queued.set()
            self._queue.put((_DRAIN, Future()))

    def stop(self, grace: float = 10.0) -> None:
        """Apply what is queued, then stop; a commit still failing after `grace` seconds is abandoned
        (what it recorded is re-read from its source or the inbox by the next leader)."""
        self._stopping.set()
        self._give_up_at = time.monotonic() + grace
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(grace + 5)
            self._thread = None

    # ------------------------------------------------------------------ the owner's thread

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            event, future = item
            try:
                if event is _DRAIN:
                    self._drain_queued.clear()
                    self._drain()
                else:
                    future.set_result(self._apply(event))  # type: ignore[arg-type]
            except Fenced as e:
                future.set_exception(e)
                self._abandon(e)
                self.on_lost(str(e))
                return
            except BaseException as e:  # a bug in one event must not stop the agent
                if not future.done():
                    future.set_exception(e)
                if not isinstance(e, Stopped):
                    log.exception("applying %s failed", type(event).__name__)

    def _abandon(self, why: Exception) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(Stopped(str(why)))

    def _drain(self) -> None:
        """Apply the inbox in order; each row is deleted in the commit of what it caused."""
        if self.inbox is None:
            return
        while rows := self.inbox.pending(100):
            for row in rows:
                self._apply(inbox_codec.decode(row))
            if len(rows) < 100:
                return

    def _apply(self, event: Event) -> Decisions:
        began = time.perf_counter()
        out = self.core.handle(event, self.clock.now())
        out.seconds = time.perf_counter() - began
        if out.writes():
            self._commit(out)
        self.effects(out)
        if out.opened:
            self._apply(IncidentsStored(tuple(inc.ref for inc in out.opened)))
        return out

    def _commit(self, out: Decisions) -> None:
        self._seq += 1
        failures = 0
        delay = 0.1
        while True:
            try:
                result = self.committer.commit(out, self._seq)
            except AlreadyCommitted:
                log.warning(
                    "a commit whose outcome was unclear went through: reloading incidents from the store"
                )
                self._resync()
                return
            except IntegrityError as e:
                log.error(
                    "the store refused a decision as inconsistent (%s); reloading incidents from the store", e
                )
                self._resync()
                return
            except SQLAlchemyError as e:
                failures += 1
                self.on_commit_error(failures)
                if failures == 1 or failures % 20 == 0:
                    log.error(
                        "store write failed (%s); retrying until it succeeds (attempt %d, events wait)",
                        type(e).__name__,
                        failures,
                    )
                if self._stopping.is_set() and time.monotonic() >= self._give_up_at:
                    raise Stopped("store unavailable while stopping; nothing acknowledged was lost") from e
                self.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if failures:
                log.warning("store write succeeded after %d failed attempts; nothing was lost", failures)
            self.core.committed(out, result.problems, result.cancelled)
            return

    def _resync(self) -> None:
        if self.resync is not None:
            self.core.resync(self.resync())
