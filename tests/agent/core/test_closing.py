"""The end of an incident's life: SLA near-breach warnings and breaches, closing by a person (with the
post-incident review P1/P2 need) and by the agent after `incidents.auto_close`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.config.models import AgentConfig
from agent.core.domain import Priority
from agent.core.events import CloseIncident, Tick
from agent.core.records import ReviewBase
from agent.errors import InvalidTransition
from tests.agent.core.test_engine import T0, Rig, diagnose, rig_for, write_config


def kinds(r: Rig, incident_id: int = 1) -> list[str]:
    return [e.kind for e in r.store.incidents.timeline(incident_id)]


def resolve(r: Rig, **labels: str) -> None:
    r.apply(r.alert(status="resolved", after=timedelta(seconds=5), **labels))
    r.apply(Tick(), after=timedelta(minutes=2))  # the test config's quiet period is 1m
    assert r.store.incidents.get(1).status == "resolved"


def review(incident_id: int = 1) -> ReviewBase:
    return ReviewBase(
        incident_id=incident_id,
        summary="checkout returned 500s",
        impact="4% of orders failed for 12 minutes",
        root_cause="a stuck worker pool after a deploy",
        actions=["alert on pool saturation", "canary the next deploy"],
        author="cli:alice",
        created_at=T0,
    )


@pytest.fixture
def rig(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from rig_for(write_config(tmp_path, [diagnose()]))


def test_near_breach_warnings_then_a_breach_that_escalates(rig: Rig) -> None:
    rig.apply(rig.alert())  # P1: acknowledge within 5m, resolve within 1h
    rig.apply(Tick(), after=timedelta(minutes=3, seconds=50))
    assert "sla_warning" not in kinds(rig)
    rig.apply(Tick(), after=timedelta(seconds=20))  # 4m10s: past 80% of 5m
    warnings = [e.reason for e in rig.store.incidents.timeline(1) if e.kind == "sla_warning"]
    assert warnings == ["P1 acknowledge target due in 0:00:50 (at 12:05:00)"]
    assert "sla_warning" in [n.event for out in rig.seen for n in out.notifications]
    rig.apply(Tick(), after=timedelta(seconds=20))
    assert len([k for k in kinds(rig) if k == "sla_warning"]) == 1  # once
    assert not rig.store.incidents.get(1).escalated
    rig.apply(Tick(), after=timedelta(minutes=1))  # past 5m
    incident = rig.store.incidents.get(1)
    assert incident.ack_breached and incident.escalated
    for _ in range(12):  # keep it active towards the resolve target
        rig.apply(rig.alert(after=timedelta(minutes=4)))
    rig.apply(Tick())
    resolve_warnings = [e for e in rig.store.incidents.timeline(1) if e.kind == "sla_warning"]
    assert [e.data["target"] for e in resolve_warnings] == ["acknowledge", "resolve"]


def test_a_person_closes_a_resolved_incident_and_a_recurrence_opens_a_new_one(rig: Rig) -> None:
    rig.apply(rig.alert(severity="info"))  # P3: no review needed
    resolve(rig, severity="info")
    item = rig.store.closing.request(1, "cli:alice", rig.clock.now(), None, [Priority.P1, Priority.P2])
    rig.runtime.wake()
    assert not rig.store.inbox.contains(item)
    incident = rig.store.incidents.get(1)
    assert (incident.status, incident.closed_by) == ("closed", "cli:alice")
    assert kinds(rig)[-1] == "closed"
    assert ("cli:alice", "incident.close") in [(a.actor, a.action) for a in rig.store.audit.list()]
    rig.apply(rig.alert(severity="info", after=timedelta(minutes=1)))  # within the reopen window
    assert [i.status for i in rig.store.incidents.list()] == ["open", "closed"]
    with pytest.raises(InvalidTransition, match="only a resolved incident"):
        rig.store.closing.request(1, "cli:alice", rig.clock.now(), None, [])


def test_a_p1_needs_a_review_to_close_and_keeps_it(rig: Rig) -> None:
    rig.apply(rig.alert())  # P1
    resolve(rig)
    with pytest.raises(InvalidTransition, match="P1: it needs a post-incident review"):
        rig.store.closing.request(1, "cli:alice", rig.clock.now(), None, [Priority.P1, Priority.P2])
    # the core decides with its own config even when the request skipped the store's check
    rig.apply(CloseIncident(1, "cli:mallory", Priority.P1))
    assert rig.store.incidents.get(1).status == "resolved"
    assert kinds(rig)[-1] == "close_refused"
    assert [(a.actor, a.details) for a in rig.store.audit.list() if a.action == "incident.close"] == [
        ("cli:mallory", {"refused": "P1 incidents need a post-incident review before they are closed"})
    ]
    rig.apply(CloseIncident(1, "cli:alice", Priority.P1, review()))
    assert rig.store.incidents.get(1).status == "closed"
    stored = rig.store.closing.review(1)
    assert stored is not None and stored.root_cause == "a stuck worker pool after a deploy"
    assert stored.actions == ["alert on pool saturation", "canary the next deploy"]


def test_the_agent_closes_what_resolved_long_ago_unless_it_needs_a_review(tmp_path: Path) -> None:
    path = write_config(tmp_path, [diagnose()], incidents={"auto_close": "1h"})
    for r in rig_for(path):
        r.apply(r.alert())  # P1, needs a review
        r.apply(r.alert("Other", severity="info", job="prometheus"))  # P4 on monitoring: none needed
        r.apply(r.alert(status="resolved", after=timedelta(seconds=5)))
        r.apply(r.alert("Other", status="resolved", severity="info", job="prometheus"))
        r.apply(Tick(), after=timedelta(minutes=2))
        now = r.clock.now()
        assert r.store.closing.auto_close(now, now - timedelta(hours=1), [Priority.P1], None) == []
        later = now + timedelta(hours=1, minutes=1)
        closed = r.store.closing.auto_close(later, later - timedelta(hours=1), [Priority.P1], None, "old")
        statuses = {i.id: (i.priority, i.status) for i in r.store.incidents.list()}
        assert closed == [i for i, (p, _) in statuses.items() if p == "P4"]
        assert sorted(statuses.values()) == [("P1", "resolved"), ("P4", "closed")]
        assert [e.reason for e in r.store.incidents.timeline(closed[0])][-1] == "old"


def test_auto_close_must_outlast_the_reopen_window() -> None:
    with pytest.raises(ValueError, match=r"auto_close must be longer than correlation\.reopen_window"):
        AgentConfig.model_validate(
            {"incidents": {"auto_close": "10m"}, "correlation": {"reopen_window": "30m"}}
        )
