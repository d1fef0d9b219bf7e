"""What every notification sink shares: the settings it is built from, the protocols the notifier
relies on, and one way to POST a JSON document (the project's one HTTP retry policy)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import requests

from integrations.http import Retry, send_with_retries
from integrations.redaction import redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkSettings:
    """One configured sink. Secrets (the URL of a webhook, a routing key) are plain text here and shown
    nowhere: errors and `repr` use the sink's redacted URL. Fields a sink kind does not use stay at
    their defaults (the configuration refuses them for other kinds)."""

    name: str
    url: str
    timeout: float = 5.0
    retry: Retry = field(default_factory=lambda: Retry(retries=2))
    ui_url: str = ""  # the agent's UI as people reach it, for links to an incident; "" for none
    routing_key: str = ""  # pagerduty
    labels: Mapping[str, str] = field(default_factory=dict)  # alertmanager: static labels
    resend: timedelta = timedelta(minutes=1)  # alertmanager: how often active incidents are re-sent

    def link(self, kind: str, record_id: object) -> str:
        """The UI's page for a record (`kind` "incidents" or "changes"), or "" without `ui_url`."""
        return f"{self.ui_url.rstrip('/')}/ui/#/{kind}/{record_id}" if self.ui_url else ""


class Sink(Protocol):
    """Told each notification once (the outbox retries it if `send` raises)."""

    name: str

    def send(self, payload: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Refreshing(Sink, Protocol):
    """A sink that mirrors incidents' state rather than reporting events (Alertmanager forgets an alert
    that is not re-sent): every `resend`, the notifier hands it the current documents of the incidents
    it was told about that are active or resolved less than `validity` ago."""

    resend: timedelta
    validity: timedelta

    def refresh(self, incidents: Sequence[Mapping[str, Any]]) -> None: ...


class HttpSink(ABC):
    """A sink that POSTs JSON to one URL; `kind` names it in errors. The URL is shown without its
    path and query by default: a webhook's path is its credential."""

    kind = "webhook"
    path_is_secret = True

    def __init__(self, settings: SinkSettings, session: requests.Session | None = None):
        self.settings = settings
        self.name = settings.name
        self.session = session or requests.Session()

    @property
    def shown(self) -> str:
        return redact_url(self.settings.url, path=not self.path_is_secret)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.shown!r})"

    @abstractmethod
    def send(self, payload: Mapping[str, Any]) -> None: ...

    def post(self, body: object, url: str | None = None) -> requests.Response:
        """POST `body` as JSON to `url` (the configured one by default), retried by the shared policy;
        raises SourceUnavailable (still failing) or QueryRejected (a 4xx other than 429)."""
        target = url or self.settings.url
        return send_with_retries(
            lambda: self.session.post(target, json=body, timeout=self.settings.timeout),
            self.settings.retry,
            peer=f"{self.kind} sink {self.name}",
            url=self.shown,
            what="POST",
            log=log,
        )
