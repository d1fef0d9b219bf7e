"""Source health: an unreachable Prometheus is reported as down and its missing data is never judged.

Builds the real Agent from a config directory in tmp_path (shipped services and runbooks) with a real
SQLite store, and polls a dead port and then the real test Prometheus. The query used always crosses
its static threshold when it has data, so "no signal while the source is down" cannot pass vacuously.
Also checks post-change verification against the real Prometheus.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.shell.app import AgentApp
from agent.shell.leader import Leader
from agent.shell.polling import MetricPoller
from agent.shell.store import Store
from agent.shell.verification import Verifier
from demo.processes import free_port, wait_until
from integrations.prometheus import PrometheusClient
from tests.conftest import PromStack
from tests.support.prom_history import wait_for_history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUERY = "demo_zeroed"
SOURCE = f"prometheus:{QUERY}"

AGENT_YAML = """\
dry_run: true
store:
  url: sqlite:///{db}
prometheus:
  url: http://127.0.0.1:9
  step: 1s
  poll_interval: 1s
  timeout: 1s
  retries: 1
  backoff: 50ms
  max_backfill: 5m
queries:
  - name: {query}
    description: Always 0 while the demo target is scraped, so any data at all crosses the threshold.
    promql: up{{job="demo"}} * 0
    detector: null
    thresholds:
      - {{below: 1, severity: critical}}
api:
  enabled: false
services_file: services.yaml
rules_file: rules.yaml
catalog_file: ../runbooks/catalog.yaml
"""

RULES_YAML = """\
rules:
  - name: diagnose-zeroed
    match:
      signals: [{query}]
    runbook: collect_diagnostics
    params:
      incident_id: "{incident.id}"
      service: "{service}"
      instance: "{labels.instance}"
