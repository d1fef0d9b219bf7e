"""Delivering the outbox to notification sinks, from one background thread of the leader.

The core's notifications are written to the outbox in the commit that decided them, so a notification
is never lost to a crash and never sent for a decision that was not recorded. A slow or failing
webhook never stalls polling or remediation; it is retried with backoff, each sink on its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta

from agent.clock import Clock
from agent.config.models import NotificationSink
from agent.shell.metrics import AgentMetrics
from agent.shell.store.fence import Fence, Fenced
from agent.shell.store.outbox import MAX_ATTEMPTS, OutboxRepo
from integrations.errors import IntegrationError
from integrations.notify import SINKS, Sink

log = logging.getLogger(__name__)


def routes(sinks: Sequence[NotificationSink]) -> dict[str, list[str]]:
    """The sinks subscribed to each event."""
    out: dict[str, list[str]] = {}
    for sink in sinks:
        for event in sink.events:
            out.setdefault(event, []).append(sink.name)
    return out


def build_sinks(sinks: Sequence[NotificationSink]) -> dict[str, Sink]:
    return {
        n.name: SINKS[n.type](n.name, n.url.get_secret_value(), timeout=n.timeout.total_seconds())
        for n in sinks
    }


class Notifier:
    def __init__(
        self,
        sinks: Mapping[str, Sink],
        outbox: OutboxRepo,
        fence: Fence | None,
        clock: Clock,
        metrics: AgentMetrics | None = None,
        interval: float = 1.0,
    ):
        self.sinks = dict(sinks)
        self.outbox = outbox
        self.fence = fence
        self.clock = clock
        self.metrics = metrics
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.sinks and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="aiops-notifier", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is due, then stop."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            try:
                self.deliver()
            except Fenced:
                return  # another agent leads: it delivers from now on
            except Exception:  # a store hiccup: try again on the next turn
                log.exception("notification delivery failed; retrying")
            if self._stop.is_set():
                return
            self._wake.wait(self.interval)
            self._wake.clear()

    def deliver(self) -> int:
        """Send what is due; returns how many were delivered."""
        sent = 0
        for item in self.outbox.due(self.clock.now()):
            assert item.id is not None
            sink = self.sinks.get(item.sink)
            try:
                if sink is None:
                    raise IntegrationError(f"sink {item.sink!r} is no longer configured")
                sink.send(item.payload)
            except Exception as e:  # a sink bug or an unencodable payload must not end delivery
                attempt = item.attempts + 1
                retry = self.clock.now() + timedelta(seconds=2**attempt)
                self.outbox.failed(item.id, str(e), retry, self.fence)
                final = (
                    " (giving up)"
                    if attempt >= MAX_ATTEMPTS
                    else f", retry {attempt + 1}/{MAX_ATTEMPTS} later"
                )
                log.error("notification %s to %s not delivered: %s%s", item.event, item.sink, e, final)
                self._count(item.sink, "error")
            else:
                self.outbox.delivered(item.id, self.clock.now(), self.fence)
                log.info("notification %s sent to %s", item.event, item.sink)
                self._count(item.sink, "ok")
                sent += 1
        return sent

    def _count(self, sink: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(sink=sink, result=result).inc()
