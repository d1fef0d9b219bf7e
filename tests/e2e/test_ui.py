"""The review UI in a real browser (Debian's Chromium driven by Playwright) against the real API server.

An on-call engineer opens an incident, reads its evidence (hostile label values and log lines must show
as text and run nothing), and approves or rejects changes with a token.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock
from agent.config.models import ApiConfig
from agent.core.domain import ChangeStatus
from agent.shell.api import create_app
from agent.shell.store import Store
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
OPERATOR = "operator-token-0123456789abcdef"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_LOG = "<script>window.__pwned=2</script> request failed"


@dataclass
class Server:
    url: str
    store: Store

    @property
    def approved(self) -> list[int]:
        return approvals_in_inbox(self.store)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    store = Store.open(f"sqlite:///{tmp_path / 'ui.db'}")
    evidence = {"template": "request <*> failed", "samples": [HOSTILE_LOG], "count": 12}
    save_incidents(
        store,
        incident_state(
            1,
            title="demo-web latency high",
            signals=[
                signal_state("fp-a", labels={"instance": HOSTILE, "job": "demo"}),
                signal_state("fp-log", name="log_error_burst", evidence=evidence),
            ],
        ),
    )
    add_change(store, 1)
    add_change(store, 1, rule="another-rule")  # one open change per incident and rule
    api = ApiConfig.model_validate({"tokens": [{"name": "oncall", "role": "operator", "token": OPERATOR}]})
    app = create_app(store, CollectorRegistry(), api, ManualClock(T0), lambda: {"ready": True})
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_until(lambda: uv.started, 10, "the API server")
    yield Server(f"http://127.0.0.1:{port}", store)
    uv.should_exit = True
    thread.join(10)
    store.close()


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
        yield page
        browser.close()


def test_incident_evidence_is_shown_as_text_and_runs_nothing(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/")
    page.get_by_role("link", name="#1").first.click()
    page.wait_for_selector("text=Incident #1: demo-web latency high")
    assert page.get_by_text(f"instance={HOSTILE}, job=demo").is_visible()
    assert page.get_by_text(HOSTILE_LOG).is_visible()
    assert page.get_by_text("template: request <*> failed (12 lines)").is_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0


def change_row(page: Any, n: int) -> Any:
    return page.locator("tbody tr").filter(has=page.locator(f'td:first-child a[href="#/changes/{n}"]'))


def test_approving_needs_a_token_then_records_the_decision(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/#/changes")
    change_row(page, 1).get_by_role("button", name="Approve").click()
    page.wait_for_selector("#status.error")
    assert "HTTP 401" in page.text_content("#status")
    assert server.store.changes.get(1).status == ChangeStatus.AWAITING_APPROVAL

    page.fill("#token", OPERATOR)
    page.click("#token-form button")
    page.wait_for_selector("text=token set")
    page.reload()  # setting the token re-renders the list; a note typed before that render lands would be lost
    change_row(page, 1).get_by_label("note").fill("checked the dashboard")
    change_row(page, 1).get_by_role("button", name="Approve").click()
    page.wait_for_selector("text=change #1 approved")
    change = server.store.changes.get(1)
    assert change.status == ChangeStatus.APPROVED and change.decided_by == "api:oncall"
    assert server.approved == [1]
    (entry,) = [e for e in server.store.incidents.timeline(1) if e.kind == "change_approved"]
    assert entry.reason == "change #1 approved by api:oncall: checked the dashboard"

    change_row(page, 2).get_by_role("button", name="Reject").click()
    page.wait_for_selector("text=change #2 rejected")
    assert server.store.changes.get(2).status == ChangeStatus.REJECTED
    assert server.approved == [1], "a rejection must not start anything"
    page.wait_for_selector("tbody >> text=rejected")
    assert page.get_by_role("button", name="Approve").count() == 0, "decided changes offer no buttons"
