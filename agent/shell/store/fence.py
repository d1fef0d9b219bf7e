"""Fenced writes: every write a leader makes carries its epoch, and the store refuses it once another
agent has taken the lease (a stale leader that wakes up after a pause cannot undo its successor's work).

The check is an UPDATE of the lease row inside the writing transaction: it takes the row's lock, so
a takeover waits for a leader's transaction in flight and every later leader write fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, update
from sqlmodel import col

from agent.errors import AiopsError
from agent.shell.store.tables import Lease

LEADER = "leader"


class Fenced(AiopsError):
    """This agent's epoch is over: another agent holds the lease; nothing was written."""


class AlreadyCommitted(AiopsError):
    """A commit whose outcome was unclear (the connection failed at COMMIT) did go through."""


@dataclass(frozen=True)
class Fence:
    holder: str
    epoch: int
    max_idle: float = 0.0  # seconds a fenced transaction may wait on this agent (PostgreSQL); 0: no limit

    def update(self, conn: Connection, *also: ColumnElement[bool], **values: Any) -> bool:
        """Update the lease row if this fence's epoch still holds it (and `also` holds); whether it did."""
        self._bound_stall(conn)
        held = (col(Lease.name) == LEADER, col(Lease.holder) == self.holder, col(Lease.epoch) == self.epoch)
        return bool(conn.execute(update(Lease).where(*held, *also).values(**values)).rowcount == 1)

    def check(self, conn: Connection) -> None:
        """Raise Fenced unless this fence's epoch still holds the lease (locks the lease row)."""
        if not self.update(conn, epoch=col(Lease.epoch)):
            raise Fenced(f"epoch {self.epoch} of {self.holder} no longer holds the lease")

    def claim(self, conn: Connection, seq: int) -> None:
        """`check`, and record `seq` as this epoch's latest commit. Raises AlreadyCommitted when `seq`
        is recorded already: an earlier attempt of the same commit went through."""
        if self.update(conn, col(Lease.seq) < seq, seq=seq):
            return
        self.check(conn)
        raise AlreadyCommitted(f"commit {seq} of epoch {self.epoch} is already recorded")

    def _bound_stall(self, conn: Connection) -> None:
        """A fenced transaction holds the lease row's lock until it ends, so a leader paused mid-write (a
        stopped process, a frozen VM, a partition that leaves the TCP link up) would hold it for as long
        as the pause lasts, and a standby's takeover would wait on it: no failover at all. PostgreSQL
        ends such a transaction, and its session, once it has waited `max_idle` on this agent; by then
        the lease has lapsed anyway (its holder cannot renew while one of its own writes holds the row)."""
        if self.max_idle > 0 and conn.dialect.name == "postgresql":
            limit = f"{max(1, round(self.max_idle * 1000))}ms"
            conn.execute(select(func.set_config("idle_in_transaction_session_timeout", limit, True)))
