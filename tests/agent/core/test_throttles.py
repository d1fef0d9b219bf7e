"""Throttles and noise in the core: a rule's rate limit and `require`, flapping incidents, and inhibition
by an urgent incident on a service others depend on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from agent.core.events import Tick
from tests.agent.core.test_engine import Rig, diagnose, rig_for, write_config


def held(r: Rig, incident_id: int) -> list[str]:
    return [e.reason for e in r.store.incidents.timeline(incident_id) if e.kind == "remediation_held"]


def test_a_rate_limit_holds_the_rule_across_incidents_until_the_period_frees_a_change(tmp_path: Path) -> None:
    rule = diagnose(cooldown="1m", rate_limit={"max": 1, "per": "1h"})
    for r in rig_for(write_config(tmp_path, [rule])):
        r.apply(r.alert())
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=2)))  # a second incident
        assert len(r.changes()) == 1
        assert held(r, 2) == ["rule diagnose held back: rate limit: 1 of 1 changes of rule diagnose per 1h"]
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=30)))
        r.apply(Tick(), after=timedelta(minutes=28))
        assert len(r.changes()) == 2  # an hour after the first change


def test_require_waits_for_enough_signals_within_the_window(tmp_path: Path) -> None:
    rule = {**diagnose(), "require": {"count": 3, "within": "5m"}}
    for r in rig_for(write_config(tmp_path, [rule])):
        r.apply(r.alert())
        assert r.changes() == []
        assert held(r, 1) == ["rule diagnose held back: waits for 3 matching signals within 5m"]
        r.apply(r.alert(after=timedelta(minutes=4)))
        r.apply(r.alert(after=timedelta(minutes=2)))  # the first is now 6 minutes old: 2 within 5m
        assert r.changes() == []
        r.apply(r.alert(after=timedelta(seconds=30)))
        assert len(r.changes()) == 1
        assert len(held(r, 1)) == 1  # said once


def test_an_incident_whose_signals_come_and_go_flaps_and_holds_automation(tmp_path: Path) -> None:
    rule = diagnose(cooldown="90s", max_attempts=10)
    path = write_config(
        tmp_path,
        [rule],
        dry_run=False,
        correlation={
            "window": "1m",
            "quiet_period": "5m",
            "reopen_window": "10m",
            "settle_period": "10s",
            "flapping": {"transitions": 3, "within": "10m"},
        },
    )
    for r in rig_for(path):
        r.apply(r.alert())
        [first] = r.changes()
        r.finish(first.id)
        for _ in range(2):  # firing, resolved, firing, resolved, firing: four transitions
            r.apply(r.alert(status="resolved", after=timedelta(seconds=20)))
            r.apply(r.alert(after=timedelta(seconds=20)))
        incident = r.store.incidents.get(1)
        assert incident.flapping
        kinds = [e.kind for e in r.store.incidents.timeline(1)]
        assert "flapping" in kinds
        r.apply(r.alert(after=timedelta(minutes=1)))  # the rule's cooldown is over
        assert len(r.changes()) == 1, "a flapping incident runs nothing more"
        assert held(r, 1)[-1].endswith(
            "incident flapping: more than 3 open/clear transitions of its signals within 10m"
        )
        for _ in range(10):  # steady for ten minutes: the window empties
            r.apply(r.alert(after=timedelta(minutes=1)))
        assert not r.store.incidents.get(1).flapping
        assert "flapping_ended" in [e.kind for e in r.store.incidents.timeline(1)]
        assert len(r.changes()) == 2


def services_with_dependency(directory: Path) -> Path:
    doc: dict[str, Any] = {
        "services": [
            {"name": "db", "tier": 1, "selectors": [{"match": {"job": "db"}}]},
            {"name": "web", "tier": 2, "depends_on": ["db"], "selectors": [{"match": {"job": "web"}}]},
        ]
    }
    path = directory / "services.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_an_urgent_incident_upstream_inhibits_automation_on_its_dependents(tmp_path: Path) -> None:
    rule = {**diagnose(), "match": {"service": "web"}}
    services = services_with_dependency(tmp_path)
    for r in rig_for(write_config(tmp_path / "c", [rule], services_file=str(services))):
        r.apply(r.alert("DbDown", job="db"))  # tier 1, critical: P1
        db = r.store.incidents.list()[0]
        assert (db.service, db.priority) == ("db", "P1")
        r.apply(r.alert("WebErrors", job="web", after=timedelta(seconds=5)))
        web = next(i for i in r.store.incidents.list() if i.service == "web")
        assert r.changes() == []
        assert held(r, web.id) == [
            f"rule diagnose held back: inhibited by incident #{db.id} (P1) on db, which web depends on"
        ]
        r.apply(r.alert("WebErrors", job="web", after=timedelta(seconds=30)))  # keeps web active
        r.apply(r.alert("DbDown", job="db", status="resolved", after=timedelta(seconds=5)))
        r.apply(r.alert("WebErrors", job="web", after=timedelta(seconds=30)))
        r.apply(Tick(), after=timedelta(minutes=1))  # db resolves after its quiet period
        assert r.store.incidents.get(db.id).status == "resolved"
        [change] = r.changes()
        assert change.incident_id == web.id


def test_a_minor_incident_upstream_inhibits_nothing(tmp_path: Path) -> None:
    rule = {**diagnose(), "match": {"service": "web"}}
    services = services_with_dependency(tmp_path)
    for r in rig_for(write_config(tmp_path / "c", [rule], services_file=str(services))):
        r.apply(r.alert("DbSlow", job="db", severity="info"))  # tier 1, info: P3
        assert r.store.incidents.list()[0].priority == "P3"
        r.apply(r.alert("WebErrors", job="web", after=timedelta(seconds=5)))
        assert len(r.changes()) == 1


def test_a_flapping_incident_stays_flapping_across_a_restart(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        [diagnose(cooldown="1s", max_attempts=10)],
        correlation={"window": "1m", "quiet_period": "5m", "reopen_window": "10m", "settle_period": "10s",
                     "flapping": {"transitions": 1, "within": "10m"}},
    )  # fmt: skip
    for r in rig_for(path):
        r.apply(r.alert())
        r.apply(r.alert(status="resolved", after=timedelta(seconds=10)))
        r.apply(r.alert(after=timedelta(seconds=10)))
        assert r.store.incidents.get(1).flapping
        before = len(r.changes())
    for r in rig_for(path):  # a new core (restart, failover) loaded from the store
        r.clock.advance(timedelta(seconds=30))
        ws = r.store.working_set(r.clock.now(), timedelta(minutes=10), r.core.horizon, timedelta(hours=1))
        r.core.load(ws)
        r.apply(r.alert(after=timedelta(seconds=10)))
        r.apply(Tick(), after=timedelta(seconds=10))
        assert r.store.incidents.get(1).flapping
        assert len(r.changes()) == before
        r.apply(r.alert(after=timedelta(minutes=10)))
        r.apply(Tick(), after=timedelta(seconds=10))
        assert not r.store.incidents.get(1).flapping
        assert len(r.changes()) > before
