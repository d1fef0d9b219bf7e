"""The decision core fed events one at a time: what it decides, and that its decisions are recorded once.

The core runs under an inline Runtime on a real SQLite store (the store assigns ids, as in `aiops
run`), with a manual clock, so every event time is exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.clock import ManualClock
from agent.config import Config, load_config
from agent.core.decisions import Decisions
from agent.core.domain import ChangeStatus, IncidentStatus
from agent.core.engine import Core
from agent.core.events import Acknowledge, AlertsReceived, ChangeProgress, Event, Tick
from agent.shell.runtime import Runtime
from agent.shell.store import Store
from integrations.alertmanager import ExternalAlert

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def write_config(directory: Path, rules: list[dict[str, Any]], dry_run: bool = True, **agent: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "dry_run": dry_run,
        "store": {"url": f"sqlite:///{directory / 'aiops.db'}"},
        "prometheus": {"url": "http://127.0.0.1:9"},
        "correlation": {"window": "1m", "quiet_period": "1m", "reopen_window": "10m", "settle_period": "10s"},
        "api": {"enabled": False},
        "services_file": str(ROOT / "config" / "services.yaml"),
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
        **agent,
    }
    (directory / "agent.yaml").write_text(yaml.safe_dump(doc))
    (directory / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}))
    return directory / "agent.yaml"


def diagnose(name: str = "diagnose", **guards: Any) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"service": "demo-web"},
        "runbook": "collect_diagnostics",
        "params": {"incident_id": "{incident.id}", "service": "{service}"},
        "guards": {"cooldown": "5m", "max_attempts": 2, **guards},
    }


@dataclass
class Rig:
    config: Config
    store: Store
    clock: ManualClock
    core: Core
    runtime: Runtime
    seen: list[Decisions] = field(default_factory=list)

    def apply(self, event: Event, after: timedelta = timedelta(0)) -> Decisions:
        self.clock.advance(after)
        return self.runtime.submit(event).result()

    def alert(
        self,
        name: str = "DemoHighLatency",
        status: str = "firing",
        after: timedelta = timedelta(0),
        **labels: str,
    ) -> AlertsReceived:
        """An alert sent `after` from now (the clock moves there first: the alert happens then)."""
        labels = {"alertname": name, "job": "demo", "severity": "critical", **labels}
        at = self.clock.advance(after)
        ends = at if status == "resolved" else None
        return AlertsReceived([ExternalAlert(name, status, labels, {}, at, ends, "")], "test")  # type: ignore[arg-type]

    def finish(self, change_id: int, status: ChangeStatus = ChangeStatus.FAILED) -> None:
        """What the executor does when a change ends: the store moves it and tells the core's inbox."""
        at = self.clock.now()
        outcome = "verified" if status is ChangeStatus.SUCCEEDED else "failed"
        progress = ChangeProgress(change_id, 1, "", at, "", status, outcome, f"change #{change_id} {status}")
        moved = self.store.changes.transition(
            change_id, [ChangeStatus.APPROVED, ChangeStatus.RUNNING], status, progress=progress
        )
        assert moved
        self.runtime.wake()

    def changes(self) -> list[Any]:
        return sorted(self.store.changes.list(), key=lambda c: c.id)

    def kinds(self, incident_id: int) -> list[str]:
        return [e.kind for e in self.store.incidents.timeline(incident_id)]


def rig_for(config_path: Path, routes: dict[str, list[str]] | None = None) -> Iterator[Rig]:
    """A rig whose store queues the notifications `routes` names (none by default)."""
    config = load_config(config_path)
    store = Store.open(config.agent.store.url)
    clock = ManualClock(T0)
    core = Core(config)
    seen: list[Decisions] = []
    committer = store.committer(routes or {}, None)
    runtime = Runtime(core, committer, clock, seen.append, inbox=store.inbox, inline=True)
    yield Rig(config, store, clock, core, runtime, seen)
    store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(write_config(tmp_path, [diagnose()]))


# ---------------------------------------------------------------- from alert to change


def test_an_alert_opens_an_incident_and_its_rule_plans_a_change_naming_the_stored_id(rig: Rig) -> None:
    rig.apply(rig.alert())
    [incident] = rig.store.incidents.list()
    assert incident.id == 1 and incident.service == "demo-web"
    [change] = rig.changes()
    # the change was planned after the store gave the incident its id, so the parameter names it
    assert (change.incident_id, change.params["incident_id"], change.status) == (1, 1, ChangeStatus.DRY_RUN)
    assert rig.kinds(1) == ["opened", "rule_matched", "change_created"]
    [created] = [e for e in rig.store.incidents.timeline(1) if e.kind == "change_created"]
    assert created.reason == f"change #{change.id}: dry-run: recorded, not executed"
    assert created.data == {"change_id": change.id}


