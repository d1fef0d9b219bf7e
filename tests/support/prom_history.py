"""Waiting for a freshly started Prometheus to hold enough history on the 1 s grid for a test."""

from __future__ import annotations

import math
import time

import requests

from demo.processes import wait_until


def wait_for_history(url: str, promqls: tuple[str, ...], seconds: int, timeout: float = 30.0) -> None:
    """Block until every series of every query has a point at each of the last `seconds` + 1 grid seconds.

    A session Prometheus may have started a moment ago; tests that expect a point at every step of a
    recent window must not race its first scrapes.
    """

    def complete() -> bool:
        end = math.floor(time.time())
        for promql in promqls:
            r = requests.post(
                f"{url}/api/v1/query_range",
                data={"query": promql, "start": end - seconds, "end": end, "step": 1},
                timeout=2,
            )
            result = r.json()["data"]["result"]
            if not result or any(len(s["values"]) != seconds + 1 for s in result):
                return False
        return True

    wait_until(complete, timeout, f"{seconds} s of scraped history in Prometheus", interval=0.2)
