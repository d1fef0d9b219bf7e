"""The generic webhook: the notification's JSON document as it is, for receivers of one's own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.notify.base import HttpSink


class WebhookSink(HttpSink):
    """POSTs the payload (`event` plus the incident or change it is about) as JSON."""

    kind = "webhook"

    def send(self, payload: Mapping[str, Any]) -> None:
        self.post(dict(payload))
