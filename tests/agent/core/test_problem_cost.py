"""A problem's cost and trend (agent/core/problem_cost.py): what the problem manager's lists are ranked by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core import problem_cost
from agent.core.domain import ChangeKind, ChangeStatus, Priority
from agent.core.records import ChangeBase, IncidentBase

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def incident(
    opened: datetime, hours: float | None, priority: Priority = Priority.P4, **kw: Any
) -> IncidentBase:
    """An incident open `hours` (still open when None)."""
    fields: dict[str, Any] = {
        "service": "web",
        "signature": "web:latency",
        "priority": priority,
        "impact": "low",
        "urgency": "low",
        "started_at": opened,
        "opened_at": opened,
        "updated_at": opened,
        "ack_due_at": opened,
        "resolve_due_at": opened,
        "resolved_at": opened + timedelta(hours=hours) if hours is not None else None,
    }
    return IncidentBase(**(fields | kw))


def change(status: ChangeStatus = ChangeStatus.SUCCEEDED, **kw: Any) -> ChangeBase:
    fields: dict[str, Any] = {
        "incident_id": 1,
        "rule": "r",
        "service": "web",
        "runbook": "recycle",
        "playbook": "recycle.yml",
        "change_type": "standard",
        "risk": "low",
        "status": status,
        "created_at": NOW,
        "decided_by": "agent: standard change, pre-approved",
    }
    return ChangeBase(**(fields | kw))


def test_a_long_open_p1_costs_more_than_a_frequent_p4() -> None:
    p1 = problem_cost.cost([incident(NOW - timedelta(days=2), 6, Priority.P1)], [], NOW)
    p4 = problem_cost.cost([incident(NOW - timedelta(hours=h), 0.25) for h in range(1, 21)], [], NOW)
    assert p1.open_hours == 48.0 and p4.open_hours == 5.0
    assert p1.total > p4.total


def test_an_open_incident_counts_until_now() -> None:
    still = problem_cost.cost([incident(NOW - timedelta(hours=3), None, Priority.P2)], [], NOW)
    assert still.open_hours == 12.0


def test_failed_and_manual_changes_and_sla_breaches_add() -> None:
    base = [incident(NOW - timedelta(days=1), 1)]
    plain = problem_cost.cost(base, [change()], NOW)
    assert (plain.failed_changes, plain.manual_changes, plain.sla_breaches, plain.total) == (0, 0, 0, 1.0)
    made = [
        change(ChangeStatus.FAILED),
        change(ChangeStatus.ROLLED_BACK),
        change(ChangeStatus.SUCCEEDED, change_type="normal", decided_by="api:alice"),
        change(ChangeStatus.SUCCEEDED, kind=ChangeKind.RETRY, decided_by="cli:bob"),
        change(ChangeStatus.AWAITING_APPROVAL, change_type="normal", decided_by=""),
    ]
    breached = [incident(NOW - timedelta(days=1), 1, ack_breached=True, resolve_breached=True)]
    worse = problem_cost.cost(breached, made, NOW)
    assert (worse.failed_changes, worse.manual_changes, worse.sla_breaches) == (2, 2, 2)
    expected = 1.0 + 2 * problem_cost.PER_FAILED_CHANGE + 2 * problem_cost.PER_MANUAL_CHANGE
    assert worse.total == expected + 2 * problem_cost.PER_SLA_BREACH
    assert worse.as_dict() == {
        "total": worse.total,
        "open_hours": 1.0,
        "failed_changes": 2,
        "manual_changes": 2,
        "sla_breaches": 2,
    }


def test_a_problem_whose_incidents_are_all_this_week_is_rising() -> None:
    t = problem_cost.trend([NOW - timedelta(days=d) for d in (0.5, 2, 6)], NOW)
    assert (t.this_week, t.weekly_mean, t.ratio, t.label) == (3, 0.0, None, "rising")


def test_trend_against_the_four_weeks_before() -> None:
    before = [NOW - timedelta(days=8 + 7 * w) for w in range(4) for _ in range(2)]  # 2 a week
    assert problem_cost.trend(before + [NOW - timedelta(days=1)] * 2, NOW).label == "steady"
    assert problem_cost.trend(before + [NOW - timedelta(days=1)] * 3, NOW).label == "rising"
    assert problem_cost.trend([*before, NOW - timedelta(days=1)], NOW).label == "falling"
    quiet = problem_cost.trend([NOW - timedelta(days=60)], NOW)
    assert (quiet.this_week, quiet.weekly_mean, quiet.label) == (0, 0.0, "steady")


def test_daily_counts_each_service_over_the_last_30_days() -> None:
    rows = [
        incident(NOW - timedelta(hours=1), 1),
        incident(NOW - timedelta(hours=2), 1),
        incident(NOW - timedelta(hours=2), 1, service="db"),
        incident(NOW - timedelta(days=3), 1),
        incident(NOW - timedelta(days=40), 1),
    ]
    assert problem_cost.daily(rows, NOW) == {
        "from": "2026-02-28",
        "to": "2026-03-29",
        "counts": [
            {"day": "2026-03-26", "service": "web", "incidents": 1},
            {"day": "2026-03-29", "service": "db", "incidents": 1},
            {"day": "2026-03-29", "service": "web", "incidents": 2},
        ],
    }
