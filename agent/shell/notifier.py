"""Delivering the outbox to notification sinks, from one background thread of the leader.

The core's notifications are written to the outbox in the commit that decided them, so a notification
is never lost to a crash and never sent for a decision that was not recorded. A slow or failing
webhook never stalls polling or remediation; it is retried with backoff, each sink on its own and in
order. A sink hears how an incident ends (acknowledged, resolved) only if it was told of the incident.

Sinks that mirror state (Alertmanager) are also re-sent, every `resend`, the incidents they were told
about that are active (or resolved within the sink's `validity`), as the store holds them now: the
re-send is read from the store, not queued in the outbox, so it costs one query per interval whatever
the number of incidents, and any replica's store state is the truth it sends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from agent.clock import Clock
from agent.config.models import NotificationSink
from agent.core.incidents import IncidentState
from agent.core.known_errors import KnownError, KnownErrors
from agent.core.notifications import EVENTS, FOLLOW_UPS, incident_payload
from agent.shell.metrics import AgentMetrics
from agent.shell.store.fence import Fence, Fenced
from agent.shell.store.outbox import MAX_ATTEMPTS, OutboxRepo
from agent.shell.store.tables import OutboxItem
from integrations.errors import IntegrationError
from integrations.notify import SINKS, Refreshing, Sink, SinkSettings

OPENINGS = frozenset(EVENTS.values()) - FOLLOW_UPS
Incidents = Callable[[datetime], Sequence[IncidentState]]
"""Active incidents, and those resolved since the time given, with their signals."""

log = logging.getLogger(__name__)


def routes(sinks: Sequence[NotificationSink]) -> dict[str, list[str]]:
    """The sinks subscribed to each event."""
    out: dict[str, list[str]] = {}
    for sink in sinks:
        for event in sink.events:
            out.setdefault(event, []).append(sink.name)
    return out


def build_sinks(sinks: Sequence[NotificationSink], ui_url: str = "") -> dict[str, Sink]:
    """The configured sinks; `ui_url` is where people reach the agent's UI (links in notifications)."""
    return {n.name: SINKS[n.type](settings(n, ui_url)) for n in sinks}


def settings(n: NotificationSink, ui_url: str = "") -> SinkSettings:
    """What a sink is built from: its configuration, secrets in the clear (for the sink alone)."""
    return SinkSettings(
        name=n.name,
        url=n.url.get_secret_value(),
        timeout=n.timeout.total_seconds(),
        ui_url=ui_url,
        routing_key=n.routing_key.get_secret_value() if n.routing_key is not None else "",
        labels=dict(n.labels),
        resend=n.resend,
    )


class Notifier:
    def __init__(
        self,
        sinks: Mapping[str, Sink],
        outbox: OutboxRepo,
        fence: Fence | None,
        clock: Clock,
        metrics: AgentMetrics | None = None,
        interval: float = 1.0,
        incidents: Incidents | None = None,
        known_errors: Callable[[], Sequence[KnownError]] = tuple,
    ):
        self.sinks = dict(sinks)
        self.outbox = outbox
        self.fence = fence
        self.clock = clock
        self.metrics = metrics
        self.interval = interval
        self.incidents = incidents
        self.known_errors = known_errors  # for the workaround in re-sent documents
        # sinks that mirror incidents' state, re-sent from the store (when the store is given)
        mirrors = {n: s for n, s in self.sinks.items() if isinstance(s, Refreshing)}
        self.mirrors = mirrors if incidents is not None else {}
        self._next: dict[str, datetime] = {}  # when each one is re-sent next
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
                self.refresh()
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
        stalled: set[str] = set()  # sinks that failed this round: their later items wait, in order
        for item in self.outbox.due(self.clock.now()):
            assert item.id is not None
            if item.sink in stalled:
                continue
            sink = self.sinks.get(item.sink)
            if item.event in FOLLOW_UPS and not self._told(item):
                self.outbox.delivered(item.id, self.clock.now(), self.fence)
                log.debug(
                    "notification %s not sent to %s: it was not told of the incident", item.event, item.sink
                )
                continue
            try:
                if sink is None:
                    raise IntegrationError(f"sink {item.sink!r} is no longer configured")
                sink.send(item.payload)
            except Exception as e:  # a sink bug or an unencodable payload must not end delivery
                stalled.add(item.sink)
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

    def refresh(self) -> int:
        """Re-send each mirroring sink whose `resend` interval has passed the incidents it was told
        about that are active or recently resolved; returns how many sinks were re-sent."""
        now = self.clock.now()
        due = {n: s for n, s in self.mirrors.items() if self._next.get(n, now) <= now}
        if not due or self.incidents is None:
            return 0
        held = self.incidents(now - max(s.validity for s in due.values()))
        for name, sink in due.items():
            self._next[name] = now + sink.resend
            recent = [
                inc
                for inc in held
                if inc.id is not None
                and (
                    inc.status.active
                    or (inc.resolved_at is not None and now - inc.resolved_at <= sink.validity)
                )
            ]
            since = min((inc.opened_at for inc in recent), default=now)
            told = self.outbox.told(name, OPENINGS, since) if recent else set()
            known = KnownErrors(self.known_errors()) if recent else KnownErrors()
            docs = [
                incident_payload(inc, now, "", known.get(inc.known_error_id))
                for inc in recent
                if inc.id in told
            ]
            try:
                sink.refresh(docs)
            except Exception as e:  # the next interval tries again; failures count as errors
                log.warning("re-sending %d incidents to %s failed: %s", len(docs), name, e)
                self._count(name, "error")
        return len(due)

    def _told(self, item: OutboxItem) -> bool:
        """Whether `item`'s sink was told of its incident before (by an event other than a follow-up)."""
        incident, opened = item.payload.get("incident_id"), item.payload.get("opened_at")
        if not isinstance(incident, int) or not isinstance(opened, str):
            return True  # not about an incident the store holds: send it as it is
        return incident in self.outbox.told(item.sink, OPENINGS, datetime.fromisoformat(opened))

    def _count(self, sink: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(sink=sink, result=result).inc()
