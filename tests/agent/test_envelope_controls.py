"""Silences and the kill switch as on-call engineers use them: `aiops silences|automation` and the same
operations over HTTP, on a real SQLite store; every write is audited with who made it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.core.domain import ChangeStatus
from agent.core.envelope import Switch
from agent.shell.store import Store
from tests.agent.test_api import TOKENS
from tests.agent.test_cli import aiops, json_out
from tests.support.oncall import ALICE, call
from tests.support.records import T0, add_change, incident_state, save_incidents


def audit(config: Path) -> list[tuple[str, str, str]]:
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        return [(a.actor, a.action, a.target) for a in reversed(store.audit.list())]
    finally:
        store.close()


# ---------------------------------------------------------------- CLI: silences


def test_a_silence_is_added_listed_and_expired_with_its_author(config: Path) -> None:
    added = json_out(
        aiops(
            "silences", "add", "-m", "service=demo-web", "-m", "instance=~web-.*", "--for", "2h",
            "--comment", "rolling restart", "--json", "-c", config, env=ALICE,
        )
    )  # fmt: skip
    assert added["matchers"] == ["service=demo-web", "instance=~web-.*"]
    assert (added["state"], added["created_by"], added["comment"]) == (
        "active",
        "cli:alice",
        "rolling restart",
    )
    [listed] = json_out(aiops("silences", "list", "--json", "-c", config))
    assert listed["id"] == added["id"]
    table = aiops("silences", "list", "-c", config)
    assert "service=demo-web, instance=~web-.*" in table.stdout and "rolling restart" in table.stdout

    done = aiops("silences", "expire", str(added["id"]), "-c", config, env={"AIOPS_ACTOR": "bob"})
    assert done.exit_code == 0 and f"silence #{added['id']} expired" in done.stdout
    assert json_out(aiops("silences", "list", "--json", "-c", config)) == []
    [ended] = json_out(aiops("silences", "list", "--all", "--json", "-c", config))
    assert (ended["state"], ended["expired_by"]) == ("expired", "cli:bob")
    again = aiops("silences", "expire", str(added["id"]), "-c", config)
    assert again.exit_code == 1 and "already ended" in again.stderr
    assert aiops("silences", "expire", "999", "-c", config).exit_code == 1
    assert audit(config) == [
        ("cli:alice", "silence.add", f"silence:{added['id']}"),
        ("cli:bob", "silence.expire", f"silence:{added['id']}"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "service", "--for", "1h"], "not a matcher"),
        (["-m", "pod=~(", "--for", "1h"], "invalid regular expression"),
        (["-m", "service=x"], "either duration or ends_at"),
        (["-m", "service=x", "--for", "soon"], "invalid duration"),
        (["-m", "service=x", "--for", "1h", "--until", "2030-01-01T00:00:00Z"], "either duration or ends_at"),
        (["-m", "service=x", "--until", "2000-01-01T00:00:00Z"], "in the future"),
        (["-m", "service=x", "--until", "tomorrow"], "not a time"),
        (["-m", "service=x", "--for", "100d"], "at most 90d"),
    ],
)
def test_a_bad_silence_is_refused_with_why_and_nothing_is_stored(
    config: Path, args: list[str], message: str
) -> None:
    result = aiops("silences", "add", *args, "--comment", "x", "-c", config)
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert audit(config) == []


def test_a_silence_needs_a_comment(config: Path) -> None:
    result = aiops("silences", "add", "-m", "service=x", "--for", "1h", "-c", config)
    assert result.exit_code == 2 and "--comment" in result.stderr


# ---------------------------------------------------------------- CLI: the kill switch


def test_pause_and_resume_are_persisted_audited_and_shown(config: Path) -> None:
    assert "automation: running" in aiops("automation", "status", "-c", config).stdout
    paused = aiops(
        "automation", "pause", "--service", "demo-web", "--reason", "db migration", "-c", config, env=ALICE
    )
    assert paused.exit_code == 0, paused.stderr
    doc = json_out(aiops("automation", "status", "--json", "-c", config))
    assert [(p["scope"], p["by"], p["reason"]) for p in doc["paused"]] == [
        ("demo-web", "cli:alice", "db migration")
    ]
    assert "paused demo-web" in aiops("automation", "status", "-c", config).stdout
    assert aiops("automation", "resume", "--service", "demo-web", "-c", config, env=ALICE).exit_code == 0
    assert json_out(aiops("automation", "status", "--json", "-c", config))["paused"] == []
    assert [a[1:] for a in audit(config)] == [
        ("automation.pause", "service:demo-web"),
        ("automation.resume", "service:demo-web"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pause", "--reason", " "], "needs a reason"),
        (["pause", "--service", "nope", "--reason", "x"], "unknown service 'nope'"),
        (["resume", "--runbook", "nope"], "unknown runbook 'nope'"),
    ],
)
def test_a_bad_switch_is_refused(config: Path, args: list[str], message: str) -> None:
    result = aiops("automation", *args, "-c", config)
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert audit(config) == []


def test_the_acting_user_comes_from_a_token_whose_role_must_allow_the_write(config: Path) -> None:
    refused = aiops(
        "automation", "pause", "--reason", "x", "-c", config, env={"AIOPS_TOKEN": TOKENS["operator"]}
    )
    assert refused.exit_code == 1 and "has role operator; this needs admin" in refused.stderr
    unknown = aiops("automation", "pause", "--reason", "x", "-c", config, env={"AIOPS_TOKEN": "z" * 32})
    assert unknown.exit_code == 1 and "matches no token" in unknown.stderr
    done = aiops("automation", "pause", "--reason", "x", "-c", config, env={"AIOPS_TOKEN": TOKENS["admin"]})
    assert done.exit_code == 0, done.stderr
    assert audit(config) == [("cli:root-ops", "automation.pause", "automation")]
    assert TOKENS["admin"] not in done.stdout + done.stderr


def test_there_is_no_free_as_option(config: Path) -> None:
    result = aiops("changes", "approve", "1", "--as", "mallory", "-c", config)
    assert result.exit_code == 2 and "--as" in result.stderr


def test_status_shows_an_open_circuit_breaker_until_resumed(config: Path) -> None:
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        save_incidents(store, incident_state(1))
        recent = datetime.now(UTC) - timedelta(minutes=10)
        for minutes in (0, 5, 9):
            add_change(
                store, 1, ChangeStatus.FAILED, at=recent, finished_at=recent + timedelta(minutes=minutes)
            )
    finally:
        store.close()
    [breaker] = json_out(aiops("automation", "status", "--json", "-c", config))["breakers"]
    assert (breaker["runbook"], breaker["service"]) == ("recycle_workers", "demo-web")
    assert "3 failed changes of recycle_workers on demo-web" in breaker["reason"]
    aiops("automation", "resume", "--service", "demo-web", "--runbook", "recycle_workers", "-c", config)
    assert json_out(aiops("automation", "status", "--json", "-c", config))["breakers"] == []


# ---------------------------------------------------------------- API


def test_silences_over_http(client: tuple[TestClient, Store, list[int]]) -> None:
    c, store, woken = client
    body = {"matchers": ["service=demo-web"], "duration": "30m", "comment": "deploy"}
    assert call(c, "POST", "/api/v1/silences", json=body).status_code == 401
    assert call(c, "POST", "/api/v1/silences", "viewer", json=body).status_code == 403
    r = call(c, "POST", "/api/v1/silences", "operator", json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["created_by"] == "api:oncall" and made["ends_at"] == (T0 + timedelta(minutes=30)).isoformat()
    assert woken  # the leader reads it on its next tick, sooner when this agent leads
    assert [s["id"] for s in call(c, "GET", "/api/v1/silences").json()] == [made["id"]]
    assert call(c, "DELETE", f"/api/v1/silences/{made['id']}", "operator").json()["state"] == "expired"
    assert call(c, "DELETE", f"/api/v1/silences/{made['id']}", "operator").status_code == 409
    assert call(c, "DELETE", "/api/v1/silences/77", "operator").status_code == 404
    assert call(c, "GET", "/api/v1/silences").json() == []
    assert len(call(c, "GET", "/api/v1/silences?all=true").json()) == 1
    assert [a.action for a in store.audit.list()] == ["silence.expire", "silence.add"]


@pytest.mark.parametrize(
    "body",
    [
        {"matchers": [], "duration": "1h", "comment": "x"},
        {"matchers": ["a"], "duration": "1h", "comment": "x"},
        {"matchers": ["a=b"], "comment": "x"},
        {"matchers": ["a=b"], "duration": "1h", "comment": ""},
        {"matchers": ["a=b"], "ends_at": "2026-03-01T13:00:00", "comment": "x"},
        {"matchers": ["a=b"], "ends_at": "2026-03-01T11:00:00Z", "comment": "x"},
        {"matchers": ["a=b"], "duration": "1h", "comment": "x", "author": "mallory"},
        None,
    ],
)
def test_a_bad_silence_request_gets_422_and_stores_nothing(
    client: tuple[TestClient, Store, list[int]], body: Any
) -> None:
    c, store, _ = client
    r = call(c, "POST", "/api/v1/silences", "operator", json=body)
    assert r.status_code == 422, r.text
    assert store.silences.list(T0, include_ended=True) == []


def test_the_kill_switch_over_http_needs_an_admin(client: tuple[TestClient, Store, list[int]]) -> None:
    c, store, _ = client
    body = {"service": "demo-web", "reason": "incident review"}
    assert call(c, "POST", "/api/v1/automation/pause", "operator", json=body).status_code == 403
    r = call(c, "POST", "/api/v1/automation/pause", "admin", json=body)
    assert r.status_code == 200, r.text
    assert [(p["scope"], p["by"]) for p in r.json()["paused"]] == [("demo-web", "api:root-ops")]
    assert call(c, "GET", "/api/v1/automation").json()["paused"][0]["reason"] == "incident review"
    assert (
        call(
            c, "POST", "/api/v1/automation/pause", "admin", json={"service": "nope", "reason": "x"}
        ).status_code
        == 422
    )
    assert call(c, "POST", "/api/v1/automation/pause", "admin", json={"reason": ""}).status_code == 422
    assert call(c, "POST", "/api/v1/automation/resume", "admin").json()["paused"] == [
        {"scope": "demo-web", "by": "api:root-ops", "at": T0.isoformat(), "reason": "incident review"}
    ]  # a global resume leaves a service's own pause
    r = call(c, "POST", "/api/v1/automation/resume", "admin", json={"service": "demo-web"})
    assert r.json()["paused"] == []
    assert [a.action for a in reversed(store.audit.list())] == [
        "automation.pause",
        "automation.resume",
        "automation.resume",
    ]


def test_every_switch_scope_is_one_row_per_kind_however_long_the_log(tmp_path: Path) -> None:
    with contextlib.closing(Store.open(f"sqlite:///{tmp_path / 's.db'}")) as store:
        for i in range(30):
            kind = "pause" if i % 2 == 0 else "resume"
            store.switches.add(Switch(kind, "demo-web", None, f"#{i}", "cli:a", T0 + timedelta(seconds=i)))  # type: ignore[arg-type]
        current = store.switches.current()
        assert [(s.kind, s.reason) for s in current] == [("pause", "#28"), ("resume", "#29")]
        assert len(store.switches.log(100)) == 30


# ---------------------------------------------------------------- retry and rollback requests


def test_retry_and_rollback_requests_are_checked_before_they_reach_the_leader(
    client: tuple[TestClient, Store, list[int]],
) -> None:
    c, store, woken = client
    save_incidents(store, incident_state(1))
    running = add_change(store, 1, ChangeStatus.RUNNING)
    failed = add_change(store, 1, ChangeStatus.FAILED, rule="other", finished_at=T0)
    assert call(c, "POST", f"/api/v1/changes/{failed}/retry").status_code == 401
    assert call(c, "POST", f"/api/v1/changes/{failed}/retry", "viewer").status_code == 403
    assert call(c, "POST", "/api/v1/changes/999/retry", "operator").status_code == 404
    r = call(c, "POST", f"/api/v1/changes/{running}/retry", "operator")
    assert r.status_code == 409 and "wait until it has finished" in r.json()["detail"]
    r = call(c, "POST", f"/api/v1/changes/{failed}/rollback", "operator")
    assert r.status_code == 409 and "no rollback playbook" in r.json()["detail"]
    assert store.inbox.pending() == []
    # no leader here to apply it: accepted, in the inbox with the change as the store had it
    r = call(c, "POST", f"/api/v1/changes/{failed}/retry", "operator", json={"note": "again"})
    assert r.status_code == 202, r.text
    [item] = store.inbox.pending()
    assert (item.kind, item.actor, item.payload["origin_id"], item.payload["note"]) == (
        "change_requested",
        "api:oncall",
        failed,
        "again",
    )
    assert item.payload["origin"]["status"] == "failed" and woken


def test_cli_retry_says_when_no_agent_answered(config: Path) -> None:
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        save_incidents(store, incident_state(1))
        failed = add_change(store, 1, ChangeStatus.FAILED, finished_at=T0)
    finally:
        store.close()
    done = aiops("changes", "retry", str(failed), "--wait", "0", "-c", config, env=ALICE)
    assert done.exit_code == 0, done.stderr
    assert f"retry of change #{failed} requested: no agent answered within 0s" in done.stdout
    assert aiops("changes", "rollback", str(failed), "-c", config).exit_code == 1
