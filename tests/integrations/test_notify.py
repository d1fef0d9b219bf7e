"""Notification sinks against a recording local webhook receiver, and the Notifier delivering the outbox
of a real store (notifications are written with the decisions that cause them, then delivered)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock, SystemClock
from agent.core.decisions import Decisions, Notification
from agent.shell.metrics import AgentMetrics
from agent.shell.notifier import Notifier
from agent.shell.store import Store
from demo.processes import free_port
from integrations.errors import IntegrationError
from integrations.http import Retry
from integrations.notify import SinkSettings, WebhookSink
from integrations.redaction import redact_url
from tests.conftest import StartPeer
from tests.support.recording_http import RecordingServer, Reply

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET_PATH = "/services/T0SECRET/B0SECRET/XyZsecretPart"
SECRET_QUERY = "token=hunter2-secret"


class ThreadNotingSink(WebhookSink):
    """The real webhook sink, also noting which thread sent each notification."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads: list[str] = []

    def send(self, payload: Mapping[str, Any]) -> None:
        self.threads.append(threading.current_thread().name)
        super().send(payload)


def secret_url(peer: RecordingServer) -> str:
    return f"{peer.url}{SECRET_PATH}?{SECRET_QUERY}"


def webhook(
    peer: RecordingServer | str, *, name: str = "oncall", retries: int = 2, timeout: float = 2.0
) -> tuple[ThreadNotingSink, list[float]]:
    """A webhook sink for `peer` (a server or a URL) whose `sleep` records backoff delays instead."""
    url = peer if isinstance(peer, str) else secret_url(peer)
    delays: list[float] = []
    retry = Retry(retries, 0.5, delays.append)
    sink = ThreadNotingSink(SinkSettings(name, url, timeout=timeout, retry=retry))
    return sink, delays


def assert_no_secret(text: str) -> None:
    for secret in ("T0SECRET", "B0SECRET", "XyZsecretPart", "hunter2", "token="):
        assert secret not in text, f"{secret!r} leaked into {text!r}"


# ------------------------------------------------------------------ WebhookSink


def test_webhook_posts_the_payload_as_json(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(200)])
    sink, delays = webhook(peer)
    payload = {"event": "escalation", "incident_id": 12, "signals": [{"name": "p99", "score": 0.97}]}

    sink.send(payload)

    [req] = peer.requests
    assert req.method == "POST"
    assert req.path == f"{SECRET_PATH}?{SECRET_QUERY}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == payload
    assert delays == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_webhook_retries_transient_failures_then_succeeds(http_peer: StartPeer, status: int) -> None:
    peer = http_peer([Reply(status), Reply(status), Reply(204)])
    sink, delays = webhook(peer, retries=2)

    sink.send({"incident_id": 1})

    sent = peer.requests
    assert len(sent) == 3
    assert all(r.json() == {"incident_id": 1} for r in sent)
    assert delays == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_webhook_gives_up_on_4xx_at_once_without_leaking_the_url(http_peer: StartPeer, status: int) -> None:
    peer = http_peer([Reply(status)])
    sink, delays = webhook(peer, retries=3)

    with pytest.raises(IntegrationError) as caught:
        sink.send({"incident_id": 1})

    assert len(peer.requests) == 1, "a 4xx will not get better by retrying"
    assert delays == []
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert redact_url(secret_url(peer), path=False) in message
    assert_no_secret(message)
    assert_no_secret(repr(sink))


def test_webhook_gives_up_after_persistent_5xx(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(500)])
    sink, delays = webhook(peer, retries=2)

    with pytest.raises(IntegrationError, match="HTTP 500") as caught:
        sink.send({"incident_id": 1})

    assert len(peer.requests) == 3
    assert delays == [0.5, 1.0]
    assert_no_secret(str(caught.value))


def test_webhook_unreachable_raises_without_leaking_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}?{SECRET_QUERY}"
    sink, delays = webhook(url, retries=1)

    with pytest.raises(IntegrationError, match="ConnectionError") as caught:
        sink.send({"incident_id": 1})

    assert delays == [0.5]
    assert_no_secret(str(caught.value))


def test_a_transport_error_does_not_quote_the_path() -> None:
    """requests quotes the URL's path in connection errors ("with url: /..."); a webhook's path is
    its credential, and the error is logged and stored with the outbox row."""
    sink, _ = webhook(f"http://hooks.invalid{SECRET_PATH}?{SECRET_QUERY}", retries=0)

    with pytest.raises(IntegrationError, match="ConnectionError") as caught:
        sink.send({"incident_id": 1})

    assert "with url: …" in str(caught.value)
    assert_no_secret(str(caught.value))


# ------------------------------------------------------------------ Notifier


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


