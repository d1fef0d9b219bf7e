"""Secrets out of everything the agent shows: logs, API responses, /readyz, /metrics, the store, the CLI.

Two tools, used everywhere instead of ad-hoc masking (the configuration's secrets are listed by
`agent.config.secrets`). `redact_url` hides the credentials a URL carries
(the password of its user info, credential-like query parameters) wherever a URL is shown. A
`Redactor` knows the configuration's secret values (API tokens, header values, passwords in URLs,
notification URLs, secret runbook parameters) and masks any text or JSON-like value that contains one;
installed on the log handlers it covers every log line, whatever library wrote it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET = 6  # shorter values would mask ordinary words; config validation asks more of real secrets
_CREDENTIAL_PARAM = re.compile(r"(?i)token|passw|secret|key|signature|sig$|auth|credential")


def redact_url(url: str, path: bool = True) -> str:
    """`url` with the password of its user info and the values of credential-like query parameters
    masked; anything that does not parse as a URL comes back unchanged. Without `path`, only scheme,
    host and port remain: a webhook's path and query are its credential."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not path:
        return f"{parts.scheme}://{parts.hostname or '?'}{f':{port}' if port else ''}/…"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_CREDENTIAL_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _CREDENTIAL_PARAM.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL: its password and the values of its credential-like parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out = [parts.password] if parts.password else []
    out += [v for k, v in parse_qsl(parts.query) if _CREDENTIAL_PARAM.search(k)]
    return out


class Redactor:
    """Masks known secret values in text and in JSON-like values (dicts, lists, strings)."""

    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for s in secrets if s and len(s) >= MIN_SECRET}
        values |= {quote(s, safe="") for s in values}  # as they appear inside a URL or a form body
        ordered = sorted(values, key=len, reverse=True)  # a secret containing another is masked whole
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def value(self, value: Any) -> Any:
        """`value` with secrets masked in every string it holds (keys included); other types unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def install(self, logger: logging.Logger | None = None) -> None:
        """Mask secrets in every record that reaches `logger`'s handlers (the root logger's by default),
        replacing a redactor installed before."""
        for handler in (logger or logging.getLogger()).handlers:
            for old in [f for f in handler.filters if isinstance(f, _LogFilter)]:
                handler.removeFilter(old)
            handler.addFilter(_LogFilter(self))


class _LogFilter(logging.Filter):
    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self.redactor.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
