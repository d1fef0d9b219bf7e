"""Warm start against a real Prometheus: a fresh agent learns from the query's past on its first poll, so
it judges the first live points with warm detectors; the same agent without warm-up is blind for
hundreds of points.

Prometheus starts on six hours of backfilled history (promtool blocks) of three series, one of which
holds a spike two hours back; small exporters continue the same series live (one per instance, so the
`instance` Prometheus attaches is the backfilled one). A step fault is then injected into one live
series. Both agents are driven poll by poll from the test, on the same windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

import detectors
from agent.clock import ManualClock
from agent.config import load_config
from agent.shell.app import AgentApp
from agent.shell.leader import Leader
from agent.shell.polling import MetricPoller
from demo.processes import prometheus_binary, wait_until
from tests.conftest import require
from tests.support.backfill import (
    BackfilledPrometheus,
    Fault,
    SeriesExporter,
    generate,
    promtool_binary,
    start_prometheus_with_history,
    synthetic_series,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
METRIC = "svc_latency_seconds"
PROMQL = f'{METRIC}{{job="warm"}}'
STEP = 5.0  # the history's grid and the agent's step: 6 h is 4,320 points, the ensemble needs ~200
HISTORY = 6 * 3600.0
MARGIN = 600.0  # backfill a little more than the warm-up reaches back, so all of it is there
SEED = 11
SERIES = 3
FAULTED = 0  # the live step fault goes here
SPIKED = 1  # the history's spike is here
# The default threshold: at a 5 s step the false-alarm budget (0.05 a day) puts each series' line at
# about one normal point in 350,000, so the ten normal live points the test judges raise nothing (before
# the budget, 0.8 meant one point in 3,000 at any step and this test needed 0.9).
THRESHOLD = 0.8


@dataclass
class Stack:
    prometheus: BackfilledPrometheus
    exporters: list[SeriesExporter]
    history_end: float
    spike: Fault

    @property
    def url(self) -> str:
        return self.prometheus.url


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Six hours of history ending just before now, continued live by an exporter per instance."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    require(promtool_binary() is not None, "promtool (Debian package prometheus)")
    exporters = [SeriesExporter.start(seed=SEED + i) for i in range(SERIES)]
    try:
        end = math.floor(time.time() / STEP) * STEP - STEP
        spike = Fault(at=end - 2 * 3600, size=3.0, kind="spike", duration=60)
        labels = [{"job": "warm", "instance": e.address} for e in exporters]
        series = synthetic_series(METRIC, labels, seed=SEED, faults={SPIKED: [spike]})
        live = synthetic_series(METRIC, labels, seed=SEED)  # the spike is history: not served live
        for exporter, s in zip(exporters, live, strict=True):
            exporter.publish([s])
        prometheus = start_prometheus_with_history(
            tmp_path / "prometheus",
            generate(series, end - HISTORY - MARGIN, end, STEP, seed=SEED),
            {"warm": [e.address for e in exporters]},
        )
    except BaseException:
        for e in exporters:
            e.stop()
        raise
    yield Stack(prometheus, exporters, end, spike)
    prometheus.stop()
    for e in exporters:
        e.stop()


@dataclass
class Agent:
    app: AgentApp
    leader: Leader
    registry: CollectorRegistry

    @property
    def poller(self) -> MetricPoller:
        (poller,) = self.leader.metric_pollers
        return poller

    def counts(self) -> tuple[int, int]:
        return self.leader.core.detection.counts()

    def signals(self) -> float:
        return sum(
            s.value
            for m in self.registry.collect()
            if m.name == "aiops_signals"
            for s in m.samples
            if s.name == "aiops_signals_total"
        )

    def stop(self) -> None:
        self.app.prometheus.session.close()
        self.app.stop()


def start_agent(directory: Path, prometheus_url: str, warmup_history: str, clock: ManualClock) -> Agent:
    """A fresh agent (its own SQLite store) with one ensemble-judged query on the backfilled metric."""
    directory.mkdir()
    agent = {
        "dry_run": True,
        "store": {"url": f"sqlite:///{directory / 'aiops.db'}"},
        "prometheus": {"url": prometheus_url, "step": f"{STEP:g}s", "timeout": "10s", "retries": 1},
        "queries": [{"name": "svc_latency", "promql": PROMQL, "detector": "default", "threshold": THRESHOLD}],
        "detection": {"warmup_history": warmup_history},
        "api": {"enabled": False},
        "services_file": "services.yaml",
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
    }
    services = {"services": [{"name": "warm-svc", "tier": 2, "selectors": [{"match": {"job": "warm"}}]}]}
    (directory / "agent.yaml").write_text(yaml.safe_dump(agent, sort_keys=False))
    (directory / "services.yaml").write_text(yaml.safe_dump(services, sort_keys=False))
    (directory / "rules.yaml").write_text("rules: []\n")
    registry = CollectorRegistry()
    app = AgentApp(load_config(directory / "agent.yaml"), clock=clock, registry=registry)
    try:
        return Agent(app, app.lead(inline=True), registry)
    except BaseException:
        app.stop()
        raise


@dataclass
class Pair:
    """The agent under test (6 h of warm-up history) and its control (none), otherwise identical, on
    one clock: each poll reads the wall clock once, so both judge exactly the same windows."""

    warm: Agent
    cold: Agent
    clock: ManualClock

    def poll(self) -> None:
        self.clock.set(datetime.now(UTC))
        self.warm.poller.poll()
        self.cold.poller.poll()


@pytest.fixture
def agents(tmp_path: Path, stack: Stack) -> Iterator[Pair]:
    clock = ManualClock(datetime.now(UTC))
    started: list[Agent] = []
    try:
        started.append(start_agent(tmp_path / "warm", stack.url, "6h", clock))
        started.append(start_agent(tmp_path / "cold", stack.url, "0s", clock))
        yield Pair(started[0], started[1], clock)
    finally:
        for agent in started:
            agent.stop()


def query(url: str, promql: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
    """An instant query (at `at`, default now): each series' labels and value."""
    params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    r = requests.get(f"{url}/api/v1/query", params=params, timeout=5)
    r.raise_for_status()
    return [(s["metric"], float(s["value"][1])) for s in r.json()["data"]["result"]]