class Outbox:
    """A store's outbox and the notifier delivering it: `notify` records a notification as a commit of
    the core's decisions would, and returns how many sinks it was queued for."""

    def __init__(self, store: Store, notifier: Notifier, routes: dict[str, list[str]]):
        self.store = store
        self.notifier = notifier
        self.routes = routes

    def notify(self, event: str, payload: dict[str, Any]) -> int:
        out = Decisions(at=datetime.now(UTC))
        out.notifications.append(Notification(event, lambda: payload))
        self.store.committer(self.routes, None).commit(out, 0)
        self.notifier.wake()
        return len(self.routes.get(event, []))

    def stop(self, timeout: float = 5) -> None:
        self.notifier.stop(timeout)


StartOutbox = Callable[..., Outbox]


@pytest.fixture
def outbox(tmp_path: Path, registry: CollectorRegistry) -> Iterator[StartOutbox]:
    """Outboxes created by a test, stopped and closed at the end even if it fails."""
    made: list[Outbox] = []

    def start(*routes: tuple[WebhookSink, set[str]]) -> Outbox:
        store = Store.open(f"sqlite:///{tmp_path / f'outbox{len(made)}.db'}")
        subscribed: dict[str, list[str]] = {}
        for sink, events in routes:
            for event in sorted(events):
                subscribed.setdefault(event, []).append(sink.name)
        sinks = {sink.name: sink for sink, _ in routes}
        notifier = Notifier(sinks, store.outbox, None, SystemClock(), AgentMetrics(registry), interval=0.05)
        notifier.start()
        made.append(Outbox(store, notifier, subscribed))
        return made[-1]

    yield start
    for o in made:
        o.stop()
        o.store.close()


def delivered(registry: CollectorRegistry, sink: str, result: str) -> float:
    return registry.get_sample_value("aiops_notifications_total", {"sink": sink, "result": result}) or 0.0


def bodies(peer: RecordingServer) -> list[Any]:
    return [r.json() for r in peer.requests]


def test_notifier_delivers_in_order_only_to_subscribed_sinks(
    http_peer: StartPeer, registry: CollectorRegistry, outbox: StartOutbox
) -> None:
    pager, chat, audit = http_peer([Reply(200)]), http_peer([Reply(200)]), http_peer([Reply(200)])
    pager_sink, _ = webhook(pager, name="pager")
    chat_sink, _ = webhook(chat, name="chat")
    audit_sink, _ = webhook(audit, name="audit")
    box = outbox(
        (pager_sink, {"escalation"}),
        (chat_sink, {"escalation", "sla_breach", "remediation"}),
        (audit_sink, {"incident_opened"}),
    )

    queued = [
        box.notify("escalation", {"incident_id": 1}),
        box.notify("sla_breach", {"incident_id": 2}),
        box.notify("remediation", {"change_id": 3}),
        box.notify("escalation", {"incident_id": 4}),
    ]

    assert queued == [2, 1, 1, 2]
    chat.wait_for(4)
    pager.wait_for(2)
    box.stop()
    assert bodies(pager) == [
        {"event": "escalation", "incident_id": 1},
        {"event": "escalation", "incident_id": 4},
    ]
    assert bodies(chat) == [
        {"event": "escalation", "incident_id": 1},
        {"event": "sla_breach", "incident_id": 2},
        {"event": "remediation", "change_id": 3},
        {"event": "escalation", "incident_id": 4},
    ]
    assert audit.requests == []
    assert set(pager_sink.threads + chat_sink.threads) == {"aiops-notifier"}
    assert delivered(registry, "pager", "ok") == 2
    assert delivered(registry, "chat", "ok") == 4
    assert box.store.outbox.pending() == 0


def test_recording_a_notification_does_not_wait_for_its_delivery(
    http_peer: StartPeer, registry: CollectorRegistry, outbox: StartOutbox
) -> None:
    slow = http_peer([Reply(200, hang=1.0)])
    sink, _ = webhook(slow, timeout=5)
    box = outbox((sink, {"escalation"}))

    t0 = time.monotonic()
    queued = [box.notify("escalation", {"incident_id": i}) for i in range(3)]

    assert time.monotonic() - t0 < 0.5
    assert queued == [1, 1, 1]
    assert len(slow.requests) <= 1, "recording must queue, not send"
    assert [b["incident_id"] for b in bodies(slow)] in ([], [0])
    slow.wait_for(3, timeout=10)


