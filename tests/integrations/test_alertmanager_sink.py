"""The Alertmanager sink against a real Alertmanager (Debian's prometheus-alertmanager) and a real agent.

An incident becomes an alert with stable labels, follows Alertmanager's routing and grouping to the
receiver the team chose, is re-sent while active and ends when the incident resolves. Alertmanager's
webhook, with the agent's token in `http_config.authorization`, delivers alerts the agent accepts,
and the agent's own alerts coming back that way open no incidents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.core.domain import IncidentStatus, Priority
from agent.core.notifications import incident_payload
from agent.shell.app import AgentApp
from agent.shell.store import Store
from demo.processes import free_port, wait_until
from integrations.notify import AlertmanagerSink, SinkSettings
from tests.conftest import ROOT, StartPeer, require
from tests.support.alertmanager import Alertmanager, alertmanager_binary, start_alertmanager
from tests.support.recording_http import Reply
from tests.support.records import incident_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "alertmanager-token-0123456789"
UI = "https://aiops.example.com"
# Each incident its own group, notified at once and on every change within a second.
GROUPING = {
    "group_by": ["aiops_incident"],
    "group_wait": "0s",
    "group_interval": "1s",
    "repeat_interval": "1h",
}
LATENCY = {"alertname": "DemoHighLatency", "job": "demo", "severity": "critical"}


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Agent:
    app: AgentApp
    port: int

    @property
    def store(self) -> Store:
        return self.app.store

    def alert(self, status: str, **labels: str) -> None:
        """Send the agent an alert as an Alertmanager webhook does."""
        alert: dict[str, Any] = {"status": status, "labels": {**LATENCY, **labels}, "startsAt": now()}
        if status == "resolved":
            alert["endsAt"] = now()
        r = requests.post(
            f"http://127.0.0.1:{self.port}/api/v1/alerts",
            json={"alerts": [alert]},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        r.raise_for_status()


@pytest.fixture
def start_am(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Alertmanager]]:
    require(alertmanager_binary() is not None, "prometheus-alertmanager (Debian package)")
    started: list[Alertmanager] = []

    def start(config: dict[str, Any]) -> Alertmanager:
        started.append(start_alertmanager(tmp_path / f"alertmanager{len(started)}", config))
        return started[-1]

    yield start
    for am in started:
        am.stop()


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """A real agent (API, leader, notifier) whose alertmanager sink posts to `am_url` every second."""
    started: list[AgentApp] = []

    def start(am_url: str, port: int | None = None) -> Agent:
        port = port or free_port()
        directory = tmp_path / "agent"
        directory.mkdir()
        config = {
            "store": {"url": f"sqlite:///{directory / 'aiops.db'}"},
            "prometheus": {"url": f"http://127.0.0.1:{free_port()}"},
            "correlation": {
                "window": "1m",
                "quiet_period": "1s",
                "reopen_window": "1m",
                "settle_period": "1s",
            },
            "housekeeping_interval": "200ms",
            "api": {
                "listen": f"127.0.0.1:{port}",
                "tokens": [{"name": "alertmanager", "role": "operator", "token": TOKEN}],
                "external_url": UI,
            },
            "notifications": [
                {
                    "name": "am",
                    "type": "alertmanager",
                    "url": am_url,
                    "resend": "1s",
                    "labels": {"team": "web"},
                }
            ],
            "services_file": str(ROOT / "config" / "services.yaml"),
            "rules_file": "rules.yaml",
            "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
        }
        (directory / "agent.yaml").write_text(yaml.safe_dump(config))
        (directory / "rules.yaml").write_text("rules: []\n")
        app = AgentApp(load_config(directory / "agent.yaml"), registry=CollectorRegistry())
        app.start()
        started.append(app)
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok, 20, "the agent's API"
        )
        return Agent(app, port)

    yield start
    for app in started:
        app.stop()


def receiver(name: str, url: str, **http_config: Any) -> dict[str, Any]:
    hook: dict[str, Any] = {"url": url, "send_resolved": True}
    if http_config:
        hook["http_config"] = http_config
    return {"name": name, "webhook_configs": [hook]}


def test_an_incident_is_paged_by_alertmanager_routing_kept_firing_and_resolved(
    start_am: Callable[[dict[str, Any]], Alertmanager],
    start_agent: Callable[..., Agent],
    http_peer: StartPeer,
) -> None:
    pager, chat = http_peer([Reply(200)]), http_peer([Reply(200)])
    am = start_am(
        {
            "route": {
                "receiver": "chat",
                **GROUPING,
                "routes": [
                    {"receiver": "pager", "matchers": ['alertname="AiopsIncident"', 'priority=~"P1|P2"']}
                ],
            },
            "receivers": [receiver("pager", f"{pager.url}/pager"), receiver("chat", f"{chat.url}/chat")],
        }
    )
    agent = start_agent(am.url)

    agent.alert("firing")  # a critical signal on demo-web, a tier 1 service: P1

    [alert] = wait_until(lambda: am.alerts(alertname="AiopsIncident"), 20, "the incident in Alertmanager")
    incident = agent.store.incidents.get(1)
    assert alert["labels"] == {
        "team": "web",
        "alertname": "AiopsIncident",
        "aiops_incident": "1",
        "service": "demo-web",
        "priority": "P1",
        "severity": "critical",
    }
    assert alert["annotations"] == {
        "summary": incident.title,
        "description": "P1 incident #1 on demo-web: open",
        "signature": incident.signature,
        "url": f"{UI}/ui/#/incidents/1",
    }
    first_end = alert["endsAt"]
    wait_until(
        lambda: am.alerts(aiops_incident="1")[0]["endsAt"] > first_end,
        10,
        "a re-send to move the alert's end",
    )
    [page] = [r.json() for r in pager.wait_for(1)]
    assert (page["receiver"], page["status"], page["groupLabels"]) == (
        "pager",
        "firing",
        {"aiops_incident": "1"},
    )
    assert [a["labels"]["aiops_incident"] for a in page["alerts"]] == ["1"]

    agent.alert("resolved")

    wait_until(lambda: not am.alerts(alertname="AiopsIncident"), 20, "the alert to end in Alertmanager")
    resolved = wait_until(
        lambda: [r.json() for r in pager.requests if r.json()["status"] == "resolved"],
        20,
        "the resolved notice",
    )
    [ended] = resolved[0]["alerts"]
    resolved_at = agent.store.incidents.get(1).resolved_at
    assert resolved_at is not None
    assert abs(datetime.fromisoformat(ended["endsAt"]) - resolved_at) < timedelta(milliseconds=1)
    assert chat.requests == [], "a P1 incident is routed to the pager only"


def test_alertmanager_delivers_alerts_to_the_agent_and_the_agents_own_do_not_loop(
    start_am: Callable[[dict[str, Any]], Alertmanager],
    start_agent: Callable[..., Agent],
    http_peer: StartPeer,
) -> None:
    """Every alert goes to the agent, its own AiopsIncident alerts too: they are accepted and ignored.
    A recording copy of the receiver shows what Alertmanager sent the agent."""
    port = free_port()
    copy = http_peer([Reply(200)])
    aiops = receiver("aiops", f"http://127.0.0.1:{port}/api/v1/alerts", authorization={"credentials": TOKEN})
    aiops["webhook_configs"].append({"url": f"{copy.url}/copy", "send_resolved": True})
    am = start_am(
        {"route": {"receiver": "aiops", **GROUPING, "group_by": ["alertname"]}, "receivers": [aiops]}
    )
    agent = start_agent(am.url, port)

    am.post({"labels": LATENCY, "annotations": {"summary": "p99 high"}, "startsAt": now()})

    def sent(alertname: str) -> bool:
        return any(r.json()["groupLabels"] == {"alertname": alertname} for r in copy.requests)

    wait_until(lambda: sent("AiopsIncident"), 20, "Alertmanager to send the agent its own incident")
    wait_until(
        lambda: am.metric("alertmanager_notifications_total", integration="webhook") >= 4,
        20,
        "both notifications to reach the agent and the copy",
    )
    assert am.metric("alertmanager_notifications_failed_total", integration="webhook") == 0
    assert copy.requests[0].headers.get("Authorization") is None  # the token goes to the agent alone
    wait_until(lambda: not agent.store.inbox.pending(), 10, "the agent to apply what it received")
    assert [i.id for i in agent.store.incidents.list()] == [1]
    [signal] = agent.store.incidents.signals(1)
    assert (signal.name, signal.source, signal.evidence) == (
        "DemoHighLatency",
        "alertmanager",
        {"summary": "p99 high"},
    )

    am.post({"labels": LATENCY, "startsAt": now(), "endsAt": now()})

    wait_until(
        lambda: agent.store.incidents.get(1).status == IncidentStatus.RESOLVED, 20, "the incident to resolve"
    )
    wait_until(lambda: not am.alerts(alertname="AiopsIncident"), 20, "the agent's alert to end")
    assert [i.id for i in agent.store.incidents.list()] == [1]


def test_a_raised_priority_replaces_the_alert_in_alertmanager(
    start_am: Callable[[dict[str, Any]], Alertmanager],
) -> None:
    """Labels are an alert's identity: the alert under the old priority ends when the new one fires."""
    am = start_am({"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})
    sink = AlertmanagerSink(SinkSettings("am", am.url))
    opened = datetime.now(UTC) - timedelta(minutes=1)

    def send(priority: Priority) -> None:
        inc = incident_state(7, at=opened, id=7, priority=priority)
        sink.send({"event": "escalation", **incident_payload(inc, datetime.now(UTC), "")})

    send(Priority.P3)
    assert [a["labels"]["priority"] for a in am.alerts(aiops_incident="7")] == ["P3"]
    send(Priority.P2)
    assert [a["labels"]["priority"] for a in am.alerts(aiops_incident="7")] == ["P2"]
