"""PagerDuty's Events API v2: an incident is one PagerDuty alert, triggered, acknowledged and resolved
under one dedup key, so every event about the incident lands on the same page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.errors import IntegrationError
from integrations.notify.base import HttpSink

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ACTIONS = {
    "incident_opened": "trigger",
    "incident_reopened": "trigger",
    "escalation": "trigger",
    "sla_breach": "trigger",
    "sla_warning": "trigger",
    "incident_acknowledged": "acknowledge",
    "incident_resolved": "resolve",
}
SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
SUMMARY_MAX = 1024  # PagerDuty's limit
SIGNALS_SHOWN = 20


def dedup_key(incident_id: object) -> str:
    return f"aiops-{incident_id}"


def to_event(doc: Mapping[str, Any], routing_key: str, link: str = "") -> dict[str, Any]:
    """The Events API v2 body for one notification. Acknowledge and resolve carry only the key;
    a trigger carries what the page shows."""
    event = str(doc.get("event", ""))
    action = ACTIONS.get(event)
    if action is None:
        raise IntegrationError(f"pagerduty sinks take incident events, not {event!r}")
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(doc["incident_id"]),
    }
    if action != "trigger":
        return body
    summary = f"[{doc['priority']}] {doc['title']}"
    body["payload"] = {
        "summary": summary[:SUMMARY_MAX],
        "source": doc["service"] or "aiops-agent",
        "severity": SEVERITY.get(str(doc["priority"]), "warning"),
        "timestamp": doc["at"],
        "component": doc["service"],
        "class": event,
        "custom_details": {
            "incident": doc["incident_id"],
            "status": doc["status"],
            "reason": doc["reason"],
            "signature": doc["signature"],
            "signals": [s["name"] for s in doc.get("signals", [])[:SIGNALS_SHOWN]],
        },
    }
    known = doc.get("known_error")
    if known:  # what the person paged can do at once
        body["payload"]["custom_details"]["workaround"] = f"known error #{known['id']}: {known['workaround']}"
    body["client"] = "aiops-agent"
    if link:
        body["client_url"] = link
        body["links"] = [{"href": link, "text": f"incident #{doc['incident_id']}"}]
    return body


class PagerDutySink(HttpSink):
    """Sends to the Events API (`url`, PagerDuty's by default) with the integration's `routing_key`."""

    kind = "pagerduty"
    path_is_secret = False

    def send(self, payload: Mapping[str, Any]) -> None:
        link = self.settings.link("incidents", payload["incident_id"])
        self.post(to_event(payload, self.settings.routing_key, link))
