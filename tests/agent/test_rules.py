"""The rule engine: which rules match an incident, the plan they make, and the guards that hold them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.config.models import Catalog, Rule
from agent.core.domain import ChangeType, IncidentStatus, Level, Priority, Severity, Signal
from agent.core.incidents import IncidentState, SignalState
from agent.core.params import ParamError
from agent.core.rules import RuleEngine, Triggers, blocked_by_guards

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CATALOG = Catalog.model_validate(
    {
        "runbooks": {
            "recycle_workers": {
                "playbook": "recycle_workers.yml",
                "change_type": "standard",
                "params": {
                    "url": {"pattern": r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$"},
                    "api_token": {"secret": True, "required": False, "default": "s3cr3t"},
                },
                "verify": {"promql": "up == 1", "deadline": "1m"},
            },
            "collect_diagnostics": {
                "playbook": "collect_diagnostics.yml",
                "change_type": "standard",
                "params": {
                    "incident_id": {"type": "integer"},
                    "service": {},
                    "verbose": {"type": "boolean", "required": False, "default": "false"},
                    "out_dir": {
                        "required": False,
                        "default": "/tmp/diag",
                        "pattern": r"^/[A-Za-z0-9._/\-]+$",
                    },
                    "note": {"required": False},
                },
            },
            "restart_unit": {
                "playbook": "restart.yml",
                "change_type": "normal",
                "params": {"unit": {"pattern": r"[A-Za-z0-9@._\-]+\.service"}},
                "verify": {"promql": "up == 1"},
            },
            "failover": {"playbook": "failover.yml", "change_type": "emergency", "verify": {"promql": "up"}},
        }
    }
)


def rule(name: str = "r", runbook: str = "recycle_workers", **fields: Any) -> Rule:
    fields.setdefault(
        "params", {"url": "http://{labels.instance}/admin/recycle"} if runbook == "recycle_workers" else {}
    )
    return Rule.model_validate({"name": name, "runbook": runbook, **fields})


def signal_state(name: str = "latency", at: datetime = T0, value: float = 0.42, **labels: str) -> SignalState:
    labels = {"instance": "10.0.0.7:8080", "job": "demo", **labels}
    sig = Signal(
        name=name,
        service="web",
        source="prometheus",
        labels=labels,
        at=at,
        value=value,
        score=0.9,
        detector="robust",
        severity=Severity.WARNING,
    )
    return SignalState.first(sig)


def incident(*signals: SignalState, service: str = "web", priority: Priority = Priority.P3) -> IncidentState:
    signals = signals or (signal_state(),)
    return IncidentState(
        id=17,
        service=service,
        signature=f"{service}:{signals[0].name}",
        title="t",
        status=IncidentStatus.OPEN,
        priority=priority,
        impact=Level.MEDIUM,
        urgency=Level.MEDIUM,
        started_at=T0,
        opened_at=T0,
        updated_at=T0,
        ack_due_at=T0 + timedelta(hours=1),
        resolve_due_at=T0 + timedelta(hours=24),
        signals={s.fingerprint: s for s in signals},
    )


def engine(*rules: Rule) -> RuleEngine:
    return RuleEngine(rules, CATALOG)


def matched(eng: RuleEngine, inc: IncidentState) -> list[str]:
    """What the core does: rules each signal meets as it joins, then those that apply to the incident now."""
    met = {i for s in inc.signals.values() for i in eng.matching(inc.service, s)}
    return [eng.rules[i].name for i in eng.applicable(met, inc)]


# ---------------------------------------------------------------- matches()


def test_empty_match_matches_every_incident() -> None:
    assert matched(engine(rule("any")), incident()) == ["any"]


@pytest.mark.parametrize(
    ("service", "hit"), [("web", True), (["db", "web"], True), ("db", False), (["db", "cache"], False)]
)
def test_match_by_service(service: str | list[str], hit: bool) -> None:
    assert matched(engine(rule(match={"service": service})), incident()) == (["r"] if hit else [])


def test_match_by_signal_names() -> None:
    inc = incident(signal_state("latency"), signal_state("errors"))
    assert matched(engine(rule(match={"signals": ["errors", "saturation"]})), inc) == ["r"]
    assert matched(engine(rule(match={"signals": ["saturation"]})), inc) == []


def test_labels_and_signal_names_must_hold_on_the_same_signal() -> None:
    inc = incident(signal_state("latency", instance="a:1"), signal_state("errors", instance="b:1"))
    eng = engine(rule(match={"signals": ["latency"], "labels": {"instance": "b:1"}}))
    assert matched(eng, inc) == []
    eng = engine(rule(match={"signals": ["errors"], "labels": {"instance": "b:1", "job": "demo"}}))
    assert matched(eng, inc) == ["r"]


@pytest.mark.parametrize(
    ("priority", "hit"), [(Priority.P1, True), (Priority.P2, True), (Priority.P3, True), (Priority.P4, False)]
)
def test_min_priority(priority: Priority, hit: bool) -> None:
    eng = engine(rule(match={"min_priority": "P3"}))
    assert matched(eng, incident(priority=priority)) == (["r"] if hit else [])


def test_matches_keep_file_order_and_pick_the_newest_signal() -> None:
    old = signal_state("latency", at=T0, instance="a:1")
    new = signal_state("latency", at=T0 + timedelta(minutes=3), instance="b:1")
    errors = signal_state("errors", at=T0 + timedelta(minutes=5))
    inc = incident(old, new, errors)
    eng = engine(
        rule("second", match={"signals": ["latency"]}), rule("first"), rule("never", match={"service": "db"})
    )
    triggers = Triggers(eng)
    for sig in (new, errors, old):  # arrival order does not matter, only `last_at`
        triggers.seen(inc, sig)
    newest = triggers.of(inc)
    assert matched(eng, inc) == ["second", "first"]
    assert [(eng.rules[i].name, newest[i].fingerprint) for i in eng.applicable(newest, inc)] == [
        ("second", new.fingerprint),
        ("first", errors.fingerprint),
    ]
    old.last_at = T0 + timedelta(minutes=9)  # a repeat moves it on
    triggers.seen(inc, old)
    assert triggers.of(inc)[0] is old


# ---------------------------------------------------------------- plan()


def test_plan_renders_params_from_the_trigger_signal() -> None:
    r = rule()
    trigger = signal_state(instance="10.1.2.3:9100")
    plan = engine(r).plan(r, incident(trigger), trigger)
    assert plan.params["url"] == "http://10.1.2.3:9100/admin/recycle"
    assert (plan.runbook_name, plan.trigger, plan.rule) == ("recycle_workers", trigger, r)
    assert plan.verify.promql == "up == 1"  # the runbook's default verification


def test_plan_coerces_types_and_fills_catalog_defaults() -> None:
    r = rule(
        runbook="collect_diagnostics",
        params={"incident_id": "{incident.id}", "service": "{service} at {value} ({incident.priority})"},
        verify={"promql": "vector(1)", "deadline": "10s"},
    )
    inc = incident(signal_state(value=0.25))
    plan = engine(r).plan(r, inc, next(iter(inc.signals.values())))
    assert plan.params == {
        "incident_id": 17,
        "service": "web at 0.25 (P3)",
        "verbose": False,
        "out_dir": "/tmp/diag",
    }
    assert "note" not in plan.params  # optional, no default: left out
    assert plan.verify.promql == "vector(1)"  # the rule's verification wins


def test_plan_refuses_a_label_value_that_fails_the_pattern() -> None:
    r = rule()
    trigger = signal_state(instance="evil.example/$(reboot)")
    with pytest.raises(ParamError, match="'url' does not match the catalog pattern"):
        engine(r).plan(r, incident(trigger), trigger)


def test_plan_refuses_a_label_the_signal_lacks() -> None:
    r = rule(params={"url": "http://{labels.pod}/admin"})
    trigger = signal_state()
    with pytest.raises(ParamError, match="not available"):
        engine(r).plan(r, incident(trigger), trigger)


def test_plan_refuses_a_value_of_the_wrong_type() -> None:
    r = rule(runbook="collect_diagnostics", params={"incident_id": "{labels.job}", "service": "x"})
    inc = incident()
    with pytest.raises(ParamError, match="'incident_id' must be of type integer"):
        engine(r).plan(r, inc, next(iter(inc.signals.values())))


def test_plan_refuses_a_missing_required_param() -> None:
    r = rule(runbook="collect_diagnostics", params={"service": "x"})
    inc = incident()
    with pytest.raises(ParamError, match="'incident_id' has no value"):
        engine(r).plan(r, inc, next(iter(inc.signals.values())))


def test_plan_needs_a_verification() -> None:
    r = rule(runbook="collect_diagnostics", params={"incident_id": "1", "service": "x"})
    inc = incident()
    with pytest.raises(ParamError, match="has no verification"):
        engine(r).plan(r, inc, next(iter(inc.signals.values())))


@pytest.mark.parametrize(
    ("runbook", "params", "approval", "change_type"),
    [
        ("recycle_workers", None, "auto", ChangeType.STANDARD),
        ("recycle_workers", None, "required", ChangeType.NORMAL),
        ("restart_unit", {"unit": "nginx.service"}, "auto", ChangeType.NORMAL),
        ("failover", {}, "auto", ChangeType.EMERGENCY),  # the core runs it at once only for P1
    ],
)
def test_change_type(
    runbook: str, params: dict[str, str] | None, approval: str, change_type: ChangeType
) -> None:
    fields: dict[str, Any] = {"guards": {"approval": approval}}
    if params is not None:
        fields["params"] = params
    r = rule(runbook=runbook, **fields)
    inc = incident()
    assert engine(r).plan(r, inc, next(iter(inc.signals.values()))).change_type is change_type


def test_secret_params_are_masked_when_shown() -> None:
    r = rule()
    inc = incident()
    plan = engine(r).plan(r, inc, next(iter(inc.signals.values())))
    assert plan.params["api_token"] == "s3cr3t"
    assert plan.shown_params == {"url": "http://10.0.0.7:8080/admin/recycle", "api_token": "***"}


# ---------------------------------------------------------------- guards


def guarded(**guards: Any) -> Rule:
    return rule(guards={"cooldown": "15m", "max_attempts": 2, **guards})


def test_no_history_is_not_blocked() -> None:
    assert blocked_by_guards(guarded(), 0, None, T0) is None


@pytest.mark.parametrize(("attempts", "blocked"), [(1, False), (2, True), (3, True)])
def test_max_attempts(attempts: int, blocked: bool) -> None:
    why = blocked_by_guards(guarded(), attempts, T0 - timedelta(hours=1), T0)
    assert (why == f"max attempts reached ({attempts}/2)") is blocked
    assert (why is None) is not blocked


@pytest.mark.parametrize(
    ("since", "why"),
    [
        (timedelta(0), "cooldown active for 0:15:00 more"),
        (timedelta(minutes=10), "cooldown active for 0:05:00 more"),
        (timedelta(minutes=14, seconds=59), "cooldown active for 0:00:01 more"),
        (timedelta(minutes=15), None),
        (timedelta(hours=2), None),
    ],
)
def test_cooldown(since: timedelta, why: str | None) -> None:
    assert blocked_by_guards(guarded(), 1, T0, T0 + since) == why
