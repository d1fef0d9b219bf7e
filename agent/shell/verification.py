"""Post-change verification: a PromQL condition must return at least one series before the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from integrations.errors import IntegrationError
from integrations.prometheus import PrometheusClient


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    detail: str
    checks: int
    elapsed: float


class Verifier:
    def __init__(
        self,
        client: PrometheusClient,
        interval: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.interval = interval.total_seconds()
        self._monotonic = monotonic
        self._sleep = sleep

    def wait(self, promql: str, deadline: timedelta, cancelled: Callable[[], bool]) -> VerificationResult:
        """Check at once, then every interval, until the condition holds, the deadline passes or we are cancelled.

        An unreachable Prometheus is retried until the deadline: no data is never taken as success.
        """
        start = self._monotonic()
        end = start + deadline.total_seconds()
        checks, last = 0, "not checked"
        while True:
            checks += 1
            try:
                result = self.client.query(promql)
            except IntegrationError as e:
                last = f"query failed: {e}"
            else:
                if result:
                    values = ", ".join(f"{s.points[0][1]:g}" for s in result[:3])
                    elapsed = self._monotonic() - start
                    return VerificationResult(
                        True, f"condition holds ({values}) after {elapsed:.1f}s", checks, elapsed
                    )
                last = "condition returned no series"
            now = self._monotonic()
            if now >= end or cancelled():
                why = "cancelled" if now < end else f"deadline {deadline.total_seconds():g}s passed"
                return VerificationResult(False, f"{why}; last check: {last}", checks, now - start)
            self._sleep(min(self.interval, max(0.0, end - now)))
