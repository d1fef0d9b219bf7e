"""`GET /api/v1/incidents/{id}/series`: the series of an incident's metric signals for its charts, read
from a real Prometheus holding the signal's backfilled history, or from the store when Prometheus
cannot answer (never an error for that)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent.clock import SystemClock
from agent.config.models import ApiConfig, QueryConfig
from agent.shell.api import create_app
from agent.shell.series import SeriesReader, window
from agent.shell.store import Store
from agent.shell.store.incidents import incident_row
from agent.shell.store.tables import Incident
from demo.processes import free_port, prometheus_binary
from integrations.prometheus import PrometheusClient
from tests.conftest import require
from tests.support.backfill import promtool_binary
from tests.support.charted import LABELS, LIMIT, QUERY, STEP, Charted, start_charted, store_incident
from tests.support.records import T0, change_row, incident_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def charted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charted]:
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    require(promtool_binary() is not None, "promtool (Debian package prometheus)")
    stack = start_charted(tmp_path_factory.mktemp("charted") / "prometheus")
    yield stack
    stack.stop()


def series_of(
    tmp_path: Path,
    charted: Charted,
    url: str | None = None,
    queries: list[QueryConfig] | None = None,
    max_points: int = 500,
) -> dict[str, Any]:
    """The endpoint's answer for the charted incident, from an agent reading Prometheus at `url`."""
    store = Store.open(f"sqlite:///{tmp_path / 'series.db'}")
    client = PrometheusClient(url or charted.url, timeout=5, retries=0)
    try:
        store_incident(store, charted)
        reader = SeriesReader(
            store,
            SystemClock(),
            {q.name: q for q in (queries if queries is not None else [QUERY])},
            client,
            timedelta(seconds=STEP),
            max_points,
        )
        app = create_app(store, CollectorRegistry(), ApiConfig(), SystemClock(), dict, series=reader)
        with TestClient(app, raise_server_exceptions=False) as http:
            assert http.get("/api/v1/incidents/2/series").status_code == 404
            r = http.get("/api/v1/incidents/1/series")
            assert r.status_code == 200, r.text
            return dict(r.json())
    finally:
        client.session.close()
        store.close()


def test_the_series_around_the_incident_are_prometheus_values_with_limits(
    tmp_path: Path, charted: Charted
) -> None:
    answer = series_of(tmp_path, charted)

    assert answer["prometheus"] == {"queried": True, "error": None}
    (signal,) = answer["signals"]  # the log signal has no series to chart
    assert signal["name"] == QUERY.name and signal["labels"] == LABELS
    assert signal["source"] == "prometheus" and signal["note"] is None
    assert signal["promql"] == QUERY.promql
    assert signal["expected"] == LIMIT
    assert signal["limits"] == [{"above": LIMIT, "below": None, "severity": "critical"}]
    # From 7.5 minutes (a quarter of the 30 it lasted) before the fault to as long after resolution,
    # at the query step: every point is the backfilled value at its time, the fault's threefold step in it.
    assert answer["step_s"] == STEP
    assert answer["start"] == charted.fault_at - 450
    assert answer["end"] == charted.fault_at + 30 * 60 + 450
    times = [answer["start"] + i * STEP for i in range(181)]
    assert signal["points"] == [[t, charted.values[t]] for t in times]
    before, during = charted.values[charted.fault_at - STEP], charted.values[charted.fault_at]
    assert during > 2 * before
    # what the agent recorded itself: the value at onset (timeline) and the latest
    onset, latest = charted.fault_at + 30, charted.fault_at + 20 * 60
    assert signal["recorded"] == [[onset, charted.values[onset]], [latest, charted.values[latest]]]
    assert answer["omitted"] == 0


def test_a_long_window_is_bounded_in_points(tmp_path: Path, charted: Charted) -> None:
    answer = series_of(tmp_path, charted, max_points=40)

    (signal,) = answer["signals"]
    assert answer["step_s"] == math.ceil((30 * 60 + 2 * 450) / 38)  # not 15 s: 181 points are too many
    assert 35 <= len(signal["points"]) <= 40
    times = [t for t, _ in signal["points"]]
    assert all(b - a == answer["step_s"] for a, b in itertools.pairwise(times))
    assert answer["start"] <= times[0] and times[-1] <= answer["end"]


def test_an_unreachable_prometheus_gives_what_the_store_recorded_and_says_so(
    tmp_path: Path, charted: Charted
) -> None:
    answer = series_of(tmp_path, charted, url=f"http://127.0.0.1:{free_port()}")

    assert answer["prometheus"]["queried"] is False
    assert "Prometheus could not be read (SourceUnavailable)" in answer["prometheus"]["error"]
    (signal,) = answer["signals"]
    assert signal["source"] == "store" and signal["points"] == []
    assert [t for t, _ in signal["recorded"]] == [charted.fault_at + 30, charted.fault_at + 20 * 60]
    assert signal["limits"] and signal["expected"] == LIMIT  # the chart still shows its limit


@pytest.mark.parametrize(
    ("queries", "note"),
    [
        ([QUERY.model_copy(update={"promql": "rate(x{job="})], "Prometheus refused query 'db_latency'"),
        ([], "query 'db_latency' is no longer configured"),
        ([QUERY.model_copy(update={"promql": 'x{job="elsewhere"}'})], "no such series in the range"),
    ],
)
def test_a_signal_prometheus_cannot_chart_says_why(
    tmp_path: Path, charted: Charted, queries: list[QueryConfig], note: str
) -> None:
    answer = series_of(tmp_path, charted, queries=queries)

    assert answer["prometheus"]["error"] is None  # Prometheus answered; this signal has no series
    (signal,) = answer["signals"]
    assert signal["source"] == "store" and signal["note"].startswith(note)
    assert len(signal["recorded"]) == 2


def test_the_window_spans_the_incident_and_its_changes_with_a_margin() -> None:
    started = T0 - timedelta(seconds=30)  # the first anomalous point; opened at T0
    incident = Incident(**incident_row(incident_state(1)))
    now = T0 + timedelta(minutes=20)
    # open: up to now (never past it), a quarter of the span before
    assert window(incident, [], now) == ((started - (now - started) / 4).timestamp(), now.timestamp())
    # resolved after a minute: at least five minutes on each side
    incident.resolved_at = T0 + timedelta(minutes=1)
    five = timedelta(minutes=5)
    assert window(incident, [], now) == (
        (started - five).timestamp(),
        (incident.resolved_at + five).timestamp(),
    )
    # a change that finished after the incident resolved is covered too
    change = change_row(1, finished_at=T0 + timedelta(minutes=40))
    span = change.finished_at - started
    assert window(incident, [change], now + timedelta(hours=2)) == (
        (started - span / 4).timestamp(),
        (change.finished_at + span / 4).timestamp(),
    )
