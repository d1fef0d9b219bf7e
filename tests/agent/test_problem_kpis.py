"""Problem-management KPIs from records with known times, and their part of `aiops report` on a store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli.main import app
from agent.core.problem_kpis import Recorded, compute_problems
from agent.shell.store import Store
from tests.agent.test_kpis import incident
from tests.support.records import incident_state, link_problem, save_incidents

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def test_repeats_before_and_after_a_known_error_and_the_incidents_it_caught() -> None:
    recorded = T - 10 * DAY
    known = [Recorded(3, "pool exhaustion", ("web:slow",), recorded)]
    # four incidents of the signature in the week before it was recorded, one in the ten days after;
    # another signature's incidents do not count
    openings = [("web:slow", recorded - d * DAY) for d in (1, 2, 3, 6)]
    openings += [
        ("web:slow", recorded + 4 * DAY),
        ("db:down", recorded + DAY),
        ("web:slow", recorded - 8 * DAY),
    ]
    period = [
        incident(1, "web:slow", timedelta(0), -6 * DAY, known_error_id=3),
        incident(2, "db:down", timedelta(0), -5 * DAY),
        incident(3, "db:down", timedelta(0), -30 * DAY),  # before the period
    ]
    p = compute_problems({"candidate": 2, "problem": 1, "known_error": 1}, known, period, openings, WEEK, T)
    assert (p.candidates, p.open_problems, p.known_errors) == (2, 1, 1)
    assert (p.linked_incidents.part, p.linked_incidents.whole) == (1, 2)
    [effect] = p.effects
    assert (effect.before.incidents, effect.before.weeks, effect.before.per_week) == (4, 1.0, 4.0)
    # after: from the recording to the end of the period, at most a week
    assert (effect.after.incidents, effect.after.weeks, effect.after.per_week) == (1, 1.0, 1.0)
    doc = p.to_json()
    assert doc["repeat_rate_before_per_week"] == 4.0 and doc["repeat_rate_after_per_week"] == 1.0
    assert doc["linked_incidents"] == {"part": 1, "whole": 2, "rate": 0.5}
    json.dumps(doc)


def test_a_known_error_recorded_moments_ago_has_no_after_rate_yet() -> None:
    p = compute_problems({}, [Recorded(1, "x", ("s",), T)], [], [("s", T - DAY)], WEEK, T)
    assert p.before.per_week == 1.0 and p.after.per_week is None
    empty = compute_problems({}, [], [], [], WEEK, T)
    assert (empty.before.per_week, empty.after.per_week, empty.linked_incidents.value) == (None, None, None)


@pytest.mark.parametrize("as_json", [True, False])
def test_report_shows_problem_kpis(tmp_path: Any, as_json: bool) -> None:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    store = Store.open(url)
    now = datetime.now(UTC)
    try:
        sig = "demo-web:demo_latency_p99"
        save_incidents(
            store,
            incident_state(1, at=now - 3 * DAY),
            incident_state(2, at=now - 2 * DAY),
            incident_state(3, at=now - DAY - timedelta(hours=1)),
        )
        pid = link_problem(store, sig, "latency recurring", [1, 2, 3], at=now - DAY - timedelta(hours=1))
        store.known_errors.promote(pid, "carol", "", "cli:carol", now - DAY)
        kid = store.known_errors.record(pid, "pool", "recycle", None, "cli:carol", now - DAY).known_error_id
        save_incidents(store, incident_state(4, at=now - timedelta(hours=2), known_error_id=kid))
    finally:
        store.close()
    args = ["report", "--since", "7d", "--store", url] + (["--json"] if as_json else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    if not as_json:
        assert "known errors" in result.stdout and "25% (1/4)" in result.stdout
        assert f"known error #{kid} (latency recurring): 3.00/week before, 7.00/week after" in result.stdout
        return
    p = json.loads(result.stdout)["problems"]
    assert (p["candidates"], p["open_problems"], p["known_errors"]) == (0, 0, 1)
    assert p["linked_incidents"] == {"part": 1, "whole": 4, "rate": 0.25}
    [effect] = p["known_error_effects"]
    assert (effect["known_error_id"], effect["before"]["incidents"], effect["after"]["incidents"]) == (
        kid,
        3,
        1,
    )
    assert effect["after"]["weeks"] == pytest.approx(1 / 7, abs=0.01)
