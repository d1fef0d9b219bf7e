"""ITIL priority: impact (tier, breadth) x urgency (severity) through the matrix, and SLA due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agent.config.models import PriorityConfig, SlaTarget
from agent.core.domain import Level, Priority, Severity
from agent.core.priority import PriorityPolicy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRIT, WARN, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO


def policy(breadth_instances: int = 3, **config: object) -> PriorityPolicy:
    return PriorityPolicy(PriorityConfig.model_validate(config), breadth_instances)


@pytest.mark.parametrize(
    ("tier", "severity", "expected"),
    [
        (1, CRIT, Priority.P1),
        (1, WARN, Priority.P2),
        (1, INFO, Priority.P3),
        (2, CRIT, Priority.P2),
        (2, WARN, Priority.P3),
        (2, INFO, Priority.P4),
        (3, CRIT, Priority.P3),
        (3, WARN, Priority.P4),
        (3, INFO, Priority.P4),
    ],
)
def test_default_matrix(tier: int, severity: Severity, expected: Priority) -> None:
    assert policy().assess(tier, [severity]).priority is expected


def test_impact_and_urgency_are_reported_with_reasons() -> None:
    a = policy().assess(2, [WARN])
    assert (a.impact, a.urgency) == (Level.MEDIUM, Level.MEDIUM)
    assert "tier 2 -> impact medium" in a.why
    assert "warning signal -> urgency medium" in a.why


def test_tier_without_impact_level_counts_as_low() -> None:
    assert policy().assess(7, [CRIT]).impact is Level.LOW


def test_most_severe_signal_sets_urgency() -> None:
    assert policy().assess(2, [INFO, CRIT, WARN]).urgency is Level.HIGH
    assert policy().assess(2, []).urgency is Level.LOW


@pytest.mark.parametrize(
    ("instances", "dependents", "impact", "priority"),
    [
        (1, 0, Level.MEDIUM, Priority.P3),
        (2, 0, Level.MEDIUM, Priority.P3),
        (3, 0, Level.HIGH, Priority.P2),
        (10, 0, Level.HIGH, Priority.P2),
        (1, 1, Level.HIGH, Priority.P2),
    ],
)
def test_breadth_raises_impact_one_level(
    instances: int, dependents: int, impact: Level, priority: Priority
) -> None:
    a = policy().assess(2, [WARN], instances=instances, dependents_affected=dependents)
    assert (a.impact, a.priority) == (impact, priority)
    assert ("raised to high" in a.why) is (impact is Level.HIGH)


def test_breadth_threshold_is_configurable() -> None:
    assert policy(breadth_instances=5).assess(3, [CRIT], instances=4).impact is Level.LOW
    assert policy(breadth_instances=5).assess(3, [CRIT], instances=5).impact is Level.MEDIUM


def test_breadth_cannot_raise_beyond_high() -> None:
    a = policy().assess(1, [CRIT], instances=9, dependents_affected=2)
    assert (a.impact, a.priority) == (Level.HIGH, Priority.P1)
    assert "raised" not in a.why


def test_level_raised() -> None:
    assert [lvl.raised() for lvl in (Level.LOW, Level.MEDIUM, Level.HIGH)] == [
        Level.MEDIUM,
        Level.HIGH,
        Level.HIGH,
    ]


def test_custom_matrix_and_tiers() -> None:
    all_p4 = {i: {u: "P4" for u in ("low", "medium", "high")} for i in ("low", "medium", "high")}
    all_p4["low"]["high"] = "P1"
    p = policy(tier_impact={1: "low", 2: "low"}, matrix=all_p4)
    assert p.assess(1, [CRIT]).priority is Priority.P1
    assert p.assess(1, [WARN]).priority is Priority.P4


def test_incomplete_matrix_is_refused() -> None:
    with pytest.raises(ValidationError, match="matrix must give a priority for every impact x urgency"):
        PriorityConfig.model_validate({"matrix": {"high": {"high": "P1"}}})


def test_incomplete_sla_is_refused() -> None:
    with pytest.raises(ValidationError, match="missing P3, P4"):
        PriorityConfig.model_validate(
            {
                "sla": {
                    "P1": {"acknowledge": "5m", "resolve": "1h"},
                    "P2": {"acknowledge": "5m", "resolve": "1h"},
                }
            }
        )


@pytest.mark.parametrize(
    ("priority", "ack", "resolve"),
    [
        (Priority.P1, timedelta(minutes=5), timedelta(hours=1)),
        (Priority.P2, timedelta(minutes=15), timedelta(hours=4)),
        (Priority.P3, timedelta(hours=1), timedelta(hours=24)),
        (Priority.P4, timedelta(hours=4), timedelta(hours=72)),
    ],
)
def test_default_sla_due_times(priority: Priority, ack: timedelta, resolve: timedelta) -> None:
    assert policy().due(priority, T0) == (T0 + ack, T0 + resolve)


def test_configured_sla_due_times() -> None:
    sla = {p: {"acknowledge": "1m", "resolve": "10m"} for p in ("P1", "P2", "P3", "P4")}
    sla["P1"] = {"acknowledge": "30s", "resolve": "2m"}
    p = policy(sla=sla)
    assert p.config.sla[Priority.P1] == SlaTarget(
        acknowledge=timedelta(seconds=30), resolve=timedelta(minutes=2)
    )
    assert p.due(Priority.P1, T0) == (T0 + timedelta(seconds=30), T0 + timedelta(minutes=2))


def test_priority_ordering() -> None:
    assert Priority.P1.at_least(Priority.P3)
    assert Priority.P3.at_least(Priority.P3)
    assert not Priority.P4.at_least(Priority.P3)
