"""Correlation: signals become incidents, driven by explicit event times and a manual clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.config.models import CorrelationConfig, PriorityConfig, Service, ServicesFile
from agent.core.correlation import Correlator
from agent.core.decisions import Decisions
from agent.core.domain import IncidentStatus, Level, Priority, Severity, Signal, SignalClear
from agent.core.incidents import Entry, IncidentState
from agent.core.priority import PriorityPolicy
from agent.core.topology import ServiceMap
from agent.errors import AiopsError, InvalidTransition

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = IncidentStatus
SERVICES = ServicesFile(
    services=[
        Service(name="web", tier=2, depends_on=["db"]),
        Service(name="db", tier=2),
        Service(name="batch", tier=3),
    ]
)


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


@dataclass
class Written:
    """What a drain recorded, as the store would: ids assigned, texts rendered."""

    opened: list[int | None]
    touched: dict[int | None, IncidentState]
    entries: list[Any]
    signals: list[tuple[int | None, str]]

    def __bool__(self) -> bool:
        return bool(self.entries or self.touched or self.signals)


def written(e: Entry) -> SimpleNamespace:
    return SimpleNamespace(
        incident_id=e.incident_id, at=e.at, kind=e.kind, actor=e.actor, reason=e.text(), data=e.details()
    )


class Harness:
    """A Correlator and the clock it is driven by; signals default to 'now' as their event time.
    `drain` stands in for the store: new incidents get the next id, then texts are rendered."""

    def __init__(self, **correlation: str | int):
        settings = {"window": "5m", "quiet_period": "3m", "reopen_window": "30m", "settle_period": "2m"}
        self.config = CorrelationConfig.model_validate({**settings, **correlation})
        policy = PriorityPolicy(PriorityConfig(), self.config.breadth_instances)
        self.correlator = Correlator(ServiceMap(SERVICES), policy, self.config)
        self.clock = ManualClock(T0)
        self.entries: list[Any] = []
        self.next_id = 1

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def at(self, offset: timedelta) -> datetime:
        self.clock.set(T0 + offset)
        return self.now

    def signal(
        self,
        name: str = "latency",
        service: str = "web",
        instance: str = "a:80",
        severity: Severity = Severity.WARNING,
        score: float = 0.9,
        at: datetime | None = None,
    ) -> Signal:
        return Signal(
            name=name,
            service=service,
            source="prometheus",
            labels={"instance": instance, "job": service},
            at=at or self.now,
            value=2.0,
            score=score,
            detector="robust",
            severity=severity,
            expected=1.0,
        )

    def observe(self, sig: Signal | None = None, **kw: Any) -> IncidentState:
        inc = self.correlator.observe(sig or self.signal(**kw), self.now)
        self.drain_ids()
        return inc

    def drain_ids(self) -> None:
        """Give new incidents their ids at once (tests compare ids), keeping what is still to drain."""
        out = self.correlator.out
        for inc in sorted(out.incidents.values(), key=lambda i: i.ref):
            if inc.id is None:
                inc.id, self.next_id = self.next_id, self.next_id + 1
                self.correlator.bound(inc)
        for inc in out.incidents.values():
            parent = out.incidents.get(inc.parent_ref) if inc.parent_ref is not None else None
            if inc.parent_id is None and parent is not None:
                inc.parent_id = parent.id

    def clear(self, sig: Signal, at: datetime | None = None) -> None:
        self.correlator.clear(SignalClear(sig.fingerprint, at or self.now))

    def tick(self) -> None:
        self.correlator.tick(self.now)

    def drain(self) -> Written:
        self.drain_ids()
        out, self.correlator.out = self.correlator.out, Decisions()
        entries = [written(e) for e in out.timeline]
        self.entries += entries
        return Written(
            [i.id for i in out.opened],
            {i.id: i for i in out.incidents.values()},
            entries,
            [(inc.id, sig.fingerprint) for inc, sig in out.signals.values()],
        )

    def kinds(self, inc: IncidentState) -> list[str]:
        self.drain()
        return [e.kind for e in self.entries if e.incident_id == inc.id]


@pytest.fixture
def h() -> Harness:
    return Harness()


def resolve_by_quiet_period(h: Harness, sig: Signal) -> IncidentState:
    """Observe `sig` now, clear it a minute later and let the quiet period pass: a resolved incident."""
    start = h.now - T0
    inc = h.observe(sig)
    h.clear(sig, h.at(start + minutes(1)))
    h.at(start + minutes(4))
    h.tick()
    assert inc.status is S.RESOLVED
    return inc


# ---------------------------------------------------------------- dedup and grouping


def test_first_signal_opens_an_incident(h: Harness) -> None:
    inc = h.observe()
    out = h.drain()
    assert out.opened == [inc.id]
    assert out.touched == {inc.id: inc}
    assert (inc.service, inc.status, inc.priority) == ("web", S.OPEN, Priority.P3)
    assert (inc.opened_at, inc.started_at) == (T0, T0)
    [entry] = out.entries
    assert (entry.kind, entry.actor, entry.incident_id) == ("opened", "agent", inc.id)
    assert entry.data["signal"] == "latency"
    assert "P3" in entry.reason


def test_repeats_of_a_signature_update_one_signal_state(h: Harness) -> None:
    inc = h.observe(score=0.85)
    h.drain()
    for i, score in enumerate((0.95, 0.9), 1):
        h.at(minutes(i))
        assert h.observe(score=score) is inc
    out = h.drain()
    assert out.opened == []
    assert out.entries == []  # a repeat is no news
    [state] = inc.signals.values()
    assert (state.count, state.first_at, state.last_at) == (3, T0, T0 + minutes(2))
    assert (state.last_score, state.peak_score) == (0.9, 0.95)
    assert len(h.correlator.incidents) == 1


def test_signals_of_one_service_within_the_window_share_an_incident(h: Harness) -> None:
    inc = h.observe(name="latency")
    h.at(minutes(4))
    assert h.observe(name="errors") is inc
    h.at(minutes(8))  # within the window of the *latest* signal
    assert h.observe(name="saturation", instance="b:80") is inc
    assert {s.name for s in inc.signals.values()} == {"latency", "errors", "saturation"}
    assert h.kinds(inc) == ["opened", "signal", "signal"]
    out_signals = [e.data["signal"] for e in h.entries if e.kind == "signal"]
    assert out_signals == ["errors", "saturation"]


def test_signal_after_the_window_opens_a_new_incident(h: Harness) -> None:
    first = h.observe(name="latency")
    h.at(minutes(5) + timedelta(seconds=1))
    second = h.observe(name="errors")
    assert second is not first
    assert second.id == first.id + 1
    assert first.status is second.status is S.OPEN


def test_known_signature_rejoins_its_active_incident_after_the_window(h: Harness) -> None:
    inc = h.observe(name="latency")
    h.at(minutes(20))
    assert h.observe(name="latency") is inc


def test_different_services_open_different_incidents(h: Harness) -> None:
    web = h.observe(service="web")
    batch = h.observe(service="batch")
    assert web is not batch
    assert (web.service, batch.service) == ("web", "batch")
    assert batch.priority is Priority.P4  # tier 3, warning


# ---------------------------------------------------------------- priority


def test_a_critical_signal_raises_priority_and_nothing_lowers_it(h: Harness) -> None:
    inc = h.observe(name="latency", severity=Severity.WARNING)
    assert inc.priority is Priority.P3
    assert inc.ack_due_at == T0 + minutes(60)
    h.at(minutes(1))
    h.observe(name="errors", severity=Severity.CRITICAL)
    assert (inc.priority, inc.urgency) == (Priority.P2, Level.HIGH)
    assert (inc.ack_due_at, inc.resolve_due_at) == (T0 + minutes(15), T0 + minutes(240))  # from opened_at
    h.at(minutes(2))
    h.observe(name="saturation", severity=Severity.INFO)
    assert inc.priority is Priority.P2
    h.drain()
    raised = [e for e in h.entries if e.kind == "priority"]
    assert len(raised) == 1
    assert raised[0].reason.startswith("raised P3 -> P2")


def test_breadth_of_instances_raises_impact(h: Harness) -> None:
    inc = h.observe(instance="a:80")
    h.observe(instance="b:80")
    assert inc.priority is Priority.P3
    h.observe(instance="c:80")  # breadth_instances = 3
    assert (inc.impact, inc.priority) == (Level.HIGH, Priority.P2)


def test_an_incident_keeps_at_most_max_signals_and_counts_the_rest() -> None:
    h = Harness(max_signals=3)
    inc = h.observe(instance="a:80")
    for i, name in enumerate("bcdef"):
        h.at(minutes(i + 1))
        assert h.observe(instance=f"{name}:80") is inc  # beyond the cap it still joins, and is counted
    assert sorted(s.labels["instance"] for s in inc.signals.values()) == ["a:80", "b:80", "c:80"]
    assert inc.signals_dropped == 3
    h.at(minutes(7))
    h.observe(instance="a:80")  # a held signal repeats as before
    assert inc.signals[h.signal(instance="a:80").fingerprint].count == 2
    assert h.kinds(inc).count("signals_capped") == 1  # said once, when the cap is first reached


def test_a_signal_beyond_the_cap_still_raises_priority_and_keeps_the_incident_active() -> None:
    h = Harness(max_signals=1)
    inc = h.observe(instance="a:80", severity=Severity.WARNING)
    h.at(minutes(4))
    h.observe(instance="b:80", severity=Severity.CRITICAL)
    assert inc.priority is Priority.P2 and inc.signals_dropped == 1
    h.at(minutes(8))  # within the window of the dropped signal, not of the held one: same incident
    assert h.observe(instance="c:80") is inc


# ---------------------------------------------------------------- resolution


def test_no_clear_means_no_resolution_however_long_it_is_quiet(h: Harness) -> None:
    inc = h.observe()
    for hours in (1, 6, 48):
        h.at(timedelta(hours=hours))
        h.tick()
    assert inc.status is S.OPEN
    assert "resolved" not in h.kinds(inc)


def test_clear_then_quiet_period_resolves(h: Harness) -> None:
    sig = h.signal()
    inc = h.observe(sig)
    h.clear(sig, h.at(minutes(1)))
    h.at(minutes(4) - timedelta(seconds=1))
    h.tick()
    assert inc.status is S.OPEN
    h.at(minutes(4))
    h.tick()
    assert inc.status is S.RESOLVED
    assert (inc.resolved_at, inc.resolved_by) == (T0 + minutes(4), "agent")
    assert "quiet period" in inc.resolution
    resolved = [e for e in h.drain().entries if e.kind == "resolved"]
    assert len(resolved) == 1
    assert resolved[0].data == {"from": "open", "to": "resolved"}


def test_every_signal_must_clear_and_the_quiet_period_counts_from_the_last_clear(h: Harness) -> None:
    latency, errors = h.signal(name="latency"), h.signal(name="errors")
    inc = h.observe(latency)
    h.observe(errors)
    h.clear(latency, h.at(minutes(1)))
    h.at(minutes(10))
    h.tick()
    assert inc.status is S.OPEN  # errors never cleared
    h.clear(errors, h.at(minutes(11)))
    h.at(minutes(13))
    h.tick()
    assert inc.status is S.OPEN
    h.at(minutes(14))
    h.tick()
    assert inc.status is S.RESOLVED


def test_a_repeat_after_a_clear_reactivates_the_signal(h: Harness) -> None:
    sig = h.signal()
    inc = h.observe(sig)
    h.clear(sig, h.at(minutes(1)))
    h.at(minutes(2))
    h.observe()
    h.at(minutes(10))
    h.tick()
    assert inc.status is S.OPEN


def test_a_stale_clear_is_ignored(h: Harness) -> None:
    h.at(minutes(5))
    sig = h.signal()
    inc = h.observe(sig)
    h.clear(sig, at=T0 + minutes(4))  # older than the signal it would clear
    h.at(minutes(30))
    h.tick()
    assert inc.status is S.OPEN


# ---------------------------------------------------------------- SLA


def test_sla_breaches_are_recorded_once_each(h: Harness) -> None:
    inc = h.observe()  # P3: acknowledge within 1h, resolve within 24h
    for offset in (
        minutes(60),
        minutes(61),
        minutes(90),
        timedelta(hours=24, seconds=1),
        timedelta(hours=30),
    ):
        h.at(offset)
        h.tick()
    breaches = [e for e in h.drain().entries if e.kind == "sla_breach"]
    assert [(e.data["target"], e.at) for e in breaches] == [
        ("acknowledge", T0 + minutes(61)),
        ("resolve", T0 + timedelta(hours=24, seconds=1)),
    ]
    assert inc.ack_breached and inc.resolve_breached


def test_acknowledged_in_time_means_no_acknowledge_breach(h: Harness) -> None:
    inc = h.observe()
    h.at(minutes(30))
    h.correlator.acknowledge(inc, h.now, "alice", "looking into it")
    h.at(minutes(120))
    h.tick()
    assert not inc.ack_breached
    assert "sla_breach" not in h.kinds(inc)


# ---------------------------------------------------------------- reopening and late data


def test_recurrence_within_reopen_window_reopens_the_incident(h: Harness) -> None:
    sig = h.signal()
    inc = resolve_by_quiet_period(h, sig)  # resolved at T0+4m
    h.drain()
    h.at(minutes(4) + h.config.settle_period + timedelta(seconds=1))
    assert h.observe() is inc
    out = h.drain()
    assert out.opened == []
    assert inc.status is S.OPEN
    assert (inc.resolved_at, inc.resolution, inc.resolved_by) == (None, "", "")
    [reopened] = [e for e in out.entries if e.kind == "reopened"]
    assert reopened.data == {"from": "resolved", "to": "open"}
    assert reopened.actor == "agent"
    assert "recurred 2m1s after resolution" in reopened.reason


def test_recurrence_after_reopen_window_opens_a_new_incident(h: Harness) -> None:
    inc = resolve_by_quiet_period(h, h.signal())
    h.at(minutes(4) + minutes(30) + timedelta(seconds=1))
    fresh = h.observe()
    assert fresh is not inc
    assert inc.status is S.RESOLVED


def test_resolved_incidents_are_forgotten_after_the_reopen_window(h: Harness) -> None:
    inc = resolve_by_quiet_period(h, h.signal())
    h.at(minutes(34))
    h.tick()
    assert inc.id in h.correlator.incidents
    h.at(minutes(34) + timedelta(seconds=1))
    h.tick()
    assert inc.id not in h.correlator.incidents


def test_late_signal_within_settle_period_is_absorbed(h: Harness) -> None:
    sig = h.signal()
    inc = resolve_by_quiet_period(h, sig)
    h.drain()
    late = h.signal(at=T0 + minutes(5))  # resolved at T0+4m; settle period 2m
    h.at(minutes(5) + timedelta(seconds=30))
    assert h.observe(late) is inc
    out = h.drain()
    assert inc.status is S.RESOLVED
    assert (out.opened, out.entries, out.touched) == ([], [], {})  # only the late evidence is written
    assert out.signals == [(inc.id, late.fingerprint)]
    assert inc.signals[late.fingerprint].count == 2
    state = inc.signals[sig.fingerprint]
    assert state.count == 2
    assert state.cleared_at is not None  # late evidence does not undo the clear


def test_late_signal_of_a_new_signature_is_not_absorbed(h: Harness) -> None:
    inc = resolve_by_quiet_period(h, h.signal(name="latency"))
    h.at(minutes(5))
    other = h.observe(name="errors")
    assert other is not inc
    assert other.status is S.OPEN


# ---------------------------------------------------------------- topology


def test_dependent_incident_links_to_its_dependencys_incident(h: Harness) -> None:
    db = h.observe(service="db")
    assert db.priority is Priority.P3
    h.at(minutes(1))
    web = h.observe(service="web")
    assert web is not db
    assert (web.parent_id, db.parent_id) == (db.id, None)
    # a dependent service affected widens the dependency's impact
    assert (db.impact, db.priority) == (Level.HIGH, Priority.P2)
    h.drain()
    web_links = [e.reason for e in h.entries if e.incident_id == web.id and e.kind == "correlated"]
    db_links = [e.reason for e in h.entries if e.incident_id == db.id and e.kind == "correlated"]
    assert web_links == [f"web depends on db: likely part of #{db.id}"]
    assert db_links == [f"dependent service web affected: #{web.id}"]


def test_dependency_incident_adopts_an_earlier_dependent_incident(h: Harness) -> None:
    web = h.observe(service="web")
    h.at(minutes(1))
    db = h.observe(service="db")
    assert (web.parent_id, db.parent_id) == (db.id, None)
    assert db.priority is Priority.P2
    assert "correlated" in h.kinds(web)


def test_no_topology_link_to_an_incident_idle_longer_than_the_window(h: Harness) -> None:
    db = h.observe(service="db")
    h.at(minutes(6))
    web = h.observe(service="web")
    assert web.parent_id is None
    assert db.priority is Priority.P3


def test_unrelated_services_are_not_linked(h: Harness) -> None:
    h.observe(service="batch")
    web = h.observe(service="web")
    assert web.parent_id is None


# ---------------------------------------------------------------- remediation feedback


def test_remediation_started_then_verified(h: Harness) -> None:
    inc = h.observe()
    h.at(minutes(1))
    h.correlator.remediation_started(inc, h.now, "change #1: runbook recycle_workers started")
    assert (inc.status, inc.remediation_started_at) == (S.REMEDIATING, T0 + minutes(1))
    h.at(minutes(2))
    h.correlator.remediation_verified(inc, h.now, "verified: latency back under 250ms")
    assert inc.status is S.RESOLVED
    assert inc.resolution == "verified: latency back under 250ms"
    assert all(s.cleared_at == T0 + minutes(2) for s in inc.signals.values())
    assert h.kinds(inc) == ["opened", "remediating", "resolved"]


def test_quiet_period_does_not_resolve_while_remediating(h: Harness) -> None:
    sig = h.signal()
    inc = h.observe(sig)
    h.correlator.remediation_started(inc, h.now, "change #1 started")
    h.clear(sig, h.at(minutes(1)))
    h.at(minutes(30))
    h.tick()
    assert inc.status is S.REMEDIATING


def test_remediation_failed_returns_to_open_and_escalates(h: Harness) -> None:
    inc = h.observe()
    h.correlator.remediation_started(inc, h.now, "change #1 started")
    h.at(minutes(3))
    h.correlator.remediation_failed(inc, h.now, "change #1 failed: verification deadline passed")
    assert inc.status is S.OPEN
    assert inc.escalated
    entries = [e for e in h.drain().entries if e.incident_id == inc.id]
    assert [e.kind for e in entries] == ["opened", "remediating", "open", "escalated"]
    assert entries[-1].reason == "change #1 failed: verification deadline passed"
    assert entries[2].data == {"from": "remediating", "to": "open"}


def test_remediation_failed_returns_an_acknowledged_incident_to_acknowledged(h: Harness) -> None:
    inc = h.observe()
    h.correlator.acknowledge(inc, h.now, "alice", "on it")
    h.correlator.remediation_started(inc, h.now, "change #2 started")
    h.correlator.remediation_failed(inc, h.now, "change #2 failed")
    assert inc.status is S.ACKNOWLEDGED
    assert inc.escalated


def test_remediation_started_twice_records_one_transition(h: Harness) -> None:
    inc = h.observe()
    h.correlator.remediation_started(inc, h.now, "change #1 started")
    h.correlator.remediation_started(inc, h.now, "change #1 started again")
    assert h.kinds(inc).count("remediating") == 1


def test_every_status_transition_is_a_timeline_entry_with_actor_and_reason(h: Harness) -> None:
    sig = h.signal()
    inc = h.observe(sig)
    h.at(minutes(1))
    h.correlator.acknowledge(inc, h.now, "alice", "looking")
    h.correlator.remediation_started(inc, h.now, "change #1 started")
    h.correlator.remediation_verified(inc, h.at(minutes(2)), "verified")
    h.at(minutes(5))
    h.observe()  # recurs after the settle period: reopened
    h.drain()
    transitions = [e for e in h.entries if "from" in e.data]
    assert [(e.data["from"], e.data["to"]) for e in transitions] == [
        ("open", "acknowledged"),
        ("acknowledged", "remediating"),
        ("remediating", "resolved"),
        ("resolved", "open"),
    ]
    assert [e.actor for e in transitions] == ["alice", "agent", "agent", "agent"]
    assert all(e.reason and e.incident_id == inc.id for e in transitions)
    assert inc.acknowledged_at == T0 + minutes(1)


ALLOWED = {
    S.OPEN: {S.ACKNOWLEDGED, S.REMEDIATING, S.RESOLVED},
    S.ACKNOWLEDGED: {S.REMEDIATING, S.RESOLVED},
    S.REMEDIATING: {S.OPEN, S.ACKNOWLEDGED, S.RESOLVED},
    S.RESOLVED: {S.OPEN, S.CLOSED},
    S.CLOSED: set(),
}


def bare_incident(status: IncidentStatus) -> IncidentState:
    return IncidentState(
        id=7,
        service="web",
        signature="web:latency",
        title="latency anomalous on web",
        status=status,
        priority=Priority.P3,
        impact=Level.MEDIUM,
        urgency=Level.MEDIUM,
        started_at=T0,
        opened_at=T0,
        updated_at=T0,
        ack_due_at=T0 + minutes(60),
        resolve_due_at=T0 + minutes(1440),
    )


@pytest.mark.parametrize(("before", "after"), [(b, a) for b in S for a in S])
def test_transition_table(before: IncidentStatus, after: IncidentStatus) -> None:
    inc = bare_incident(before)
    later = T0 + minutes(5)
    if after in ALLOWED[before]:
        entry = inc.transition(after, later, "bob", "because")
        assert (inc.status, inc.updated_at) == (after, later)
        assert (entry.actor, entry.reason, entry.at) == ("bob", "because", later)
    else:
        with pytest.raises(InvalidTransition, match=f"cannot go from {before} to {after}"):
            inc.transition(after, later, "bob", "because")
        assert (inc.status, inc.updated_at) == (before, T0)


def test_invalid_transition_is_an_aiops_error(h: Harness) -> None:
    assert issubclass(InvalidTransition, AiopsError)
    inc = resolve_by_quiet_period(h, h.signal())
    with pytest.raises(InvalidTransition):
        h.correlator.acknowledge(inc, h.now, "alice", "too late")
    assert inc.status is S.RESOLVED


def test_acknowledged_at_keeps_the_first_acknowledgement() -> None:
    inc = bare_incident(S.OPEN)
    inc.transition(S.ACKNOWLEDGED, T0 + minutes(1), "alice", "mine")
    inc.transition(S.REMEDIATING, T0 + minutes(2), "agent", "change #1")
    inc.transition(S.ACKNOWLEDGED, T0 + minutes(3), "agent", "change #1 failed")
    assert inc.acknowledged_at == T0 + minutes(1)


def test_title_names_what_is_anomalous_most_severe_first(h: Harness) -> None:
    inc = h.observe(name="log_new_template", severity=Severity.INFO)
    assert inc.title == "log_new_template anomalous on web"
    h.observe(name="latency", severity=Severity.WARNING)
    h.observe(name="errors", severity=Severity.CRITICAL)
    h.observe(name="latency", instance="b:80", severity=Severity.WARNING)  # a second series, same name
    assert inc.title == "errors, latency, log_new_template anomalous on web"
    h.observe(name="saturation", severity=Severity.INFO)
    assert inc.title == "errors, latency, log_new_template and 1 more anomalous on web"
