"""Alertmanager as a sink: each incident the sink is told about is an alert in the team's Alertmanager,
so pages follow the routing, grouping, inhibition and silences the team already has.

An alert is its label set: `alertname="AiopsIncident"`, `aiops_incident` (the incident's id),
`service`, `priority`, `severity`, plus the sink's static labels. Alertmanager ends an alert that is
not posted again, so a firing one is posted with `endsAt` `validity` (4 x `resend`) ahead, and the
notifier posts the incidents again every `resend` while they are active (`Refreshing`); a resolved
incident is posted with its resolution time as `endsAt`. A priority or severity that rises changes the
label set: the alert under the old one is ended at once (or, after a restart, when its `endsAt` passes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.notify.base import HttpSink, SinkSettings

ALERTNAME = "AiopsIncident"
INCIDENT_LABEL = "aiops_incident"
OWN_LABELS = frozenset({"alertname", INCIDENT_LABEL, "service", "priority", "severity"})
API_PATH = "/api/v2/alerts"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def to_alert(doc: Mapping[str, Any], settings: SinkSettings, expires: datetime) -> dict[str, Any]:
    """An incident's document as an alert for `POST /api/v2/alerts`: firing until `expires` while the
    incident is active, ended at its resolution once resolved."""
    incident = doc["incident_id"]
    labels = {
        **settings.labels,
        "alertname": ALERTNAME,
        INCIDENT_LABEL: str(incident),
        "service": str(doc["service"]),
        "priority": str(doc["priority"]),
        "severity": str(doc["severity"]),
    }
    annotations = {
        "summary": str(doc["title"]),
        "description": f"{doc['priority']} incident #{incident} on {doc['service']}: {doc['status']}",
        "signature": str(doc["signature"]),
    }
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": doc["opened_at"],
        "endsAt": doc.get("resolved_at") or expires.isoformat(),
    }
    link = settings.link("incidents", incident)
    if link:
        annotations["url"] = link
        alert["generatorURL"] = link
    return alert


class AlertmanagerSink(HttpSink):
    """Posts incidents to `<url>/api/v2/alerts` (`url` is Alertmanager's base URL, with its route
    prefix if it has one); `now` reads the clock Alertmanager's `endsAt` is compared with."""

    kind = "alertmanager"
    path_is_secret = False

    def __init__(
        self,
        settings: SinkSettings,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = _utcnow,
    ):
        super().__init__(settings, session)
        self.resend = settings.resend
        self.validity = 4 * settings.resend
        self._now = now
        self._api = settings.url.rstrip("/") + API_PATH
        self._firing: dict[int, dict[str, str]] = {}  # incident id -> label set last posted firing

    def send(self, payload: Mapping[str, Any]) -> None:
        self._post([payload])

    def refresh(self, incidents: Sequence[Mapping[str, Any]]) -> None:
        self._post(incidents)
        held = {int(doc["incident_id"]) for doc in incidents}
        for gone in set(self._firing) - held:
            del self._firing[gone]

    def _post(self, docs: Sequence[Mapping[str, Any]]) -> None:
        if not docs:
            return
        now = self._now()
        alerts: list[dict[str, Any]] = []
        firing: dict[int, dict[str, str] | None] = {}
        for doc in docs:
            alert = to_alert(doc, self.settings, now + self.validity)
            incident = int(doc["incident_id"])
            before = self._firing.get(incident)
            resolved = bool(doc.get("resolved_at"))
            if before is not None and before != alert["labels"]:
                ended = alert["endsAt"] if resolved else now.isoformat()
                alerts.append({**alert, "labels": before, "endsAt": ended})
            alerts.append(alert)
            firing[incident] = None if resolved else alert["labels"]
        self.post(alerts, self._api)
        for incident, labels in firing.items():
            if labels is None:
                self._firing.pop(incident, None)
            else:
                self._firing[incident] = labels