"""


def write_config(tmp_path: Path) -> Path:
    """A config directory like the shipped one: services and runbooks copied, agent and rules written."""
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    cfg = tmp_path / "config"
    cfg.mkdir()
    shutil.copy(ROOT / "config" / "services.yaml", cfg / "services.yaml")
    (cfg / "rules.yaml").write_text(RULES_YAML.replace("{query}", QUERY))
    (cfg / "agent.yaml").write_text(AGENT_YAML.format(db=tmp_path / "aiops.db", query=QUERY))
    return cfg / "agent.yaml"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Harness:
    app: AgentApp
    leader: Leader
    registry: CollectorRegistry
    store: Store

    @property
    def poller(self) -> MetricPoller:
        (poller,) = self.leader.metric_pollers
        return poller

    def poll(self) -> None:
        self.poller.poll()

    def point_at(self, url: str) -> None:
        self.app.prometheus.url = url

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"source": SOURCE, **labels}) or 0.0

    def health(self) -> dict[str, object]:
        return self.app.health.snapshot()[SOURCE]

    def signals(self) -> float:
        return sum(
            s.value
            for m in self.registry.collect()
            if m.name == "aiops_signals"
            for s in m.samples
            if s.name == "aiops_signals_total"
        )

    def wait_for_window(self, points: int = 1) -> None:
        cursor = self.poller.cursor

        def due() -> bool:
            w = cursor.window(time.time())
            return w is not None and (w[1] - w[0]) / cursor.step + 1 >= points

        wait_until(due, 10, f"a poll window of {points} grid point(s)", interval=0.05)


@pytest.fixture(scope="module")
def stack(prometheus_stack: PromStack) -> PromStack:
    """The shared stack, once it holds a few seconds of the demo target on the 1 s grid."""
    wait_for_history(prometheus_stack.url, ('up{job="demo"}',), 3)
    return prometheus_stack


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    registry = CollectorRegistry()
    app = AgentApp(load_config(write_config(tmp_path)), registry=registry)
    app.prometheus.url = dead_url()
    leader = app.lead(inline=True)
    yield Harness(app, leader, registry, app.store)
    app.prometheus.session.close()
    app.stop()


def test_dead_source_is_down_and_its_missing_data_is_not_an_anomaly(
    harness: Harness, stack: PromStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.shell.health")

    harness.poll()

    assert harness.metric("aiops_polls_total") == 1
    assert harness.metric("aiops_poll_errors_total") == 1
    assert harness.registry.get_sample_value("aiops_source_up", {"source": SOURCE}) == 0
    health = harness.health()
    assert health["up"] is False
    assert health["consecutive_failures"] == 1
    assert health["last_success"] is None
    assert "unavailable after 2 attempts" in str(health["last_error"])
    assert "connection refused" in str(health["last_error"])
    assert harness.metric("aiops_samples_processed_total") == 0
    assert harness.signals() == 0
    assert harness.leader.core.correlator.active() == []
    assert harness.store.incidents.list() == []
    assert harness.poller.cursor.next_ts is None, "a failed poll must not move the cursor"

    harness.wait_for_window()
    harness.poll()
    assert harness.health()["consecutive_failures"] == 2
    assert harness.signals() == 0 and harness.store.incidents.list() == []
    down_logs = [r for r in caplog.records if "is down" in r.getMessage()]
    assert len(down_logs) == 1, "the transition to down is logged once, not on every failed poll"

    harness.point_at(stack.url)
    harness.wait_for_window()
    harness.poll()

    health = harness.health()
    assert health["up"] is True
    assert health["consecutive_failures"] == 0 and health["last_error"] == ""
    assert health["last_success"] is not None
    assert harness.registry.get_sample_value("aiops_source_up", {"source": SOURCE}) == 1
    assert harness.metric("aiops_poll_errors_total") == 2
    assert harness.metric("aiops_polls_total") == 3
    assert harness.metric("aiops_samples_processed_total") == 1  # first good poll: the newest grid point
    assert any("recovered after 2 failed polls" in r.getMessage() for r in caplog.records)
    # contrast: the same query with data does cross its threshold, so the silence above meant something
    assert harness.signals() == 1
    [incident] = harness.store.incidents.list()
    assert incident.service == "demo-web"


def test_polls_after_an_outage_count_every_missed_sample_once(harness: Harness, stack: PromStack) -> None:
    cursor = harness.poller.cursor
    harness.point_at(stack.url)
    harness.poll()
    resume_at = cursor.next_ts
    assert resume_at is not None and harness.metric("aiops_samples_processed_total") == 1

    harness.point_at(dead_url())
    harness.wait_for_window()
    harness.poll()
    assert cursor.next_ts == resume_at
    assert harness.health()["up"] is False

    harness.point_at(stack.url)
    harness.wait_for_window(points=3)
    harness.poll()

    assert cursor.next_ts is not None
    missed = round((cursor.next_ts - resume_at) / cursor.step)
    assert missed >= 3
    assert harness.metric("aiops_samples_processed_total") == 1 + missed
    assert harness.health()["up"] is True


# ------------------------------------------------------------------ verification against the real Prometheus


@pytest.fixture
def verifier() -> Iterator[Callable[[str], Verifier]]:
    """Verifiers checking every 0.2 s through clients that are closed after the test."""
    clients: list[PrometheusClient] = []

    def make(url: str) -> Verifier:
        clients.append(PrometheusClient(url, timeout=1.0, retries=0))
        return Verifier(clients[-1], timedelta(seconds=0.2))

    yield make
    for c in clients:
        c.session.close()


def never() -> bool:
    return False


def test_verification_passes_at_once_when_the_condition_holds(
    stack: PromStack, verifier: Callable[[str], Verifier]
) -> None:
    result = verifier(stack.url).wait("vector(1)", timedelta(seconds=5), never)

    assert result.ok
    assert result.checks == 1
    assert result.elapsed < 1.0
    assert result.detail.startswith("condition holds (1)")


def test_verification_fails_at_the_deadline_when_the_condition_never_holds(
    stack: PromStack, verifier: Callable[[str], Verifier]
) -> None:
    t0 = time.monotonic()

    result = verifier(stack.url).wait("vector(0) > 1", timedelta(seconds=1), never)

    assert not result.ok
    assert "deadline 1s passed" in result.detail
    assert "condition returned no series" in result.detail
    assert result.checks >= 2  # every 0.2 s from 0 to 1 s; fewer only if queries are slow
    assert 1.0 <= result.elapsed < 3.0
    assert time.monotonic() - t0 < 3.0


def test_verification_against_a_dead_prometheus_fails_instead_of_passing(
    verifier: Callable[[str], Verifier],
) -> None:
    result = verifier(dead_url()).wait("vector(1)", timedelta(seconds=0.6), never)

    assert not result.ok
    assert "query failed" in result.detail
    assert "unavailable" in result.detail
    assert result.checks >= 2


def test_verification_stops_when_cancelled(stack: PromStack, verifier: Callable[[str], Verifier]) -> None:
    result = verifier(stack.url).wait("vector(0) > 1", timedelta(seconds=30), lambda: True)

    assert not result.ok
    assert result.detail.startswith("cancelled")
    assert result.checks == 1
