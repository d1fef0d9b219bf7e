"""`aiops incidents close` and `POST /api/v1/incidents/{id}/close`: checked against the store, reviews
read from a file or the body and refused with what is wrong, the leader's answer awaited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.core.domain import IncidentStatus, Priority
from agent.shell.store import Store
from tests.agent.test_cli import aiops
from tests.support.oncall import ALICE, call
from tests.support.records import incident_state, save_incidents

REVIEW = "summary: checkout 500s\nimpact: 4% of orders failed\nroot_cause: stuck worker pool\nactions: [alert on saturation]\n"


def seed(url: str, priority: Priority, status: IncidentStatus = IncidentStatus.RESOLVED) -> None:
    store = Store.open(url)
    try:
        save_incidents(store, incident_state(1, status=status, priority=priority))
    finally:
        store.close()


def test_the_cli_checks_the_review_file_and_the_incident_before_asking(config: Path, tmp_path: Path) -> None:
    seed(f"sqlite:///{config.parent / 'aiops.db'}", Priority.P1)
    refused = aiops("incidents", "close", "1", "--wait", "0", "-c", config, env=ALICE)
    assert refused.exit_code == 1 and "needs a post-incident review" in refused.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("summary: x\nimpact: [1, 2\n")
    result = aiops("incidents", "close", "1", "--review", bad, "-c", config)
    assert result.exit_code == 1 and f"{bad}:3" in result.stderr and "not YAML or JSON" in result.stderr
    bad.write_text("summary: x\nimpact: y\nroot_cuase: z\n")
    result = aiops("incidents", "close", "1", "--review", bad, "-c", config)
    assert (
        result.exit_code == 1
        and "root_cause: Field required" in result.stderr
        and "root_cuase" in result.stderr
    )
    missing = aiops("incidents", "close", "1", "--review", tmp_path / "nope.yaml", "-c", config)
    assert missing.exit_code == 1 and "cannot read the review" in missing.stderr
    good = tmp_path / "review.yaml"
    good.write_text(REVIEW)
    asked = aiops("incidents", "close", "1", "--review", good, "--wait", "0", "-c", config, env=ALICE)
    assert asked.exit_code == 0, asked.stderr
    assert "closing incident #1 requested: no agent answered within 0s" in asked.stdout
    store = Store.open(f"sqlite:///{config.parent / 'aiops.db'}")
    try:
        [item] = store.inbox.pending()
        assert (item.kind, item.actor) == ("close_incident", "cli:alice")
        assert item.payload["review"]["root_cause"] == "stuck worker pool"
        assert item.payload["review"]["author"] == "cli:alice"
    finally:
        store.close()


def test_the_cli_refuses_an_incident_that_is_not_resolved(config: Path) -> None:
    seed(f"sqlite:///{config.parent / 'aiops.db'}", Priority.P3, IncidentStatus.OPEN)
    result = aiops("incidents", "close", "1", "-c", config)
    assert result.exit_code == 1 and "incident 1 is open; only a resolved incident is closed" in result.stderr


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"review": {"summary": "x"}}, 422),
        ({"review": {"summary": "a", "impact": "b", "root_cause": "c", "actions": [""]}}, 422),
        ({"other": 1}, 422),
        (None, 409),  # P1 without a review
        ({"review": {"summary": "a", "impact": "b", "root_cause": "c"}}, 202),  # no leader here to answer
    ],
)
def test_close_over_http(client: tuple[TestClient, Store, list[int]], body: Any, code: int) -> None:
    c, store, _ = client
    save_incidents(store, incident_state(1, status=IncidentStatus.RESOLVED, priority=Priority.P1))
    assert call(c, "POST", "/api/v1/incidents/1/close", "viewer", json=body).status_code == 403
    r = call(c, "POST", "/api/v1/incidents/1/close", "operator", json=body)
    assert r.status_code == code, r.text
    assert len(store.inbox.pending()) == (1 if code == 202 else 0)
