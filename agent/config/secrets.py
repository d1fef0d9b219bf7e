"""The secret values a configuration holds, for the redactor (integrations/redaction.py) to mask."""

from __future__ import annotations

from urllib.parse import urlsplit

from agent.config.bundle import Config
from integrations.redaction import url_secrets

WEBHOOK_PATH_MIN = 16  # a path this long in a webhook URL is its credential (and what HTTP errors quote)


def secrets_of(config: Config) -> list[str]:
    """Every secret value the configuration holds."""
    a = config.agent
    out = [t.token.get_secret_value() for t in a.api.tokens]
    out += [v.get_secret_value() for v in a.prometheus.headers.values()]
    out += url_secrets(a.prometheus.url) + url_secrets(a.store.url)
    for sink in a.notifications:
        url = sink.url.get_secret_value()
        out += url_secrets(url)
        if sink.type in ("webhook", "slack"):  # the URL of a webhook is its credential
            out.append(url)
            path = urlsplit(url).path
            if len(path) >= WEBHOOK_PATH_MIN:
                out.append(path)
        if sink.routing_key is not None:
            out.append(sink.routing_key.get_secret_value())
    for source in a.log_sources:
        out += url_secrets(source.url or "")
    for runbook in config.catalog.runbooks.values():
        out += [str(p.default) for p in runbook.params.values() if p.secret and p.default is not None]
    return out
