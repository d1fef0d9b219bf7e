"""Who leads: a lease row in the store, renewed by the leader, taken over when it lapses.

Standbys never compare wall clocks: a standby takes the lease once it has seen the lease's renewal
counter stand still for `ttl` by its own monotonic clock (as Kubernetes' leader election does). The
leader stops acting once its last successful renewal is older than `ttl` minus a margin, before any
standby can take over; fencing (every leader write checks the epoch) covers a leader that was paused
and did not notice. On SQLite there is one agent per file (a lock file proves it), so it takes the
lease at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from agent.clock import Clock
from agent.errors import AiopsError
from agent.shell.store.engine import writing
from agent.shell.store.fence import LEADER, Fence
from agent.shell.store.tables import Lease

log = logging.getLogger(__name__)
SAFETY = 0.2  # the leader gives up this share of the TTL early


@dataclass(frozen=True)
class Holder:
    """The lease as last read: who holds it, since which epoch, and its renewal counter."""

    holder: str
    epoch: int
    renewals: int
    expires_at: datetime | None

    @property
    def free(self) -> bool:
        return self.holder == ""


class LeaseLock:
    """Leadership of one store: acquire, renew, release, and the fence of the epoch we hold."""

    def __init__(
        self,
        engine: Engine,
        ttl: timedelta,
        clock: Clock,
        identity: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        exclusive: bool = False,
    ):
        self.engine = engine
        self.ttl = ttl.total_seconds()
        self.clock = clock
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.monotonic = monotonic
        self.exclusive = exclusive  # the only agent on this store (SQLite): take the lease at once
        self.fence: Fence | None = None
        self._renewed = -float("inf")
        self._seen: tuple[Holder, float] | None = None

    def read(self) -> Holder:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(col(Lease.holder), col(Lease.epoch), col(Lease.renewals), col(Lease.expires_at)).where(
                    col(Lease.name) == LEADER
                )
            ).first()
        if row is None:
            return Holder("", 0, 0, None)
        return Holder(row[0], int(row[1]), int(row[2]), row[3])

    def try_acquire(self) -> Fence | None:
        """Take the lease if it is free, lapsed (unchanged for a TTL as we watched it), or ours to take
        (exclusive); returns the new epoch's fence, or None while someone else leads."""
        self._ensure_row()
        seen = self.read()
        now = self.monotonic()
        if self._seen is None or self._seen[0] != seen:
            self._seen = (seen, now)
        lapsed = now - self._seen[1] >= self.ttl
        if not (seen.free or lapsed or self.exclusive):
            return None
        at = self.clock.now()
        with writing(self.engine) as conn:
            done = conn.execute(
                update(Lease)
                .where(
                    col(Lease.name) == LEADER,
                    col(Lease.epoch) == seen.epoch,
                    col(Lease.renewals) == seen.renewals,
                    col(Lease.holder) == seen.holder,
                )
                .values(
                    holder=self.identity,
                    epoch=seen.epoch + 1,
                    renewals=0,
                    seq=0,
                    acquired_at=at,
                    renewed_at=at,
                    expires_at=at + timedelta(seconds=self.ttl),
                )
            )
        if done.rowcount != 1:
            return None  # another standby was faster
        self._renewed = now
        self.fence = Fence(self.identity, seen.epoch + 1, max_idle=self.ttl)
        if not seen.free:
            log.warning(
                "took over the lease from %s (epoch %d)%s",
                seen.holder,
                seen.epoch,
                "" if self.exclusive else f": no renewal for {self.ttl:g}s",
            )
        return self.fence

    def renew(self) -> bool:
        """Renew our lease; False when it was taken from us (or the store could not be reached, in
        which case `valid` says whether we may still act)."""
        fence = self.fence
        if fence is None:
            return False
        started = self.monotonic()
        at = self.clock.now()
        with writing(self.engine) as conn:
            renewed = fence.update(
                conn,
                renewals=col(Lease.renewals) + 1,
                renewed_at=at,
                expires_at=at + timedelta(seconds=self.ttl),
            )
        if not renewed:
            self.fence = None
            return False
        self._renewed = started
        return True

    def valid(self) -> bool:
        """Whether we may still act as leader: our last renewal is recent enough that no standby can
        have taken over yet."""
        return self.fence is not None and self.monotonic() - self._renewed < self.ttl * (1 - SAFETY)

    def release(self) -> None:
        """Give the lease up (on a clean stop), so a standby takes over at once instead of after a TTL."""
        fence, self.fence = self.fence, None
        if fence is None:
            return
        with writing(self.engine) as conn:
            fence.update(conn, holder="", expires_at=self.clock.now())

    def _ensure_row(self) -> None:
        with self.engine.connect() as conn:
            exists = conn.execute(select(col(Lease.name)).where(col(Lease.name) == LEADER)).first()
        if exists is not None:
            return
        try:
            with writing(self.engine) as conn:
                conn.execute(insert(Lease).values(name=LEADER, holder="", epoch=0, renewals=0, seq=0))
        except IntegrityError:
            pass  # another agent created it first


class SqliteLock:
    """One agent per SQLite file: an exclusive lock on `<file>.lock`, released by the kernel when the
    process ends however it ends (so a crash never blocks the restart)."""

    def __init__(self, database: str):
        self.path = Path(database + ".lock")
        self._file: IO[Any] | None = None

    def acquire(self) -> None:
        try:
            f = self.path.open("a+")
        except OSError as e:
            raise AiopsError(
                f"cannot use the SQLite store {self.path.with_suffix('')}: {e.strerror}"
            ) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise AiopsError(
                f"the SQLite store {self.path.with_suffix('')} is in use by {owner}: one agent per SQLite "
                "file; stop it first, or run replicas on PostgreSQL"
            ) from None
        f.truncate(0)
        f.write(f"aiops run (pid {os.getpid()} on {socket.gethostname()})\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