def test_a_failing_sink_holds_its_own_later_notifications_never_the_others(
    http_peer: StartPeer,
    registry: CollectorRegistry,
    outbox: StartOutbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, healthy = http_peer([Reply(500)]), http_peer([Reply(200)])
    broken_sink, _ = webhook(broken, name="broken", retries=1)
    healthy_sink, _ = webhook(healthy, name="healthy")
    box = outbox((broken_sink, {"escalation"}), (healthy_sink, {"escalation"}))
    caplog.set_level(logging.ERROR, logger="agent.shell.notifier")

    for i in (1, 2, 3):
        box.notify("escalation", {"incident_id": i})

    healthy.wait_for(3)
    box.stop()
    assert [b["incident_id"] for b in bodies(healthy)] == [1, 2, 3]
    # the first, with its one retry; the others wait behind it (a resolve must not overtake its trigger)
    assert [b["incident_id"] for b in bodies(broken)] == [1, 1]
    assert delivered(registry, "broken", "error") == 1
    assert delivered(registry, "healthy", "ok") == 3
    errors = [r.getMessage() for r in caplog.records if r.name == "agent.shell.notifier"]
    assert len(errors) == 1 and "not delivered" in errors[0] and "broken" in errors[0]
    assert "retry 2/5 later" in errors[0]
    assert_no_secret(errors[0])
    assert box.store.outbox.pending() == 3, "the failed one and those behind it wait in the outbox"
    assert box.store.outbox.due(datetime.now(UTC)) == [], "nothing of the sink is due before its retry"
    due = box.store.outbox.due(datetime.now(UTC) + timedelta(seconds=3))
    assert [(d.sink, d.attempts, d.payload["incident_id"]) for d in due] == [
        ("broken", 1, 1),
        ("broken", 0, 2),
        ("broken", 0, 3),
    ]


def test_a_recovered_sink_gets_what_waited_in_its_order(http_peer: StartPeer, tmp_path: Path) -> None:
    peer = http_peer([Reply(503), Reply(503), Reply(200)])
    sink, delays = webhook(peer, name="pager", retries=1)
    clock = ManualClock(T0)
    store = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    try:
        notifier = Notifier({"pager": sink}, store.outbox, None, clock)
        for event, incident in [("escalation", 1), ("incident_resolved", 1), ("escalation", 2)]:
            record(store, {event: ["pager"]}, clock.now(), event, {"incident_id": incident})

        assert notifier.deliver() == 0  # the first fails (and its retry): nothing else goes before it
        clock.advance(timedelta(seconds=1))
        assert notifier.deliver() == 0  # its next attempt is not due yet
        clock.advance(timedelta(seconds=1))
        assert notifier.deliver() == 3
    finally:
        store.close()
    assert [(b["event"], b["incident_id"]) for b in bodies(peer)] == [
        ("escalation", 1),
        ("escalation", 1),
        ("escalation", 1),
        ("incident_resolved", 1),
        ("escalation", 2),
    ]
    assert delays == [0.5]


def test_a_sink_hears_how_an_incident_ends_only_if_it_was_told_of_it(
    http_peer: StartPeer, tmp_path: Path
) -> None:
    """A pager subscribed to escalations and resolutions is not told that incidents it never paged
    for were acknowledged or resolved."""
    peer = http_peer([Reply(200)])
    sink, _ = webhook(peer, name="pager")
    clock = ManualClock(T0)
    routes = {e: ["pager"] for e in ("escalation", "incident_acknowledged", "incident_resolved")}
    store = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    try:
        notifier = Notifier({"pager": sink}, store.outbox, None, clock)
        opened = clock.now().isoformat()
        for event, incident in [
            ("incident_acknowledged", 1),
            ("incident_resolved", 1),
            ("escalation", 2),
            ("incident_acknowledged", 2),
            ("incident_resolved", 2),
        ]:
            record(store, routes, clock.now(), event, {"incident_id": incident, "opened_at": opened})
            clock.advance(timedelta(seconds=1))
        assert notifier.deliver() == 3
        assert store.outbox.pending() == 0
    finally:
        store.close()
    assert [(b["event"], b["incident_id"]) for b in bodies(peer)] == [
        ("escalation", 2),
        ("incident_acknowledged", 2),
        ("incident_resolved", 2),
    ]


def record(
    store: Store, routes: dict[str, list[str]], at: datetime, event: str, payload: dict[str, Any]
) -> None:
    """Queue a notification as the commit of the core's decisions does."""
    out = Decisions(at=at)
    out.notifications.append(Notification(event, lambda: payload))
    store.committer(routes, None).commit(out, 0)


def test_a_notification_with_odd_values_is_still_recorded_and_sent(
    http_peer: StartPeer, registry: CollectorRegistry, outbox: StartOutbox
) -> None:
    """A payload value JSON has no type for (here: a datetime) is recorded as text, never left unsent
    or allowed to fail the commit of the decision it belongs to."""
    peer = http_peer([Reply(200)])
    sink, _ = webhook(peer, name="pager")
    box = outbox((sink, {"escalation"}))
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    box.notify("escalation", {"incident_id": 1, "at": at})
    box.notify("escalation", {"incident_id": 2})

    peer.wait_for(2)
    box.stop()
    assert bodies(peer) == [
        {"event": "escalation", "incident_id": 1, "at": str(at)},
        {"event": "escalation", "incident_id": 2},
    ]
    assert delivered(registry, "pager", "ok") == 2
