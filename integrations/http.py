"""Calling an HTTP API that is sometimes briefly down: one retry policy for every client in integrations.

Timeouts, connection errors, 429 and 5xx are retried with exponential backoff (the peer may answer next
time) and each retry is logged with its attempt number; any other 4xx means the peer understood the
request and refused it, so it raises QueryRejected at once; after the last attempt SourceUnavailable says
the data is missing, not anomalous.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from integrations.errors import QueryRejected, SourceUnavailable
from integrations.redaction import redact_url

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_URL_IN_ERROR = re.compile(r"(with url: )\S+")


@dataclass(frozen=True)
class Retry:
    """How hard to try: `retries` after the first attempt, waiting backoff, 2 x backoff, ... (capped)."""

    retries: int = 3
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), self.max_delay)


def send_with_retries(
    send: Callable[[], requests.Response],
    retry: Retry,
    *,
    peer: str,
    url: str,
    what: str,
    log: logging.Logger,
) -> requests.Response:
    """Call `send()` until it answers below 400, and return that response.

    `peer` ("Prometheus") and `url` name the other side in errors; `what` (the API path) says which call
    failed in the retry warnings, which go to the caller's `log`.
    """
    attempts = retry.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            resp = send()
        except (requests.Timeout, requests.ConnectionError) as e:
            problem = f"{type(e).__name__}: {_short(e)}"
        else:
            if resp.status_code < 400:
                return resp
            if resp.status_code not in RETRY_STATUS:
                raise QueryRejected(
                    f"{peer} at {redact_url(url)} refused the request (HTTP {resp.status_code}): "
                    f"{error_text(resp)}"
                )
            problem = f"HTTP {resp.status_code}"
        if attempt == attempts:
            raise SourceUnavailable(
                f"{peer} at {redact_url(url)} unavailable after {attempts} attempts: {problem}"
            )
        delay = retry.delay(attempt)
        log.warning(
            "%s %s failed (attempt %d/%d): %s; retrying in %.1fs",
            peer,
            what,
            attempt,
            attempts,
            problem,
            delay,
        )
        retry.sleep(delay)
    raise AssertionError("unreachable")


def envelope_data(resp: requests.Response, peer: str) -> dict[str, Any]:
    """The `data` of a `{"status": "success", "data": {...}}` answer, the envelope Prometheus and Loki share."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        raise SourceUnavailable(
            f"{peer} answered HTTP {resp.status_code} with a body that is not JSON"
        ) from None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"{peer} answered with unexpected JSON")
    if body.get("status") != "success":
        raise QueryRejected(f"{peer} query failed: {body.get('error', 'unknown error')}")
    return dict(body.get("data") or {})


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: decoding a large answer creates hundreds of thousands of
    containers, and each collection their allocation triggers walks all of them again (a tenth of a
    50,000-series poll). Decoded JSON holds no cycles, so reference counting frees it all the same;
    pause over the decode and the conversion, so the tree is gone before collection resumes.
    Nests and overlaps across threads; collection resumes when the last pause ends."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def error_text(resp: requests.Response) -> str:
    """The peer's own explanation: the `error` of a JSON body, else the start of the text body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip()
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return resp.text[:300].strip()


def _short(e: Exception) -> str:
    """The gist of a transport error, without the path requests quotes ("with url: /..."): a
    webhook's path is its credential, and errors end up in logs and the store."""
    text = str(e)
    if "Connection refused" in text:
        return "connection refused"
    return _URL_IN_ERROR.sub(r"\1…", text)[:200]
