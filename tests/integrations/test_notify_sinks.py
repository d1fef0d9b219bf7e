"""Slack, PagerDuty and Alertmanager sinks against local servers that record what they are sent: the
exact requests, the one shared retry policy, and the notifier re-sending incidents to Alertmanager.

Documents come from the core's own `incident_payload`, so these tests hold the sinks to what the core
really sends. (tests/integrations/test_alertmanager_sink.py runs a real Alertmanager.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.core.decisions import Decisions, Notification
from agent.core.domain import IncidentStatus, Priority, Severity
from agent.core.incidents import IncidentState
from agent.core.known_errors import KnownError
from agent.core.notifications import incident_payload
from agent.shell.notifier import Notifier
from agent.shell.store import Store
from integrations.errors import IntegrationError, QueryRejected, SourceUnavailable
from integrations.http import Retry
from integrations.notify import SINKS, AlertmanagerSink, HttpSink, PagerDutySink, SinkSettings, SlackSink
from tests.conftest import StartPeer
from tests.support.recording_http import RecordingServer, Reply
from tests.support.records import T0, incident_state, signal_state

pytestmark = pytest.mark.integration

KEY = "R0UTINGKEY0123456789abcdefSECRET"
UI = "https://aiops.example.com"


def incident(incident_id: int = 7, **overrides: Any) -> IncidentState:
    """An incident whose signal carries untrusted text: a mention, a link and an ampersand."""
    signal = signal_state(
        severity=Severity.CRITICAL,
        labels={"instance": "<!channel>", "path": "/a&b"},
        last_value=0.75,
        last_expected=0.12,
    )
    fields: dict[str, Any] = {"id": incident_id, "title": "p99 <http://evil.example|click> & more"}
    return incident_state(incident_id, signals=[signal], **(fields | overrides))


def doc(event: str, inc: IncidentState | None = None, reason: str = "change #3 failed") -> dict[str, Any]:
    """A notification as the outbox holds it: the event and the core's document."""
    return {"event": event, **incident_payload(inc or incident(), T0 + timedelta(minutes=1), reason)}


def settings(peer: RecordingServer, *, delays: list[float] | None = None, **kw: Any) -> SinkSettings:
    retry = Retry(2, 0.5, (delays if delays is not None else []).append)
    return SinkSettings("oncall", peer.url + kw.pop("path", ""), timeout=2.0, retry=retry, **kw)


# ------------------------------------------------------------------ Slack


def test_slack_posts_a_readable_message_with_untrusted_text_escaped(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(200, b"ok", "text/plain")])
    SlackSink(settings(peer, path="/services/T0/B0/secret", ui_url=UI)).send(doc("escalation"))

    [req] = peer.requests
    assert (req.method, req.path) == ("POST", "/services/T0/B0/secret")
    assert req.headers["Content-Type"] == "application/json"
    title = "p99 &lt;http://evil.example|click&gt; &amp; more"
    assert req.json() == {
        "text": f":rotating_light: [P2] Incident #7 escalated: {title}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":rotating_light: *[P2] Incident <{UI}/ui/#/incidents/7|#7> escalated*\n{title}",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Service*\ndemo-web"},
                    {"type": "mrkdwn", "text": "*Status*\nopen"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Why*\nchange #3 failed"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": 'demo_latency_p99{instance="&lt;!channel&gt;",path="/a&amp;b"} = 0.75'
                        " (expected 0.12)",
                    }
                ],
            },
        ],
    }
    assert "<!channel>" not in req.body.decode()


