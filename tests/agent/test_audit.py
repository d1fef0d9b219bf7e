"""The audit trail: `aiops audit`, `GET /api/v1/audit` (admin), and the configuration each agent started
with, as digests and what changed since the last start."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.shell.app import AgentApp
from agent.shell.store import Store
from tests.agent.test_cli import aiops, json_out
from tests.support.oncall import ALICE, call


def test_the_cli_lists_and_filters_the_trail(config: Path) -> None:
    assert (
        aiops(
            "silences", "add", "-m", "service=x", "--for", "1h", "--comment", "c", "-c", config, env=ALICE
        ).exit_code
        == 0
    )
    assert (
        aiops("automation", "pause", "--reason", "freeze", "-c", config, env={"AIOPS_ACTOR": "bob"}).exit_code
        == 0
    )
    every = json_out(aiops("audit", "--json", "-c", config))
    assert [(d["actor"], d["action"]) for d in every] == [
        ("cli:bob", "automation.pause"),
        ("cli:alice", "silence.add"),
    ]
    assert [d["action"] for d in json_out(aiops("audit", "--action", "silence", "--json", "-c", config))] == [
        "silence.add"
    ]
    assert [d["action"] for d in json_out(aiops("audit", "--actor", "cli:bob", "--json", "-c", config))] == [
        "automation.pause"
    ]
    text = aiops("audit", "-c", config).stdout
    assert "automation.pause" in text and "reason=freeze" in text
    bad = aiops("audit", "--since", "yesterday", "-c", config)
    assert bad.exit_code == 1 and "--since" in bad.stderr


def test_the_api_shows_the_trail_to_admins_only(client: tuple[TestClient, Store, list[int]]) -> None:
    c = client[0]
    body = {"matchers": ["service=web"], "duration": "1h", "comment": "deploy"}
    assert call(c, "POST", "/api/v1/silences", "operator", json=body).status_code == 201
    assert call(c, "GET", "/api/v1/audit").status_code == 401
    assert call(c, "GET", "/api/v1/audit", "operator").status_code == 403
    [entry] = call(c, "GET", "/api/v1/audit", "admin").json()
    assert (entry["actor"], entry["action"], entry["details"]["comment"]) == (
        "api:oncall",
        "silence.add",
        "deploy",
    )
    assert call(c, "GET", "/api/v1/audit?action=change", "admin").json() == []
    assert call(c, "GET", "/api/v1/audit?since=2026-01-01T00:00:00", "admin").status_code == 422
    assert call(c, "GET", "/api/v1/audit?since=2999-01-01T00:00:00Z", "admin").json() == []


def test_each_start_records_its_configuration_and_what_changed(config: Path) -> None:
    def start_and_stop() -> None:
        app = AgentApp(load_config(config), registry=CollectorRegistry())
        app.start()
        app.stop()

    start_and_stop()
    rules = config.parent / "rules.yaml"
    doc = yaml.safe_load(rules.read_text())
    doc["rules"][0]["guards"]["cooldown"] = "7m"
    rules.write_text(yaml.safe_dump(doc))
    start_and_stop()
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        loads = [a for a in store.audit.list() if a.action == "config.load"]
    finally:
        store.close()
    assert [a.details["changed"] for a in loads] == [["rules"], []]
    assert loads[0].details["files"]["rules"] != loads[1].details["files"]["rules"]
    assert loads[0].details["files"]["agent"] == loads[1].details["files"]["agent"]
    assert "token" not in str(loads[0].details)  # digests of files, never their contents
