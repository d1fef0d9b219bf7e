"""Notification sinks: where escalations and SLA breaches go when automation cannot fix something."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests

from integrations.errors import IntegrationError
from integrations.redaction import redact_url

log = logging.getLogger(__name__)


class Sink(Protocol):
    name: str

    def send(self, payload: Mapping[str, Any]) -> None: ...


class WebhookSink:
    """POSTs a JSON document; retries transport errors and 5xx a few times, then raises."""

    def __init__(
        self,
        name: str,
        url: str,
        timeout: float = 5.0,
        retries: int = 2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.name = name
        self._url = url
        self.timeout = timeout
        self.retries = retries
        self.session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"WebhookSink({self.name!r}, {redact_url(self._url, path=False)!r})"

    def send(self, payload: Mapping[str, Any]) -> None:
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.post(self._url, json=dict(payload), timeout=self.timeout)
            except requests.RequestException as e:
                problem = type(e).__name__
            else:
                if resp.status_code < 300:
                    return
                problem = f"HTTP {resp.status_code}"
                if resp.status_code < 500 and resp.status_code != 429:
                    break
            if attempt < self.retries:
                self._sleep(0.5 * 2**attempt)
        raise IntegrationError(f"webhook {self.name} ({redact_url(self._url, path=False)}) failed: {problem}")


SINKS: dict[str, type[WebhookSink]] = {"webhook": WebhookSink}