def test_slack_and_pagerduty_carry_the_workaround_of_the_incidents_known_error(http_peer: StartPeer) -> None:
    known = KnownError(
        4, ("demo-web:demo_latency_p99",), "pool", "recycle <!channel> & wait", "recycle_workers"
    )
    inc = incident(known_error_id=4)
    sent = {"event": "incident_opened", **incident_payload(inc, T0, "opened", known)}
    assert sent["known_error"]["workaround_runbook"] == "recycle_workers"
    slack, pager = http_peer([Reply(200, b"ok", "text/plain")]), http_peer([Reply.json(202, {})])
    SlackSink(settings(slack)).send(sent)
    PagerDutySink(settings(pager, routing_key=KEY)).send(sent)
    text = "*Known error #4: workaround*\nrecycle &lt;!channel&gt; &amp; wait (runbook `recycle_workers`)"
    assert {"type": "section", "text": {"type": "mrkdwn", "text": text}} in slack.requests[0].json()["blocks"]
    details = pager.requests[0].json()["payload"]["custom_details"]
    assert details["workaround"] == "known error #4: recycle <!channel> & wait"


def test_slack_asks_for_a_change_approval(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(200, b"ok", "text/plain")])
    change = {
        "event": "remediation",
        "change_id": 4,
        "incident_id": 7,
        "status": "awaiting_approval",
        "runbook": "recycle_workers",
        "service": "demo-web",
    }
    SlackSink(settings(peer)).send(change)

    text = ":hourglass_flowing_sand: Change #4 for incident #7 awaits approval: runbook recycle_workers on demo-web"
    assert peer.requests[0].json() == {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "`aiops changes approve 4` or `aiops changes reject 4`"}
                ],
            },
        ],
    }


# ------------------------------------------------------------------ PagerDuty


def test_pagerduty_triggers_acknowledges_and_resolves_one_alert_per_incident(http_peer: StartPeer) -> None:
    peer = http_peer([Reply.json(202, {"status": "success", "dedup_key": "aiops-7"})])
    sink = PagerDutySink(settings(peer, path="/v2/enqueue", routing_key=KEY, ui_url=UI))

    for event in ("escalation", "incident_acknowledged", "incident_resolved"):
        sink.send(doc(event))

    trigger, ack, resolve = (r.json() for r in peer.requests)
    assert {r.path for r in peer.requests} == {"/v2/enqueue"}
    link = f"{UI}/ui/#/incidents/7"
    assert trigger == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "aiops-7",
        "payload": {
            "summary": "[P2] p99 <http://evil.example|click> & more",
            "source": "demo-web",
            "severity": "error",
            "timestamp": (T0 + timedelta(minutes=1)).isoformat(),
            "component": "demo-web",
            "class": "escalation",
            "custom_details": {
                "incident": 7,
                "status": "open",
                "reason": "change #3 failed",
                "signature": "demo-web:demo_latency_p99",
                "signals": ["demo_latency_p99"],
            },
        },
        "client": "aiops-agent",
        "client_url": link,
        "links": [{"href": link, "text": "incident #7"}],
    }
    assert ack == {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "aiops-7"}
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "aiops-7"}


@pytest.mark.parametrize(("priority", "severity"), [("P1", "critical"), ("P3", "warning"), ("P4", "info")])
def test_pagerduty_severity_follows_priority(http_peer: StartPeer, priority: str, severity: str) -> None:
    peer = http_peer([Reply(202)])
    PagerDutySink(settings(peer, routing_key=KEY)).send(
        doc("sla_breach", incident(priority=Priority(priority)))
    )
    assert peer.requests[0].json()["payload"]["severity"] == severity


def test_pagerduty_refuses_what_is_not_about_an_incident(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(202)])
    with pytest.raises(IntegrationError, match="incident events"):
        PagerDutySink(settings(peer, routing_key=KEY)).send({"event": "remediation", "incident_id": 7})
    assert peer.requests == []


def test_pagerduty_errors_never_show_the_routing_key(http_peer: StartPeer) -> None:
    peer = http_peer([Reply.json(400, {"status": "invalid event", "message": "Event object is invalid"})])
    sink = PagerDutySink(settings(peer, routing_key=KEY))
    with pytest.raises(QueryRejected) as caught:
        sink.send(doc("escalation"))
    assert "HTTP 400" in str(caught.value) and "invalid event" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(sink)


