"""The problem manager's lists ranked by cost, with each problem's cost and trend: `GET /api/v1/problems`,
`aiops problems list|show`, on a real SQLite store (the formula itself: tests/agent/core/test_problem_cost.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from agent.core.domain import ChangeStatus, IncidentStatus, Priority
from agent.shell.store import Store
from tests.agent.test_cli import aiops, json_out
from tests.support.oncall import call
from tests.support.records import T0, add_change, incident_state, link_problem, save_incidents


def seed(store: Store) -> tuple[int, int]:
    """A frequent P4 (ten incidents of 15 minutes this week) and a P1 open 6 hours two weeks ago whose
    change failed; returns their ids (P4, P1)."""
    quarter = timedelta(minutes=15)
    frequent = [
        incident_state(
            n,
            at=T0 - timedelta(hours=10 * n),
            status=IncidentStatus.RESOLVED,
            priority=Priority.P4,
            resolved_at=T0 - timedelta(hours=10 * n) + quarter,
        )
        for n in range(1, 11)
    ]
    opened = T0 - timedelta(days=14)
    long_p1 = incident_state(
        11,
        at=opened,
        status=IncidentStatus.RESOLVED,
        priority=Priority.P1,
        signature="db:Down",
        service="db",
        resolved_at=opened + timedelta(hours=6),
    )
    save_incidents(store, *frequent, long_p1)
    add_change(store, 11, ChangeStatus.FAILED, service="db")
    p4 = link_problem(store, "demo-web:demo_latency_p99", "latency recurring", list(range(1, 11)))
    p1 = link_problem(store, "db:Down", "db down recurring", [11], at=T0 - timedelta(days=13))
    return p4, p1


def test_the_api_ranks_problems_by_cost(client: tuple[TestClient, Store, list[int]]) -> None:
    c, store, _ = client
    p4, p1 = seed(store)
    rows = call(c, "GET", "/api/v1/problems").json()
    assert [r["id"] for r in rows] == [p1, p4]  # the P1 was seen longer ago, yet costs more
    first, second = rows
    assert first["cost"] == {
        "total": 48.0 + 8.0,
        "open_hours": 48.0,
        "failed_changes": 1,
        "manual_changes": 0,
        "sla_breaches": 0,
    }
    assert (second["cost"]["total"], second["trend"]["label"], second["trend"]["this_week"]) == (
        2.5,
        "rising",
        10,
    )
    assert (first["trend"]["label"], first["trend"]["weekly_mean"]) == (
        "falling",
        0.25,
    )  # 1 in 4 weeks, 0 now
    assert sum(d["incidents"] for d in second["per_day"]["counts"]) == 10
    assert first["per_day"] == {
        "from": "2026-01-31",
        "to": "2026-03-01",
        "counts": [{"day": "2026-02-15", "service": "db", "incidents": 1}],
    }
    detail = call(c, "GET", f"/api/v1/problems/{p1}").json()
    assert (detail["cost"], detail["trend"]) == (first["cost"], first["trend"])


def test_the_cli_ranks_problems_by_cost(config: Path) -> None:
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        p4, p1 = seed(store)
    finally:
        store.close()
    rows = json_out(aiops("problems", "list", "--json", "-c", config))
    assert [(r["id"], r["cost"]["total"]) for r in rows] == [(p1, 56.0), (p4, 2.5)]
    table = aiops("problems", "list", "-c", config).stdout.splitlines()
    assert table[0].split()[:5] == ["ID", "KIND", "STATUS", "COST", "TREND"]
    assert table[1].split()[:4] == [str(p1), "recurrence", "candidate", "56.0"]
    assert table[2].split()[:4] == [str(p4), "recurrence", "candidate", "2.5"]
    shown = aiops("problems", "show", str(p1), "-c", config).stdout
    assert (
        "cost 56.0: 48.0 priority-weighted hours open, 1 failed and 0 manual changes, 0 SLA breaches" in shown
    )
    assert "trend steady: 0 incidents this week" in shown


def test_the_store_reads_every_problems_incidents_and_changes_at_once(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        p4, p1 = seed(store)
        incidents, changes = store.problems.costing([p4, p1, 999])
        assert {p: [i.id for i in rows] for p, rows in incidents.items()} == {
            p4: list(range(10, 0, -1)),  # oldest first
            p1: [11],
            999: [],
        }
        assert {i: [c.status for c in rows] for i, rows in changes.items()} == {11: [ChangeStatus.FAILED]}
        assert store.problems.costing([]) == ({}, {})
    finally:
        store.close()
