"""Time to detect: each poll's newest point is evaluated at the poll itself (the grid follows the agent's
polls, not multiples of `step`), so a sample is judged by the first poll after it is in Prometheus, once.

A real Prometheus (1 s scrapes) scrapes a counting exporter: each scrape answers one more than the last,
and the exporter notes when it was asked. Polls run as the scheduler runs them (every poll interval from
one start, here 0.3 s after a scrape) through the real cursor, client and the core's detection stage,
with a static threshold every value crosses, so each judged point is a signal. The signals must be the
scrapes in order, each once and none missing, across single-point windows, a catch-up window after a
missed poll (after a first poll whose natural jitter the grid follows) and a poll that came a little
early; and each judged by the first poll after it is in Prometheus. That moment is measured, not
assumed: each poll first asks Prometheus for the newest scrape it holds, so a loaded machine's slower
ingestion moves the moment instead of failing the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.config.models import QueryConfig, ServicesFile, StaticThreshold
from agent.core.detection import DetectionStage
from agent.core.topology import ServiceMap
from demo.processes import prometheus_binary, start_prometheus, wait_until
from integrations.prometheus import PrometheusClient, RangeCursor
from tests.conftest import require

pytestmark = pytest.mark.integration

STEP = 1.0  # the scrape interval, the step and the poll interval
PHASE = 0.3  # polls come this long after a scrape


class CountingExporter:
    """`scrapes_seen N`, one more on each scrape; `times[n]` is when scrape n was answered."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter.lock:
                    n = len(exporter.times)
                    exporter.times.append(time.time())
                body = f"# TYPE scrapes_seen gauge\nscrapes_seen {n}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def scrapes(self) -> int:
        with self.lock:
            return len(self.times)


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[tuple[CountingExporter, str]]:
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    exporter = CountingExporter()
    proc, url = start_prometheus(tmp_path / "prometheus", {"count": [exporter.address]}, scrape_interval="1s")
    yield exporter, url
    proc.stop()
    exporter.server.shutdown()
    exporter.server.server_close()


def test_each_scrape_is_judged_once_by_the_first_poll_after_it(
    counting: tuple[CountingExporter, str],
) -> None:
    exporter, url = counting
    client = PrometheusClient(url, timeout=5, retries=1)
    query = QueryConfig(
        name="scrapes",
        promql='scrapes_seen{job="count"}',
        detector=None,
        thresholds=[StaticThreshold(above=-1)],
    )
    stage = DetectionStage({}, 0.8, ServiceMap(ServicesFile()))
    cursor = RangeCursor(step=STEP)

    seen = exporter.scrapes()
    wait_until(lambda: exporter.scrapes() > seen, 10, "a fresh scrape", interval=0.01)
    start = exporter.times[seen] + PHASE
    held: list[int] = []  # per poll: the newest scrape Prometheus held when the poll began
    judged: list[tuple[int, int]] = []  # (value, index of the poll that judged it)
    for k in range(14):
        if k == 5:
            continue  # a missed poll: the next window holds two points
        due = start + k * STEP - (0.05 if k == 9 else 0.0)  # k 9 a little early, as scheduler jitter can be
        time.sleep(max(0.0, due - time.time()))
        now = time.time()
        held.append(int(client.query(query.promql, at=now)[0].points[-1][1]))
        window = cursor.window(now)
        assert window is not None, f"poll {k} found nothing due"
        a, b, skipped = window
        assert skipped == 0
        detected = stage.process(query, client.query_range(query.promql, a, b, cursor.step))
        cursor.advance(b)
        judged += [(int(sig.value), len(held) - 1) for sig in detected.signals]

    values = [v for v, _ in judged]
    assert values == list(range(values[0], values[0] + len(values))), (
        f"a scrape judged twice or skipped: {values}"
    )
    assert len(values) >= 12
    for value, poll in judged[1:]:
        first_held = min((i for i, newest in enumerate(held) if newest >= value), default=len(held))
        assert poll <= first_held, (
            f"scrape {value} was in Prometheus at poll {first_held} but judged at poll {poll}: {judged}"
        )
