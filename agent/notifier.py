"""Fan-out of escalations and other events to notification sinks, off the pipeline's thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from agent.metrics import AgentMetrics
from integrations.errors import IntegrationError
from integrations.notify import Sink

log = logging.getLogger(__name__)


class Notifier:
    """Queues notifications and delivers them in order from one background thread; a slow or failing
    webhook never stalls polling or remediation."""

    def __init__(self, routes: Sequence[tuple[Sink, frozenset[str]]], metrics: AgentMetrics | None = None):
        self.routes = list(routes)
        self.metrics = metrics
        self._queue: queue.Queue[tuple[Sink, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.routes and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="aiops-notifier", daemon=True)
            self._thread.start()

    def notify(self, event: str, payload: Mapping[str, Any]) -> int:
        """Queue `payload` for every sink subscribed to `event`; returns how many sinks will get it."""
        n = 0
        for sink, events in self.routes:
            if event in events:
                self._queue.put((sink, {"event": event, **payload}))
                n += 1
        return n

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            sink, payload = item
            try:
                sink.send(payload)
            except IntegrationError as e:
                log.error("notification %s to %s not delivered: %s", payload.get("event"), sink.name, e)
                result = "error"
            except Exception:  # a sink bug or unencodable payload must not end delivery for everyone
                log.exception("notification %s to %s failed unexpectedly", payload.get("event"), sink.name)
                result = "error"
            else:
                log.info("notification %s sent to %s", payload.get("event"), sink.name)
                result = "ok"
            if self.metrics is not None:
                self.metrics.notifications.labels(sink=sink.name, result=result).inc()