# ------------------------------------------------------------------ Alertmanager


def test_alertmanager_gets_an_alert_with_stable_labels_ending_after_four_resends(
    http_peer: StartPeer,
) -> None:
    peer = http_peer([Reply(200)])
    now = T0 + timedelta(minutes=2)
    sink = AlertmanagerSink(
        settings(peer, path="/am", ui_url=UI, labels={"team": "web"}, resend=timedelta(seconds=30)),
        now=lambda: now,
    )

    sink.send(doc("incident_opened"))
    sink.send(doc("incident_resolved", incident(status=IncidentStatus.RESOLVED)))

    firing, resolved = peer.requests
    assert firing.path == "/am/api/v2/alerts"
    link = f"{UI}/ui/#/incidents/7"
    labels = {
        "team": "web",
        "alertname": "AiopsIncident",
        "aiops_incident": "7",
        "service": "demo-web",
        "priority": "P2",
        "severity": "critical",
    }
    assert firing.json() == [
        {
            "labels": labels,
            "annotations": {
                "summary": "p99 <http://evil.example|click> & more",
                "description": "P2 incident #7 on demo-web: open",
                "signature": "demo-web:demo_latency_p99",
                "url": link,
            },
            "startsAt": T0.isoformat(),
            "endsAt": (now + timedelta(minutes=2)).isoformat(),  # 4 x resend: re-sent before then
            "generatorURL": link,
        }
    ]
    [ended] = resolved.json()
    assert ended["labels"] == labels
    assert ended["endsAt"] == (T0 + timedelta(minutes=5)).isoformat()  # the incident's resolution


def test_alertmanager_ends_the_alert_of_a_label_set_the_incident_left(http_peer: StartPeer) -> None:
    """A priority that rises makes a new alert (labels are its identity); the old one ends at once."""
    peer = http_peer([Reply(200)])
    now = T0 + timedelta(minutes=2)
    sink = AlertmanagerSink(settings(peer), now=lambda: now)

    sink.send(doc("incident_opened"))
    sink.send(doc("escalation", incident(priority=Priority.P1)))
    sink.send(doc("escalation", incident(priority=Priority.P1)))

    second, third = peer.requests[1].json(), peer.requests[2].json()
    assert [(a["labels"]["priority"], a["endsAt"]) for a in second] == [
        ("P2", now.isoformat()),
        ("P1", (now + timedelta(minutes=4)).isoformat()),
    ]
    assert [a["labels"]["priority"] for a in third] == ["P1"]


# ------------------------------------------------------------------ one retry policy for every kind


def sink_of(kind: str, peer: RecordingServer, delays: list[float]) -> HttpSink:
    return SINKS[kind](settings(peer, delays=delays, routing_key=KEY))


@pytest.mark.parametrize("kind", sorted(SINKS))
@pytest.mark.parametrize("status", [500, 503, 429])
def test_every_sink_retries_transient_failures(http_peer: StartPeer, kind: str, status: int) -> None:
    peer = http_peer([Reply(status), Reply(status), Reply(202)])
    delays: list[float] = []
    sink_of(kind, peer, delays).send(doc("escalation"))
    assert len(peer.requests) == 3
    assert peer.requests[0].body == peer.requests[2].body
    assert delays == [0.5, 1.0]


@pytest.mark.parametrize("kind", sorted(SINKS))
@pytest.mark.parametrize("status", [400, 403, 404])
def test_every_sink_gives_up_on_4xx_at_once(http_peer: StartPeer, kind: str, status: int) -> None:
    peer = http_peer([Reply(status)])
    delays: list[float] = []
    with pytest.raises(QueryRejected, match=f"HTTP {status}"):
        sink_of(kind, peer, delays).send(doc("escalation"))
    assert len(peer.requests) == 1 and delays == []


