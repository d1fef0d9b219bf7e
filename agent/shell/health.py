"""Health of the agent's own sources: reported on /readyz, /metrics and in logs on every change."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class SourceStatus:
    up: bool | None = None
    last_success: datetime | None = None
    last_error: str = ""
    consecutive_failures: int = 0


class SourceHealth:
    """Thread-safe table of source status; logs each transition between up and down once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, SourceStatus] = {}

    def success(self, source: str, at: datetime) -> None:
        with self._lock:
            st = self._status.setdefault(source, SourceStatus())
            if st.up is False:
                log.info("source %s recovered after %d failed polls", source, st.consecutive_failures)
            st.up, st.last_success, st.consecutive_failures, st.last_error = True, at, 0, ""

    def failure(self, source: str, error: str) -> None:
        with self._lock:
            st = self._status.setdefault(source, SourceStatus())
            if st.up is not False:
                log.error("source %s is down: %s (its series are not judged until it is back)", source, error)
            st.up = False
            st.consecutive_failures += 1
            st.last_error = error

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                name: {
                    "up": st.up,
                    "last_success": st.last_success.isoformat() if st.last_success else None,
                    "consecutive_failures": st.consecutive_failures,
                    "last_error": st.last_error,
                }
                for name, st in self._status.items()
            }
