"""KPIs over a period, from incident and change records with known times, and `aiops report` on a store."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli.main import app
from agent.core.domain import ChangeStatus
from agent.core.kpis import compute
from agent.shell.store import Store
from agent.shell.store.tables import Change, Incident
from tests.support.records import add_change, change_row, incident_state, save_incidents

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTO = "agent: standard change, pre-approved"


def incident(n: int, signature: str, started: timedelta, opened: timedelta, **kw: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": n,
        "service": "demo-web",
        "signature": signature,
        "title": f"#{n}",
        "status": "open",
        "priority": "P2",
        "impact": "high",
        "urgency": "medium",
        "started_at": T + started,
        "opened_at": T + opened,
        "updated_at": T + opened,
        "ack_due_at": T + opened + timedelta(minutes=15),
        "resolve_due_at": T + opened + timedelta(hours=4),
    }
    return Incident(**(fields | kw))


def change(incident_id: int, status: ChangeStatus, at: timedelta, decided_by: str = AUTO) -> Change:
    return change_row(incident_id, status, at=T + at, decided_by=decided_by, change_type="standard")


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


INCIDENTS = [
    incident(1, "web:latency", minutes(-100), minutes(-90), status="resolved", resolved_at=T - minutes(80)),
    incident(
        2,
        "web:latency",
        minutes(0),
        timedelta(seconds=30),
        status="resolved",
        acknowledged_at=T + minutes(2.5),
        resolved_at=T + minutes(10),
    ),
    incident(
        3,
        "web:latency",
        minutes(59),
        minutes(60),
        status="resolved",
        resolved_at=T + minutes(120),
        priority="P1",
        resolve_breached=True,
        resolve_due_at=T + minutes(90),
    ),
    incident(4, "db:errors", minutes(200), minutes(200.5), ack_breached=True),
    incident(5, "web:latency", minutes(300), minutes(301), status="remediating"),
]
CHANGES = [
    change(1, ChangeStatus.SUCCEEDED, minutes(-89)),
    change(2, ChangeStatus.SUCCEEDED, minutes(1)),
    change(3, ChangeStatus.FAILED, minutes(61)),
    change(3, ChangeStatus.SUCCEEDED, minutes(70), decided_by="alice"),
    change(5, ChangeStatus.DRY_RUN, minutes(302), decided_by=""),
]


def test_kpis_of_a_period() -> None:
    k = compute(INCIDENTS, CHANGES, since=T - minutes(1), until=T + minutes(400))
    assert k.incidents == 4 and k.resolved == 2 and k.open == 2  # #1 opened before the period
    assert k.by_priority == {"P1": 1, "P2": 3}
    assert k.mttd_s == pytest.approx((30 + 60 + 30 + 60) / 4)
    assert k.mtta_s == pytest.approx(120)  # only #2 was acknowledged, 2 minutes after it opened
    assert k.mttr_s == pytest.approx((10 * 60 + 61 * 60) / 2)
    # the agent ran a standard change on #2 (succeeded) and #3 (failed; a person's change fixed it)
    assert (k.auto_remediation.part, k.auto_remediation.whole) == (2, 4)
    assert (k.auto_remediation_success.part, k.auto_remediation_success.whole) == (1, 2)
    assert (k.change_success.part, k.change_success.whole) == (2, 3)  # the dry run executed nothing
    assert k.changes_by_status == {"dry_run": 1, "failed": 1, "succeeded": 2}
    # acknowledge: #4 breached; #2, #3 and #5 left "open" in time. Resolve: #3 breached; #4 and #5 not due.
    assert (k.ack_sla.part, k.ack_sla.whole) == (3, 4)
    assert (k.resolve_sla.part, k.resolve_sla.whole) == (1, 2)
    assert (k.repeat_incidents.part, k.repeat_incidents.whole) == (2, 4)
    assert k.top_repeats == [("web:latency", 3)]


def test_an_empty_period_has_no_rates_rather_than_zeros() -> None:
    k = compute(INCIDENTS, CHANGES, since=T + minutes(1000), until=T + minutes(2000))
    assert k.incidents == 0 and k.mttd_s is None and k.mttr_s is None
    assert k.auto_remediation.value is None and k.ack_sla.value is None
    doc = k.to_json()
    assert doc["change_success"] == {"part": 0, "whole": 0, "rate": None}
    json.dumps(doc)  # one plain JSON document


def test_report_command_reads_the_store(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'aiops.db'}"
    store = Store.open(url)
    now = datetime.now(UTC)
    try:
        save_incidents(store, incident_state(1, at=now - timedelta(hours=2)))
        save_incidents(store, incident_state(2, at=now - timedelta(days=3)))
        add_change(store, 1, ChangeStatus.SUCCEEDED, at=now - timedelta(hours=1), decided_by=AUTO)
    finally:
        store.close()
    runner = CliRunner()
    day = runner.invoke(app, ["report", "--since", "1d", "--json", "--store", url])
    assert day.exit_code == 0, day.stderr
    doc = json.loads(day.stdout)
    assert doc["incidents"] == 1 and doc["auto_remediation"]["rate"] == 1.0
    week = runner.invoke(app, ["report", "--store", url])
    assert week.exit_code == 0 and re.search(r"^incidents\s+2\s", week.stdout, re.MULTILINE)
    bad = runner.invoke(app, ["report", "--since", "soon", "--store", url])
    assert bad.exit_code == 1 and "--since: invalid duration 'soon'" in bad.stderr