def test_repeats_are_one_signal_and_plan_nothing_more(rig: Rig) -> None:
    rig.apply(rig.alert())
    for _ in range(3):
        rig.apply(rig.alert(after=timedelta(seconds=30)))
    [signal] = rig.store.incidents.signals(1)
    assert signal.count == 4
    assert len(rig.changes()) == 1
    # the dry-run change started the rule's cooldown; why it holds back is noted once, not per repeat
    assert rig.kinds(1) == ["opened", "rule_matched", "change_created", "remediation_skipped"]


def test_cooldown_and_max_attempts_hold_later_changes_back(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [diagnose(cooldown="5m", max_attempts=2)], dry_run=False)):
        r.apply(r.alert())
        [first] = r.changes()
        assert first.status == ChangeStatus.APPROVED  # a standard change runs unless dry-run
        r.finish(first.id)
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=1)))  # a new signal: the rule applies again
        assert len(r.changes()) == 1
        [skip] = [e for e in r.store.incidents.timeline(1) if e.kind == "remediation_skipped"]
        assert (
            skip.reason == "rule diagnose: cooldown active for 0:05:00 more"
        )  # noted once, when it first held
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=5)))  # cooldown over: a second attempt
        second = r.changes()[1]
        assert (second.attempt, second.status) == (2, ChangeStatus.APPROVED)
        r.finish(second.id)
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=6)))  # cooldown over again, but...
        assert len(r.changes()) == 2 and len(r.store.incidents.list()) == 1
        reasons = [e.reason for e in r.store.incidents.timeline(1) if e.kind == "remediation_skipped"]
        assert reasons[-1] == "rule diagnose: max attempts reached (2/2)"


def test_an_open_change_holds_every_other_rule_back(tmp_path: Path) -> None:
    rules = [diagnose("first"), diagnose("second")]
    for r in rig_for(write_config(tmp_path, rules, dry_run=False)):
        r.apply(r.alert())
        r.apply(r.alert(instance="b:1", after=timedelta(seconds=10)))
        assert [c.rule for c in r.changes()] == ["first"]
        r.finish(r.changes()[0].id)
        r.apply(r.alert(instance="c:1", after=timedelta(seconds=10)))
        assert [c.rule for c in r.changes()] == ["first", "second"]


def test_an_approval_reaches_the_core_through_the_inbox(tmp_path: Path) -> None:
    rule = {**diagnose(), "guards": {"approval": "required"}}
    for r in rig_for(write_config(tmp_path, [rule], dry_run=False)):
        r.apply(r.alert())
        [change] = r.changes()
        assert change.status == ChangeStatus.AWAITING_APPROVAL
        r.store.changes.decide(change.id, True, "cli:alice", r.clock.now(), note="go")
        r.seen.clear()
        r.runtime.wake()
        assert [out.run for out in r.seen] == [[change.id]]  # handed to the executor once
        assert r.store.inbox.pending() == []


def test_resolving_an_incident_withdraws_its_change_awaiting_approval(tmp_path: Path) -> None:
    rule = {**diagnose(), "guards": {"approval": "required"}}
    for r in rig_for(write_config(tmp_path, [rule], dry_run=False)):
        r.apply(r.alert())
        [change] = r.changes()
        r.apply(r.alert(status="resolved", after=timedelta(seconds=5)))
        r.apply(Tick(), after=timedelta(minutes=2))
        assert r.store.incidents.get(1).status == IncidentStatus.RESOLVED
        withdrawn = r.store.changes.get(change.id)
        assert withdrawn.status == ChangeStatus.CANCELLED and "withdrawn" in withdrawn.outcome
        assert r.kinds(1)[-2:] == ["resolved", "change_cancelled"]


def test_progress_of_a_change_whose_incident_the_core_let_go_is_still_recorded(rig: Rig) -> None:
    rig.apply(rig.alert())
    rig.apply(rig.alert(status="resolved", after=timedelta(seconds=5)))
    rig.apply(Tick(), after=timedelta(minutes=2))
    rig.apply(Tick(), after=timedelta(minutes=20))  # beyond the reopen window: forgotten by the core
    assert rig.core.correlator.by_id(1) is None
    step = ChangeProgress(
        99, 1, "verification", rig.clock.now(), "late news", ChangeStatus.SUCCEEDED, "verified", "x"
    )
    rig.apply(step)
    assert rig.kinds(1)[-1] == "verification"
    assert rig.store.incidents.get(1).status == IncidentStatus.RESOLVED  # nothing moved


def test_the_same_events_make_the_same_decisions(tmp_path: Path) -> None:
    """The core is a function of its events and their times: two cores fed the same events agree."""
    texts = []
    for name in ("a", "b"):
        for r in rig_for(write_config(tmp_path / name, [diagnose()])):
            r.apply(r.alert())
            r.apply(r.alert(instance="b:1", after=timedelta(seconds=20)))
            r.apply(r.alert(status="resolved", after=timedelta(seconds=5)))
            r.apply(r.alert(instance="b:1", status="resolved", after=timedelta(seconds=5)))
            r.apply(Tick(), after=timedelta(minutes=2))
            texts.append([(e.at, e.kind, e.reason) for e in r.store.incidents.timeline(1)])
    assert texts[0] == texts[1] and len(texts[0]) >= 5