def judged_peak(stack: Stack, instance: str) -> float:
    """The default detector judging, offline, every point Prometheus holds of one series from the start
    of the warm-up window to the end of the history's spike: its highest score during the spike."""
    spike = stack.spike
    r = requests.get(
        f"{stack.url}/api/v1/query_range",
        params={
            "query": f'{METRIC}{{job="warm",instance="{instance}"}}',
            "start": f"{stack.history_end - HISTORY:.3f}",
            "end": f"{spike.at + spike.duration:.3f}",
            "step": f"{STEP:g}",
        },
        timeout=10,
    )
    r.raise_for_status()
    [series] = r.json()["data"]["result"]
    bank = detectors.build_bank(detectors.DEFAULT_KIND, n=1)
    peak = 0.0
    for t, v in series["values"]:
        score = float(bank.update(np.array([float(t)]), np.array([float(v)]))[0])
        if t >= spike.at and bank.warm()[0]:  # the agent judges a point only once its series is warm
            peak = max(peak, score)
    return peak


def test_a_fresh_agent_learns_from_backfilled_history_and_flags_a_live_fault_at_once(
    stack: Stack, agents: Pair
) -> None:
    warm, cold = agents.warm, agents.cold
    counted = query(stack.url, f"count_over_time({PROMQL}[6h])", at=stack.history_end)
    assert len(counted) == SERIES
    assert all(n >= HISTORY / STEP for _, n in counted), "6 h of backfilled points per series"
    # the history's spike is an anomaly the detector flags when its points are judged: an agent that
    # judged its warm-up history would open an incident for it
    assert judged_peak(stack, stack.exporters[SPIKED].address) >= THRESHOLD

    # live samples continue the backfilled series (same labels), so the agents' past meets their present
    wait_until(
        lambda: len(query(stack.url, f"timestamp({PROMQL}) > {stack.history_end}")) == SERIES,
        15,
        "live samples after the backfilled history",
    )

    agents.poll()

    assert warm.counts() == (SERIES, 0), "warm from the first poll: the history was learnt"
    assert warm.signals() == 0
    assert warm.app.store.incidents.list() == [], "history trains, it is never judged"
    assert cold.counts() == (0, SERIES), "without warm-up history every series is still warming"
    assert cold.poller.cursor.next_ts == warm.poller.cursor.next_ts

    def due() -> bool:
        return warm.poller.cursor.window(time.time()) is not None

    # the live points that follow are normal to the warm detectors too; right after that grid point
    # the fault starts, so the next grid point is the first to show it
    wait_until(due, 2 * STEP, "the next grid point", interval=0.05)
    agents.poll()
    assert warm.signals() == 0 and warm.app.store.incidents.list() == []
    fault_at = time.time()
    stack.exporters[FAULTED].inject(0, Fault(at=fault_at, size=3.0))
    faulted = stack.exporters[FAULTED].address

    windows = 0
    while not warm.app.store.incidents.list() and windows < 3:
        wait_until(due, 2 * STEP, "the next grid point", interval=0.05)
        agents.poll()
        windows += 1

    incidents = warm.app.store.incidents.list()
    assert len(incidents) == 1, f"one incident for the fault after {windows} polls, got {incidents}"
    assert windows <= 2, "the fault is flagged at the first grid point that shows it (or the next)"
    [incident] = incidents
    assert incident.service == "warm-svc"
    signals = warm.app.store.incidents.signals(incident.id)  # type: ignore[arg-type]
    assert {s.labels["instance"] for s in signals} == {faulted}
    [first] = signals
    assert fault_at <= first.first_at.timestamp() <= fault_at + 2 * STEP
    assert first.last_value > 2 * (first.last_expected or math.inf)

    # the control judged the same windows, fault included, and stayed silent because it is still cold
    assert cold.poller.cursor.next_ts == warm.poller.cursor.next_ts
    assert cold.counts() == (0, SERIES)
    assert cold.signals() == 0
    assert cold.app.store.incidents.list() == []
