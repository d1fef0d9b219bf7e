"""The review UI in a real browser (Debian's Chromium driven by Playwright) against the real API server.

An on-call engineer opens an incident, reads its evidence (hostile label values and log lines must show
as text and run nothing) and its changes, and approves or rejects changes with a token.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock
from agent.config.models import ApiConfig
from agent.core.domain import ChangeStatus, IncidentStatus, Priority
from agent.shell.api import create_app
from agent.shell.store import Store
from agent.shell.store.tables import RunbookEvent
from demo.processes import free_port, wait_until
from tests.conftest import require
from tests.support.records import (
    T0,
    add_change,
    approvals_in_inbox,
    incident_state,
    save_incidents,
    signal_state,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
TOKENS = {
    "viewer": "viewer-token-0123456789abcdef",
    "operator": "operator-token-0123456789abcdef",
}
NAMES = {"viewer": "dashboard", "operator": "oncall"}
HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_LOG = "<script>window.__pwned=2</script> request failed"
MINUTE = timedelta(minutes=1)


@dataclass
class Server:
    url: str
    store: Store

    @property
    def approved(self) -> list[int]:
        return approvals_in_inbox(self.store)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_until(lambda: uv.started, 10, "the API server")
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


def seed(store: Store) -> None:
    """Incident 1 (open) with hostile evidence and two changes awaiting approval; incident 2 (P1,
    resolved) whose change was approved with a note, ran, failed verification and was rolled back;
    incident 3 (acknowledged) with a failed change that has a rollback playbook."""
    evidence = {
        "template": "request <*> failed",
        "samples": [HOSTILE_LOG],
        "count": 12,
        "annotations": {"summary": "errors"},
    }
    save_incidents(
        store,
        incident_state(
            1,
            title="demo-web latency high",
            signals=[
                signal_state("fp-a", labels={"instance": HOSTILE, "job": "demo"}),
                signal_state("fp-log", name="log_error_burst", source="logs", evidence=evidence),
            ],
        ),
        incident_state(
            2,
            service="demo-db",
            priority=Priority.P1,
            status=IncidentStatus.RESOLVED,
            title="demo-db errors at 50% of requests",
            signals=[signal_state("fp-db", name="demo_db_errors", service="demo-db")],
        ),
        incident_state(3, status=IncidentStatus.ACKNOWLEDGED, title="demo-web cache misses"),
    )
    add_change(store, 1)
    add_change(store, 1, rule="another-rule")  # one open change per incident and rule
    failover = add_change(
        store,
        2,
        service="demo-db",
        rule="failover-demo-db",
        runbook="failover_db",
        playbook="failover_db.yml",
        params={"replica": "db-2", "drain": True},
        rollback_playbook="failback_db.yml",
        verify_promql="demo_db_errors < 0.05",
    )
    store.changes.decide(failover, True, "api:oncall", T0 + MINUTE, "checked the replica lag")
    store.changes.transition(
        failover,
        [ChangeStatus.APPROVED],
        ChangeStatus.ROLLED_BACK,
        started_at=T0 + 2 * MINUTE,
        finished_at=T0 + 4 * MINUTE,
        verified_at=T0 + 3 * MINUTE,
        verification="failed: demo_db_errors still 0.2 at the deadline",
        outcome="verification failed; rolled back",
    )
    run(store, failover, "remediation", [("Promote replica", True), ("Check lag", False), ("Notify", None)])
    run(store, failover, "rollback", [("Demote replica", True)])
    add_change(
        store, 3, ChangeStatus.FAILED, rule="clear-cache", runbook="clear_cache", rollback_playbook="warm.yml"
    )


def run(store: Store, change_id: int, kind: str, tasks: list[tuple[str, bool | None]]) -> None:
    """A finished run with one host result per task: changed (True), ok (False) or skipped (None)."""
    at = T0 + 2 * MINUTE
    run_id = store.runs.start(change_id, kind, f"{kind}.yml", at)
    for seq, (task, changed) in enumerate(tasks, 1):
        kind_ = "runner_on_skipped" if changed is None else "runner_on_ok"
        event = RunbookEvent(
            run_id=run_id, seq=seq, kind=kind_, task=task, host="db-2", changed=bool(changed), at=at
        )
        store.runs.add_event(event)
    store.runs.finish(run_id, "successful", 0, at + timedelta(seconds=20), "PLAY RECAP db-2 ok=2", [])


def start(tmp_path: Path) -> Iterator[Server]:
    store = Store.open(f"sqlite:///{tmp_path / 'ui.db'}")
    seed(store)
    api = ApiConfig.model_validate(
        {"tokens": [{"name": NAMES[role], "role": role, "token": secret} for role, secret in TOKENS.items()]}
    )
    app = create_app(store, CollectorRegistry(), api, ManualClock(T0), lambda: {"ready": True}, settle=0)
    with serving(app) as url:
        yield Server(url, store)
    store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from start(tmp_path)


@pytest.fixture
def page() -> Iterator[Any]:
    require(Path(CHROMIUM).exists() and shutil.which("chromium") is not None, "chromium (Debian package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        browser.close()
        assert errors == [], "the page raised"


def shown(page: Any) -> str:
    """Everything the page holds as text, folded parts (closed <details>) included."""
    return str(page.text_content("main"))


# -------------------------------------------------------------------- evidence and changes


def test_incident_evidence_is_shown_as_text_and_runs_nothing(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/")
    page.get_by_role("link", name="#1").first.click()
    page.wait_for_selector("text=Incident #1: demo-web latency high")
    assert page.get_by_text(f"instance={HOSTILE}, job=demo").is_visible()
    assert page.get_by_text(HOSTILE_LOG).is_visible()
    assert page.get_by_text("template: request <*> failed (12 lines)").is_visible()
    assert page.get_by_text('annotations: {"summary":"errors"}').is_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0


@pytest.mark.parametrize(
    "path", ["#/incidents/1", "#/incidents/2", "#/incidents/3", "#/changes/3", "#/changes"]
)
def test_no_page_shows_an_object_where_its_text_belongs(server: Server, page: Any, path: str) -> None:
    page.goto(f"{server.url}/ui/{path}")
    page.wait_for_selector("main h2, main h3")
    page.wait_for_load_state("networkidle")
    assert "[object" not in shown(page)


# -------------------------------------------------------------------- approvals


def change_row(page: Any, n: int) -> Any:
    return page.locator("tbody tr").filter(has=page.locator(f'td:first-child a[href="#/changes/{n}"]'))


def test_approving_needs_a_token_then_records_the_decision(server: Server, page: Any) -> None:
    seeded = server.approved
    page.goto(f"{server.url}/ui/#/changes")
    change_row(page, 1).get_by_role("button", name="Approve").click()
    page.wait_for_selector("#status.error")
    assert "HTTP 401" in page.text_content("#status")
    assert server.store.changes.get(1).status == ChangeStatus.AWAITING_APPROVAL

    page.fill("#token", TOKENS["operator"])
    page.click("#token-form button")
    page.wait_for_selector("text=token set")
    page.reload()  # setting the token re-renders the list; a note typed before that render lands would be lost
    change_row(page, 1).get_by_label("note").fill("checked the dashboard")
    change_row(page, 1).get_by_role("button", name="Approve").click()
    page.wait_for_selector("text=change #1 approved")
    change = server.store.changes.get(1)
    assert change.status == ChangeStatus.APPROVED and change.decided_by == "api:oncall"
    assert server.approved == [*seeded, 1]
    (entry,) = [e for e in server.store.incidents.timeline(1) if e.kind == "change_approved"]
    assert entry.reason == "change #1 approved by api:oncall: checked the dashboard"

    change_row(page, 2).get_by_role("button", name="Reject").click()
    page.wait_for_selector("text=change #2 rejected")
    assert server.store.changes.get(2).status == ChangeStatus.REJECTED
    assert server.approved == [*seeded, 1], "a rejection must not start anything"
    page.wait_for_selector("tbody >> text=rejected")
    assert page.get_by_role("button", name="Approve").count() == 0, "decided changes offer no buttons"
