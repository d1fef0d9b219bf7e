"""Notification sinks: where incidents, escalations and SLA breaches go, by kind of receiver.

Each sink is told a notification's document: `event` plus the incident's (`incident_id`,
`signature`, `title`, `service`, `priority`, `severity`, `status`, `reason`, `at`, `opened_at`,
`acknowledged_at`, `resolved_at`, `signals`) or, for `remediation`, the change's. Every kind POSTs
through the one retry policy of `integrations.http`; `SINKS` names the kinds the configuration's
`type` chooses from.
"""

from __future__ import annotations

from integrations.notify.alertmanager import AlertmanagerSink
from integrations.notify.base import HttpSink, Refreshing, Sink, SinkSettings
from integrations.notify.pagerduty import PagerDutySink
from integrations.notify.slack import SlackSink
from integrations.notify.webhook import WebhookSink

SINKS: dict[str, type[HttpSink]] = {
    "webhook": WebhookSink,
    "slack": SlackSink,
    "pagerduty": PagerDutySink,
    "alertmanager": AlertmanagerSink,
}

__all__ = [
    "SINKS",
    "AlertmanagerSink",
    "HttpSink",
    "PagerDutySink",
    "Refreshing",
    "Sink",
    "SinkSettings",
    "SlackSink",
    "WebhookSink",
]
