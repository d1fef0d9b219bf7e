"""The safety envelope in the core: silences and maintenance windows mute, the kill switch, budgets and
circuit breakers hold changes back, and what was held is remediated once the hold ends.

Silences and switches are written to a real SQLite store by its repositories (as the CLI and API do)
and reach the core on a housekeeping tick, as in `aiops run`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config.models import CircuitBreaker, MaintenanceWindow
from agent.core.domain import ChangeStatus
from agent.core.envelope import Matcher, Switch, breaker_open, window_open
from agent.core.events import Tick
from tests.agent.core.test_engine import ROOT, Rig, diagnose, rig_for, write_config


def housekeeping(r: Rig, after: timedelta = timedelta(0)) -> None:
    """What the leader's housekeeping tick hands the core: the store's silences and switches."""
    r.clock.advance(after)
    now = r.clock.now()
    r.apply(Tick(tuple(r.store.silences.current(now)), tuple(r.store.switches.current())))


def silence(r: Rig, *matchers: str, hours: float = 1, comment: str = "deploying") -> int:
    now = r.clock.now()
    row = r.store.silences.add(
        [Matcher.parse(m) for m in matchers], now, now + timedelta(hours=hours), "cli:alice", comment, now
    )
    assert row.id is not None
    return row.id


def switch(r: Rig, kind: str, service: str | None = None, runbook: str | None = None) -> None:
    r.store.switches.add(Switch(kind, service, runbook, "db migration", "cli:alice", r.clock.now()))  # type: ignore[arg-type]


def timeline(r: Rig, incident_id: int = 1) -> list[tuple[str, str]]:
    return [(e.kind, e.reason) for e in r.store.incidents.timeline(incident_id)]


def notified(r: Rig) -> list[str]:
    return [n.event for out in r.seen for n in out.notifications]


# ---------------------------------------------------------------- matchers and windows


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("pod=web-1", {"pod": "web-1"}, True),
        ("pod=web-1", {"pod": "web-10"}, False),
        ("pod!=web-1", {"pod": "web-2"}, True),
        ("pod!=web-1", {}, True),
        ("pod=", {}, True),  # a missing label is the empty string
        ("pod=~web-.*", {"pod": "web-3"}, True),
        ("pod=~web", {"pod": "web-3"}, False),  # regular expressions match the whole value
        ("pod!~web-[0-9]", {"pod": "web-x"}, True),
        ("msg=a=b", {"msg": "a=b"}, True),  # the first operator splits
    ],
)
def test_matchers_follow_alertmanager_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["pod", "=x", "1pod=x", "pod=~(", "pod~x"])
def test_a_malformed_matcher_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"matcher|regular expression"):
        Matcher.parse(text)


def test_a_recurring_window_opens_in_its_own_time_zone() -> None:
    nightly = MaintenanceWindow(cron="0 2 * * *", duration=timedelta(hours=1), timezone="Europe/Berlin")
    winter = datetime(2026, 1, 10, tzinfo=UTC)  # Berlin is UTC+1
    assert not window_open(nightly, winter.replace(hour=0, minute=59))
    assert window_open(nightly, winter.replace(hour=1, minute=0))
    assert window_open(nightly, winter.replace(hour=1, minute=59))
    assert not window_open(nightly, winter.replace(hour=2, minute=0))
    summer = datetime(2026, 7, 10, tzinfo=UTC)  # UTC+2: the same local hour is an hour earlier in UTC
    assert window_open(nightly, summer.replace(hour=0, minute=30))
    assert not window_open(nightly, summer.replace(hour=1, minute=30))


def test_a_one_off_window_is_half_open() -> None:
    start = datetime(2026, 3, 1, 22, tzinfo=UTC)
    w = MaintenanceWindow(start=start, end=start + timedelta(hours=2))
    assert [window_open(w, start + timedelta(minutes=m)) for m in (-1, 0, 119, 120)] == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 2 * * *"}, "positive duration"),
        ({"cron": "0 25 * * *", "duration": "1h"}, "invalid cron"),
        ({"cron": "0 2 * * *", "duration": "1h", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"start": "2026-03-01T22:00:00", "end": "2026-03-01T23:00:00"}, "time zone"),
        ({"start": "2026-03-01T22:00:00Z", "end": "2026-03-01T21:00:00Z"}, "after start"),
        ({"start": "2026-03-01T22:00:00Z", "cron": "0 2 * * *", "duration": "1h"}, "either"),
    ],
)
def test_a_broken_window_is_refused_with_why(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaintenanceWindow.model_validate(fields)


def test_a_breaker_needs_k_failures_close_together_and_a_resume_closes_it() -> None:
    cfg = CircuitBreaker(failures=2, within=timedelta(minutes=30))
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    spread = [t, t + timedelta(minutes=31)]
    assert breaker_open(spread, (), "web", "restart", cfg, t + timedelta(hours=1)) is None
    close = [t, t + timedelta(minutes=29)]
    assert "2 failed changes of restart on web" in (
        breaker_open(close, (), "web", "restart", cfg, t + timedelta(hours=1)) or ""
    )
    resumed = (Switch("resume", "web", "restart", "fixed", "cli:bob", t + timedelta(minutes=40)),)
    assert breaker_open(close, resumed, "web", "restart", cfg, t + timedelta(hours=1)) is None
    other = (Switch("resume", "web", "other", "fixed", "cli:bob", t + timedelta(minutes=40)),)
    assert breaker_open(close, other, "web", "restart", cfg, t + timedelta(hours=1)) is not None


# ---------------------------------------------------------------- silences


@pytest.fixture
def live(tmp_path: Path) -> Any:
    """A rig that acts (not dry-run), with a short cooldown so later signals may try again."""
    rules = [diagnose(cooldown="1m", max_attempts=10)]
    yield from rig_for(
        write_config(
            tmp_path,
            rules,
            dry_run=False,
            remediation={"circuit_breaker": {"failures": 2, "within": "1h"}},
            notifications=[{"name": "hook", "url": "http://127.0.0.1:9/x", "events": ["incident_opened"]}],
        )
    )


def test_a_silenced_signal_opens_its_incident_but_acts_on_nothing_and_notifies_nobody(live: Rig) -> None:
    sid = silence(live, "service=demo-web", "alertname=~Demo.*")
    housekeeping(live)
    live.apply(live.alert())
    [incident] = live.store.incidents.list()
    assert live.changes() == []
    [sig] = live.store.incidents.signals(incident.id)
    assert sig.muted.startswith(f"silence #{sid} (service=demo-web, alertname=~Demo.*; cli:alice: deploying)")
    kinds = [k for k, _ in timeline(live)]
    assert kinds[:2] == ["opened", "signal_muted"] and "remediation_held" in kinds
    assert "incident_opened" not in notified(live)


def test_expiring_a_silence_remediates_what_is_still_active(live: Rig) -> None:
    sid = silence(live, "service=demo-web")
    housekeeping(live)
    live.apply(live.alert())
    assert live.changes() == []
    live.store.silences.expire(sid, "cli:bob", live.clock.now())
    housekeeping(live, after=timedelta(seconds=5))
    [change] = live.changes()
    assert change.status == ChangeStatus.APPROVED
    assert [k for k, _ in timeline(live)][-3:] == ["signal_unmuted", "rule_matched", "change_created"]


def test_a_silence_that_matches_other_labels_changes_nothing(live: Rig) -> None:
    silence(live, "service=demo-web", "instance=other:1")
    housekeeping(live)
    live.apply(live.alert(instance="web:1"))
    assert len(live.changes()) == 1
    assert "incident_opened" in notified(live)


def test_a_silence_ending_by_time_needs_no_person(live: Rig) -> None:
    silence(live, "service=demo-web", hours=0.5)
    housekeeping(live)
    live.apply(live.alert())
    live.apply(live.alert(after=timedelta(seconds=30)))  # keeps the incident active
    assert live.changes() == []
    for _ in range(6):
        live.apply(live.alert(after=timedelta(minutes=5)))
    assert len(live.changes()) == 1  # unmuted on the first event after the silence ended


def test_a_maintenance_window_mutes_its_service(tmp_path: Path) -> None:
    services = yaml.safe_load((ROOT / "config" / "services.yaml").read_text())
    web = next(s for s in services["services"] if s["name"] == "demo-web")
    web["maintenance"] = [
        {"name": "patching", "start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:30:00Z"}
    ]
    (tmp_path / "services.yaml").write_text(yaml.safe_dump(services))
    path = write_config(tmp_path / "c", [diagnose()], services_file=str(tmp_path / "services.yaml"))
    for r in rig_for(path):
        r.apply(r.alert())  # T0 is 12:00, inside the window
        assert r.changes() == []
        assert (
            "signal_muted",
            "DemoHighLatency muted by maintenance window patching of demo-web",
        ) in timeline(r)
        r.apply(r.alert(after=timedelta(minutes=31)))
        assert len(r.changes()) == 1


# ---------------------------------------------------------------- the kill switch


def test_a_pause_holds_every_change_and_a_resume_remediates_what_is_still_active(live: Rig) -> None:
    switch(live, "pause")
    housekeeping(live)
    live.apply(live.alert())
    assert live.changes() == []
    held = [reason for kind, reason in timeline(live) if kind == "remediation_held"]
    assert held == ["rule diagnose held back: automation paused everywhere by cli:alice: db migration"]
    live.apply(live.alert(after=timedelta(minutes=2)))
    assert len([k for k, _ in timeline(live) if k == "remediation_held"]) == 1  # said once
    switch(live, "resume")
    housekeeping(live, after=timedelta(seconds=5))
    assert [c.status for c in live.changes()] == [ChangeStatus.APPROVED]


def test_a_pause_of_another_service_holds_nothing_here(live: Rig) -> None:
    switch(live, "pause", service="monitoring")
    housekeeping(live)
    live.apply(live.alert())
    assert len(live.changes()) == 1


def test_a_service_pause_outlasts_a_global_resume(live: Rig) -> None:
    switch(live, "pause", service="demo-web")
    switch(live, "resume")
    housekeeping(live)
    live.apply(live.alert())
    assert live.changes() == []


# ---------------------------------------------------------------- budgets and breakers


def test_a_budget_holds_changes_until_the_period_frees_one(tmp_path: Path) -> None:
    budgets = [{"scope": "service", "max": 1, "per": "1h"}]
    path = write_config(tmp_path, [diagnose(cooldown="1m")], remediation={"budgets": budgets})
    for r in rig_for(path):
        r.apply(r.alert())
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=2)))  # a second incident
        assert len(r.store.incidents.list()) == 2 and len(r.changes()) == 1
        held = [reason for kind, reason in timeline(r, 2) if kind == "remediation_held"]
        assert held == ["rule diagnose held back: budget spent: 1 of 1 changes per 1h for service demo-web"]
        r.apply(r.alert(instance="b:1", after=timedelta(minutes=30)))
        assert len(r.changes()) == 1
        r.apply(Tick(), after=timedelta(minutes=29))  # an hour after the first change
        assert len(r.changes()) == 2


def test_failed_changes_open_the_breaker_and_a_resume_closes_it(live: Rig) -> None:
    live.apply(live.alert())
    live.finish(live.changes()[0].id)
    live.apply(live.alert(instance="b:1", after=timedelta(minutes=2)))
    live.finish(live.changes()[1].id)
    opened = [reason for kind, reason in timeline(live) if kind == "circuit_breaker_opened"]
    assert opened == [
        "circuit breaker open: 2 failed changes of collect_diagnostics on demo-web within 1h "
        "(resume with `aiops automation resume --service demo-web`)"
    ]
    assert "escalation" in notified(live)
    [audit] = [a for a in live.store.audit.list() if a.action == "circuit_breaker.open"]
    assert audit.actor == "agent" and audit.target == "runbook:collect_diagnostics@demo-web"
    live.apply(live.alert(instance="c:1", after=timedelta(minutes=2)))
    assert len(live.changes()) == 2
    assert "circuit breaker open" in timeline(live)[-1][1]
    switch(live, "resume", service="demo-web", runbook="collect_diagnostics")
    housekeeping(live, after=timedelta(seconds=5))
    assert len(live.changes()) == 3


def test_silences_and_switches_survive_a_restart(tmp_path: Path) -> None:
    path = write_config(tmp_path, [diagnose()], dry_run=False)
    for r in rig_for(path):
        silence(r, "service=demo-web")
    for r in rig_for(path):  # a new core, loaded from the store only
        ws = r.store.working_set(r.clock.now(), timedelta(minutes=10), r.core.horizon, timedelta(hours=1))
        r.core.load(ws)
        r.apply(r.alert())
        assert r.changes() == []