@pytest.mark.parametrize("kind", sorted(SINKS))
def test_every_sink_raises_after_the_last_attempt(http_peer: StartPeer, kind: str) -> None:
    peer = http_peer([Reply(502)])
    with pytest.raises(SourceUnavailable, match="unavailable after 3 attempts: HTTP 502"):
        sink_of(kind, peer, []).send(doc("escalation"))
    assert len(peer.requests) == 3


# ------------------------------------------------------------------ the notifier re-sends incidents


class Mirror:
    """An Alertmanager sink (against a recording server) behind a notifier on a real store, with
    incidents the test holds as the store's working set."""

    def __init__(self, peer: RecordingServer, tmp_path: Path):
        self.clock = ManualClock(T0)
        self.store = Store.open(f"sqlite:///{tmp_path / 'aiops.db'}")
        self.sink = AlertmanagerSink(settings(peer, resend=timedelta(minutes=1)), now=self.clock.now)
        self.held: list[IncidentState] = []
        self.notifier = Notifier(
            {"am": self.sink}, self.store.outbox, None, self.clock, incidents=self.working_set
        )

    def working_set(self, resolved_since: datetime) -> list[IncidentState]:
        return [
            i for i in self.held if i.status.active or (i.resolved_at and i.resolved_at >= resolved_since)
        ]

    def told(self, event: str, inc: IncidentState) -> None:
        """The sink was sent `event` about `inc`, as the outbox records it."""
        out = Decisions(at=inc.opened_at)
        out.notifications.append(Notification(event, lambda: incident_payload(inc, inc.opened_at, "")))
        self.store.committer({event: ["am"]}, None).commit(out, 0)
        assert self.notifier.deliver() == 1


def test_the_notifier_resends_incidents_the_sink_was_told_about(http_peer: StartPeer, tmp_path: Path) -> None:
    peer = http_peer([Reply(200)])
    m = Mirror(peer, tmp_path)
    try:
        active, untold = incident(1), incident(2)
        resolved_lately = incident(3, status=IncidentStatus.RESOLVED)  # resolved at T0 + 5m
        resolved_long_ago = incident(4, opened_at=T0 - timedelta(hours=1), status=IncidentStatus.RESOLVED)
        resolved_long_ago.resolved_at = T0 - timedelta(minutes=50)
        m.held = [active, untold, resolved_lately, resolved_long_ago]
        for inc in (active, resolved_lately, resolved_long_ago):
            m.told("incident_opened", inc)
        m.clock.advance(timedelta(minutes=6))
        told = len(peer.requests)

        assert m.notifier.refresh() == 1
        [resent] = peer.requests[told:]
        alerts = {a["labels"]["aiops_incident"]: a for a in resent.json()}
        assert set(alerts) == {"1", "3"}  # not the one it never heard of, nor one Alertmanager forgot
        assert alerts["1"]["endsAt"] == (m.clock.now() + timedelta(minutes=4)).isoformat()
        assert alerts["3"]["endsAt"] == (T0 + timedelta(minutes=5)).isoformat()

        m.clock.advance(timedelta(seconds=30))
        assert m.notifier.refresh() == 0, "not again before `resend`"
        m.clock.advance(timedelta(seconds=30))
        assert m.notifier.refresh() == 1
        assert len(peer.requests) == told + 2
    finally:
        m.store.close()


def test_a_failed_resend_is_tried_again_next_interval(http_peer: StartPeer, tmp_path: Path) -> None:
    peer = http_peer([Reply(200), Reply(503), Reply(503), Reply(503), Reply(200)])
    m = Mirror(peer, tmp_path)
    try:
        m.held = [incident(1)]
        m.told("escalation", m.held[0])
        m.notifier.refresh()  # three attempts, all refused
        assert len(peer.requests) == 4
        m.clock.advance(timedelta(minutes=1))
        m.notifier.refresh()
        assert len(peer.requests) == 5 and peer.requests[-1].json()[0]["labels"]["aiops_incident"] == "1"
    finally:
        m.store.close()