def test_incidents_co_occurring_across_services_day_after_day_raise_one_candidate(rig: Rig) -> None:
    """Each day demo-web's latency alert is followed within minutes by one on the monitoring stack: on
    the third day the pair is a co-occurrence candidate (counting the days before a takeover, from
    the store), and the fourth updates it rather than adding another. The incidents keep no problem
    of their own (none recurred)."""
    for day in range(4):
        if day == 2:  # a new leader: what it knows of the first two days comes from the store
            a = rig.config.agent
            now = rig.clock.now()
            rig.core.resync(
                rig.store.working_set(now, a.correlation.reopen_window, rig.core.horizon, a.problems.lookback)
            )
        rig.apply(rig.alert(after=timedelta(days=1) if day else timedelta(0)))
        rig.apply(rig.alert("PrometheusSlow", job="prometheus", after=timedelta(minutes=3)))
        rig.apply(rig.alert(status="resolved", after=timedelta(minutes=5)))
        rig.apply(rig.alert("PrometheusSlow", status="resolved", job="prometheus"))
        rig.apply(Tick(), after=timedelta(minutes=20))
        assert [p.occurrences for p in rig.store.problems.list()] == ([day + 1] if day >= 2 else [])
    [pair] = rig.store.problems.list()
    assert (pair.kind, pair.services) == ("cooccurrence", ["demo-web", "monitoring"])
    assert pair.signatures == ["demo-web:DemoHighLatency", "monitoring:PrometheusSlow"]
    assert pair.p_value is not None and pair.p_value < 1e-4 and pair.lift is not None and pair.lift > 50
    assert [i.id for i in rig.store.problems.incidents(pair.id)] == list(range(1, 9))
    assert all(i.problem_id is None for i in rig.store.incidents.list())
    assert "problem" in rig.kinds(8) and "problem" not in rig.kinds(7)


# ---------------------------------------------------------------- notifications

EVERY_EVENT = {
    e: ["sink"]
    for e in (
        "incident_opened",
        "incident_reopened",
        "escalation",
        "sla_breach",
        "incident_acknowledged",
        "incident_resolved",
        "remediation",
    )
}


def queued(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """The notifications queued in the outbox, in order, as recorded at their commit."""
    return [(i.event, i.payload) for i in store.outbox.due(datetime.max.replace(tzinfo=UTC), limit=1000)]


def test_sinks_can_follow_an_incident_from_opening_to_resolution_and_reopening(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [diagnose()]), EVERY_EVENT):
        r.apply(r.alert())
        r.apply(Acknowledge(1, "api:oncall", "looking"), after=timedelta(seconds=10))
        r.apply(r.alert(status="resolved", after=timedelta(seconds=5)))
        r.apply(Tick(), after=timedelta(minutes=2))
        r.apply(r.alert(after=timedelta(minutes=1)))  # recurs within the reopen window
        sent = queued(r.store)
        assert [event for event, _ in sent] == [
            "incident_opened",
            "incident_acknowledged",
            "incident_resolved",
            "incident_reopened",
        ]
        opened, acked, resolved, reopened = (doc for _, doc in sent)
        assert {doc["incident_id"] for _, doc in sent} == {1}
        assert {doc["signature"] for _, doc in sent} == {r.store.incidents.get(1).signature}
        assert (opened["status"], opened["severity"], opened["priority"]) == ("open", "critical", "P1")
        assert (acked["status"], acked["reason"]) == ("acknowledged", "looking")
        assert acked["acknowledged_at"] == (T0 + timedelta(seconds=10)).isoformat()
        assert resolved["status"] == "resolved"
        assert resolved["resolved_at"] == (T0 + timedelta(seconds=15, minutes=2)).isoformat()
        assert (reopened["status"], reopened["resolved_at"]) == ("open", None)


def test_the_agent_handing_an_incident_back_after_a_failed_change_notifies_only_the_escalation(
    tmp_path: Path,
) -> None:
    for r in rig_for(write_config(tmp_path, [diagnose()], dry_run=False), EVERY_EVENT):
        r.apply(r.alert())
        r.apply(Acknowledge(1, "api:oncall", "mine"))
        [change] = r.changes()
        started = ChangeProgress(
            change.id, 1, "", r.clock.now(), "", ChangeStatus.RUNNING, "started", "running"
        )
        r.apply(started)
        r.finish(change.id)
        kinds = r.kinds(1)
        assert kinds[kinds.index("remediating") :][:3] == ["remediating", "acknowledged", "escalated"]
        assert [event for event, _ in queued(r.store)] == [
            "incident_opened",
            "incident_acknowledged",
            "escalation",
        ]
