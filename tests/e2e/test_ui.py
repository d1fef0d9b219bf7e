"""The review UI in a real browser (Debian's Chromium driven by Playwright) against the real API server.

An on-call engineer opens an incident, reads its evidence (hostile label values and log lines must show
as text and run nothing), its charts (from a real Prometheus) and every change in full, filters the
lists, and acts with a token whose role decides which buttons work.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from agent.clock import ManualClock, SystemClock
from agent.config.models import ApiConfig
from agent.core.decisions import Audit, Closure, Decisions
from agent.core.domain import ChangeStatus, IncidentStatus, Priority
from agent.core.envelope import Matcher, Switch
from agent.core.incidents import Entry
from agent.core.records import ReviewBase
from agent.shell.api import create_app
from agent.shell.series import SeriesReader
from agent.shell.store import Store
from agent.shell.store.tables import RunbookEvent
from demo.processes import free_port, prometheus_binary, wait_until
from integrations.prometheus import PrometheusClient
from tests.conftest import require
from tests.support.backfill import promtool_binary
from tests.support.charted import QUERY, STEP, start_charted, store_incident
from tests.support.records import (
    T0,
    add_change,
    approvals_in_inbox,
    commit_link,
    cooccurrence_link,
    incident_state,
    link_problem,
    save_incidents,
    signal_state,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
TOKENS = {
    "viewer": "viewer-token-0123456789abcdef",
    "operator": "operator-token-0123456789abcdef",
    "admin": "admin-token-0123456789abcdef",
}
NAMES = {"viewer": "dashboard", "operator": "oncall", "admin": "root-ops"}
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


def start(tmp_path: Path, customize: Callable[[FastAPI, Server], None] | None = None) -> Iterator[Server]:
    store = Store.open(f"sqlite:///{tmp_path / 'ui.db'}")
    seed(store)
    api = ApiConfig.model_validate(
        {"tokens": [{"name": NAMES[role], "role": role, "token": secret} for role, secret in TOKENS.items()]}
    )
    app = create_app(store, CollectorRegistry(), api, ManualClock(T0), lambda: {"ready": True}, settle=0)
    server = Server("", store)
    if customize is not None:
        customize(app, server)
    with serving(app) as url:
        server.url = url
        yield server
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


def use_token(page: Any, role: str | None, secret: str | None = None) -> None:
    page.fill("#token", secret if secret is not None else TOKENS[role] if role else "")
    page.click("#token-form button")


def shown(page: Any) -> str:
    """Everything the page holds as text, folded parts (closed <details>) included."""
    return str(page.text_content("main"))


# -------------------------------------------------------------------- evidence and changes


def test_incident_evidence_is_shown_as_text_and_runs_nothing(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/")
    page.get_by_role("link", name="#1").first.click()
    page.wait_for_selector("text=Incident #1: demo-web latency high")
    assert page.get_by_role("cell", name=f"instance={HOSTILE}, job=demo", exact=True).is_visible()
    page.wait_for_selector(".charts[aria-busy=false]")
    assert f"demo_latency_p99 {{instance={HOSTILE}, job=demo}}" in page.inner_text("figure.chart figcaption")
    assert page.get_by_text(HOSTILE_LOG).is_visible()
    assert page.get_by_text("template: request <*> failed (12 lines)").is_visible()
    assert page.get_by_text('annotations: {"summary":"errors"}').is_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0


@pytest.mark.parametrize(
    "path", ["#/incidents/1", "#/incidents/2", "#/incidents/3", "#/changes/3", "#/changes", "#/problems"]
)
def test_no_page_shows_an_object_where_its_text_belongs(server: Server, page: Any, path: str) -> None:
    page.goto(f"{server.url}/ui/{path}")
    page.wait_for_selector("main h2, main h3")
    page.wait_for_load_state("networkidle")
    assert "[object" not in shown(page)


def test_a_change_shows_what_ran_who_approved_it_whether_it_worked_and_its_rollback(
    server: Server, page: Any
) -> None:
    for path in ("#/incidents/2", "#/changes/3"):
        page.goto(f"{server.url}/ui/{path}")
        change = page.locator("section#change-3")
        change.wait_for()
        assert "[object" not in shown(page)

        assert change.locator("h3").inner_text() == "Change #3: failover_db rolled_back"
        assert change.locator("dd.runbook").inner_text() == "failover_db (failover_db.yml)"
        params = change.locator("dd.params").inner_text()
        assert '"replica": "db-2"' in params and '"drain": true' in params
        assert (
            change.locator("dd.approval").inner_text()
            == 'approved by api:oncall at 2026-03-01 12:01:00Z: "checked the replica lag"'
        )
        assert change.locator("dd.verification").inner_text() == (
            "demo_db_errors < 0.05 within 300s: "
            "failed: demo_db_errors still 0.2 at the deadline at 2026-03-01 12:03:00Z"
        )
        assert change.locator("dd.rollback").inner_text() == "failback_db.yml: run #2 successful"
        remediation, rollback = change.locator("details.run").all()
        assert remediation.locator("summary").inner_text().startswith("remediation run #1: successful, rc 0")
        assert rows(remediation.locator("table.tasks")) == [
            ["Promote replica", "db-2", "changed", "2026-03-01 12:02:00Z"],
            ["Check lag", "db-2", "ok", "2026-03-01 12:02:00Z"],
            ["Notify", "db-2", "skipped", "2026-03-01 12:02:00Z"],
        ]
        assert rows(rollback.locator("table.tasks")) == [
            ["Demote replica", "db-2", "changed", "2026-03-01 12:02:00Z"]
        ]
        assert "PLAY RECAP db-2 ok=2" in remediation.locator("pre").text_content()


def rows(table: Any) -> list[list[str]]:
    return [
        [str(c).strip() for c in row]
        for row in table.locator("tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
    ]


# -------------------------------------------------------------------- filters


def assert_listed(page: Any, ids: list[str]) -> None:
    """The list shows these ids, in this order, once the page has caught up."""
    from playwright.sync_api import expect

    expect(page.locator("table.list tbody tr td:first-child a")).to_have_text(ids)


def test_the_lists_filter_by_status_priority_and_service_and_search_text(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/#/incidents")
    page.wait_for_selector("table.list")
    assert_listed(page, ["#3", "#2", "#1"])

    page.select_option("form.filters select[name=priority]", "P1")
    page.wait_for_url(re.compile(r"#/incidents\?priority=P1$"))
    assert_listed(page, ["#2"])
    page.reload()  # the filter lives in the address
    assert_listed(page, ["#2"])
    assert page.input_value("form.filters select[name=priority]") == "P1"

    page.click("form.filters >> text=clear")
    page.wait_for_url(re.compile(r"#/incidents$"))
    assert_listed(page, ["#3", "#2", "#1"])  # the cleared list is drawn: typing now goes into its form
    page.fill("form.filters input[name=q]", "CACHE")
    page.press("form.filters input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=CACHE"))
    assert_listed(page, ["#3"])

    page.goto(f"{server.url}/ui/#/incidents?service=demo-web&status=open")
    assert_listed(page, ["#1"])
    page.goto(f"{server.url}/ui/#/incidents?q=no-such-thing")
    page.wait_for_selector("text=No incidents match.")

    page.goto(f"{server.url}/ui/#/changes")
    page.wait_for_selector("table.list")
    assert_listed(page, ["#4", "#3", "#2", "#1"])
    page.select_option("form.filters select[name=status]", "rolled_back")
    page.wait_for_url(re.compile(r"status=rolled_back"))
    assert_listed(page, ["#3"])
    page.goto(f"{server.url}/ui/#/changes?priority=P1")
    assert_listed(page, ["#3"])
    page.goto(f"{server.url}/ui/#/changes?q=another")
    assert_listed(page, ["#2"])


# -------------------------------------------------------------------- actions and roles


def change_row(page: Any, n: int) -> Any:
    return page.locator("tbody tr").filter(has=page.locator(f'td:first-child a[href="#/changes/{n}"]'))


def test_buttons_work_only_for_a_token_whose_role_allows_them(server: Server, page: Any) -> None:
    seeded = server.approved
    page.goto(f"{server.url}/ui/#/changes")
    approve = change_row(page, 1).get_by_role("button", name="Approve")
    assert (
        approve.is_disabled() and approve.get_attribute("title") == "needs the operator role (no token set)"
    )
    use_token(page, "viewer")
    page.wait_for_selector("text=dashboard (viewer)")
    assert change_row(page, 1).get_by_role("button", name="Approve").is_disabled()
    use_token(page, None, "not-a-token-0123456789")
    page.wait_for_selector("text=token not accepted")
    assert change_row(page, 1).get_by_role("button", name="Approve").is_disabled()
    assert server.store.changes.get(1).status == ChangeStatus.AWAITING_APPROVAL

    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
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

    page.goto(f"{server.url}/ui/#/incidents/1")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector("text=incident #1 acknowledged")
    assert [(r.kind, r.actor) for r in server.store.inbox.pending()][-1] == ("acknowledge", "api:oncall")


def test_retry_rollback_close_and_silence_reach_the_store(server: Server, page: Any) -> None:
    page.goto(f"{server.url}/ui/#/incidents/3")
    section = page.locator("section#change-4")
    assert section.get_by_role("button", name="Retry").is_disabled()  # no token yet
    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
    section.get_by_label("note").fill("cache warmed by hand")
    section.get_by_role("button", name="Retry").click()
    page.wait_for_selector("text=change #4 retry requested")
    section.get_by_label("note").fill("undo the warm-up")
    section.get_by_role("button", name="Roll back").click()
    page.wait_for_selector("text=change #4 rollback requested")

    page.goto(f"{server.url}/ui/#/incidents/2")
    page.locator("details.close-review summary").click()
    page.fill("textarea[name=summary]", "db-2 lagged")
    page.fill("textarea[name=impact]", "5% of checkouts failed for 4 minutes")
    page.fill("textarea[name=root_cause]", "replica lag after a vacuum")
    page.fill("textarea[name=actions]", "alert on replica lag\n\n  tune autovacuum  ")
    page.get_by_role("button", name="Close with review").click()
    page.wait_for_selector("text=closing incident #2 requested")
    page.select_option("select[name=duration]", "4h")
    page.fill("input[name=comment]", "failover drill")
    page.get_by_role("button", name="Silence demo-db").click()
    page.wait_for_selector("text=service demo-db silenced for 4h")

    # no leader runs in this test: the requests wait in its inbox, as the store took them
    pending = [(r.kind, r.actor, r.payload) for r in server.store.inbox.pending()]
    requested = [(k, a, p.get("kind"), p.get("note")) for k, a, p in pending if k == "change_requested"]
    assert requested == [
        ("change_requested", "api:oncall", "retry", "cache warmed by hand"),
        ("change_requested", "api:oncall", "rollback", "undo the warm-up"),
    ]
    [(_, actor, close)] = [(k, a, p) for k, a, p in pending if k == "close_incident"]
    assert actor == "api:oncall" and close["incident_id"] == 2
    assert {k: close["review"][k] for k in ("summary", "impact", "root_cause", "actions")} == {
        "summary": "db-2 lagged",
        "impact": "5% of checkouts failed for 4 minutes",
        "root_cause": "replica lag after a vacuum",
        "actions": ["alert on replica lag", "tune autovacuum"],
    }
    [silence] = server.store.silences.list(T0)
    assert (silence.matchers, silence.comment, silence.created_by) == (
        [{"name": "service", "op": "=", "value": "demo-db"}],
        "failover drill",
        "api:oncall",
    )
    assert silence.ends_at - silence.starts_at == timedelta(hours=4)


@pytest.fixture
def server_without_description(tmp_path: Path) -> Iterator[Server]:
    """An agent that does not publish its OpenAPI description (the UI cannot know its routes) and, like
    an older version, has no retry route."""
    gone = {"/api/v1/changes/{change_id}/retry"}

    def hide(app: FastAPI, _: Server) -> None:
        gone.add(str(app.openapi_url))
        app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") not in gone]

    yield from start(tmp_path, hide)


def test_a_button_whose_route_turns_out_missing_hides_itself(
    server_without_description: Server, page: Any
) -> None:
    server = server_without_description
    page.goto(f"{server.url}/ui/")
    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
    page.goto(f"{server.url}/ui/#/incidents/3")
    retry = page.locator("section#change-4").get_by_role("button", name="Retry")
    retry.click()
    page.wait_for_selector("text=Retry: this agent does not offer it (HTTP 404: Not Found)")
    assert retry.is_hidden()
    assert server.store.changes.get(4).status == ChangeStatus.FAILED


# -------------------------------------------------------------------- charts


@pytest.fixture
def charted_server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Incident #1 with a metric signal whose history a real Prometheus holds, and change #1 during it."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    require(promtool_binary() is not None, "promtool (Debian package prometheus)")
    charted = start_charted(tmp_path / "prometheus")
    store = Store.open(f"sqlite:///{tmp_path / 'charts.db'}")
    client = PrometheusClient(charted.url, timeout=5, retries=0)
    try:
        store_incident(store, charted)
        reader = SeriesReader(store, SystemClock(), {QUERY.name: QUERY}, client, timedelta(seconds=STEP))
        app = create_app(store, CollectorRegistry(), ApiConfig(), SystemClock(), dict, series=reader)
        with serving(app) as url:
            yield url, charted
    finally:
        client.session.close()
        store.close()
        charted.stop()


def test_each_metric_signal_is_charted_around_the_incident_with_its_limit_and_changes(
    charted_server: tuple[str, Any], page: Any
) -> None:
    url, charted = charted_server
    answer = requests.get(f"{url}/api/v1/incidents/1/series", timeout=10).json()
    page.goto(f"{url}/ui/#/incidents/1")
    page.wait_for_selector(".charts[aria-busy=false]")

    (chart,) = page.locator("svg.chart").all()  # the log signal is not a series
    (line,) = chart.locator("polyline.series").all()
    points = [tuple(map(float, p.split(","))) for p in str(line.get_attribute("points")).split()]
    assert len(points) == len(answer["signals"][0]["points"]) == 181
    fault = round((charted.fault_at - answer["start"]) / STEP)
    assert points[fault][1] < points[fault - 1][1] - 20, "the fault's step up shows (y grows downwards)"
    (start,) = chart.locator('line.marker.change-start[data-change="1"]').all()
    (end,) = chart.locator('line.marker.change-end[data-change="1"]').all()
    assert float(start.get_attribute("x1")) < float(end.get_attribute("x1"))
    assert start.locator("title").text_content().startswith("change #1 started")
    assert chart.locator("line.marker.opened").count() == chart.locator("line.marker.resolved").count() == 1
    assert chart.locator("rect.limit.above title").text_content() == "limit: above 0.5 (critical)"
    assert chart.locator("line.expected title").text_content() == "limit 0.5"
    assert chart.locator("circle.recorded").count() == 2
    assert page.get_by_text("from Prometheus: 181 points, one every 15s").is_visible()


# -------------------------------------------------------------------- safety envelope and audit


def test_silences_and_the_kill_switch_page_with_each_role(server: Server, page: Any) -> None:
    store = server.store
    store.silences.add(
        [Matcher.parse(f"service={HOSTILE}")], T0, T0 + timedelta(hours=2), "cli:bob", HOSTILE, T0
    )
    store.switches.add(Switch("pause", "demo-db", None, "failover drill", "cli:bob", T0))
    page.goto(f"{server.url}/ui/#/safety")
    page.wait_for_selector("text=paused demo-db")
    assert f"service={HOSTILE}" in shown(page) and page.evaluate("window.__pwned") is None
    expire = page.get_by_role("button", name="Expire")
    assert expire.is_disabled()  # no token
    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
    assert page.get_by_role("button", name="Pause").is_disabled()  # needs admin
    page.get_by_role("button", name="Expire").click()
    page.wait_for_selector("text=silence #1 expired")
    assert store.silences.get(1).expired_by == "api:oncall"

    use_token(page, "admin")
    page.wait_for_selector("text=root-ops (admin)")
    page.fill("input[name=reason]", "incident review")
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("text=paused everywhere")
    assert [(s.kind, s.service, s.actor) for s in store.switches.current()][-1] == (
        "pause",
        None,
        "api:root-ops",
    )


def test_the_audit_page_is_for_admins(server: Server, page: Any) -> None:
    server.store.silences.add(
        [Matcher.parse("service=demo-web")], T0, T0 + timedelta(hours=1), "cli:bob", "x", T0
    )
    page.goto(f"{server.url}/ui/")
    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
    page.goto(f"{server.url}/ui/#/audit")
    page.wait_for_selector("text=The audit trail needs an admin token.")
    use_token(page, "admin")
    page.wait_for_selector("table.audit >> text=silence.add")
    assert "cli:bob" in shown(page)


def test_a_closed_incident_shows_its_review_and_a_muted_signal_why(server: Server, page: Any) -> None:
    store = server.store
    review = ReviewBase(
        incident_id=2,
        summary=HOSTILE,
        impact="5% of checkouts failed",
        root_cause="replica lag",
        actions=["alert on lag", HOSTILE_LOG],
        author="cli:alice",
        created_at=T0,
    )
    entry = Entry(2, T0 + MINUTE, "closed", "cli:alice", "closed with a post-incident review")
    audit = Audit(T0 + MINUTE, "cli:alice", "incident.close", "incident:2", {})
    store.committer({}, None).commit(Decisions(at=T0, closes=[Closure(2, entry, audit, review)]), 0)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE signals SET muted = 'silence #3 (service=demo-db; cli:bob: drill)'"))
    page.goto(f"{server.url}/ui/#/incidents/2")
    page.wait_for_selector("section.review >> text=replica lag")
    text_shown = shown(page)
    assert "closed 2026-" in text_shown and "by cli:alice" in text_shown
    assert HOSTILE in text_shown and HOSTILE_LOG in text_shown and page.evaluate("window.__pwned") is None
    assert "silence #3 (service=demo-db; cli:bob: drill)" in text_shown
    assert "[object" not in text_shown


def test_an_incident_spanning_services_shows_its_root_cause_candidates(tmp_path: Path, page: Any) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'rc.db'}")
    try:
        web = signal_state("fp-web", at=T0 + MINUTE, service="demo-web", peak_score=0.95)
        db = signal_state("fp-db", at=T0, service="demo-db", name="pg_latency", peak_score=0.9)
        save_incidents(
            store,
            incident_state(1, at=T0 + MINUTE, signals=[web]),
            incident_state(2, service="demo-db", signals=[db], parent_id=1),
        )
        app = create_app(
            store,
            CollectorRegistry(),
            ApiConfig(),
            ManualClock(T0),
            dict,
            dependencies=[("demo-web", "demo-db")],
        )
        with serving(app) as url:
            page.goto(f"{url}/ui/#/incidents/1")
            page.wait_for_selector("h3:text('Root-cause candidates')")
            rows = page.locator("h3:text('Root-cause candidates') + table tbody tr")
            assert rows.count() == 2
            first = rows.nth(0).inner_text()
            assert "demo-db" in first and "first to turn anomalous" in first
            assert "[object" not in shown(page)
    finally:
        store.close()


def test_an_incident_of_a_known_error_shows_the_workaround(server: Server, page: Any) -> None:
    store = server.store
    pid = link_problem(store, "demo-web:demo_latency_p99", "latency recurring", [3])
    store.known_errors.promote(pid, "carol", "web pool exhaustion", "api:oncall", T0)
    made = store.known_errors.record(pid, "leaky pool", HOSTILE, "recycle_workers", "api:oncall", T0)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE incidents SET known_error_id = :k WHERE id = 1"), {"k": made.known_error_id}
        )
    page.goto(f"{server.url}/ui/#/incidents/1")
    page.wait_for_selector(f"section.known-error >> text=Known error #{made.known_error_id}")
    text_shown = shown(page)
    assert f"workaround: {HOSTILE}" in text_shown and "workaround runbook: recycle_workers" in text_shown
    assert page.evaluate("window.__pwned") is None
    page.goto(f"{server.url}/ui/#/problems/{pid}")
    page.wait_for_selector("text=owner: carol")
    assert f"known error #{made.known_error_id}; workaround runbook: recycle_workers" in shown(page)


# -------------------------------------------------------------------- the problem manager's page


def seed_problems(store: Store) -> tuple[int, int, int]:
    """Beside the seeded incidents: a recurrence over incidents 1, 3, 4 and 5 on three days (one failed
    change), a co-occurrence of db and demo-web (incidents 6 and 5), and a P1 open for a day with a
    hostile title; returns (recurrence, co-occurrence, P1)."""
    day = timedelta(days=1)
    save_incidents(
        store,
        incident_state(4, at=T0 - 2 * day, status=IncidentStatus.RESOLVED),
        incident_state(5, at=T0 - 5 * day, status=IncidentStatus.RESOLVED),
        incident_state(6, at=T0 - 5 * day, service="db", signature="db:Down", status=IncidentStatus.RESOLVED),
        incident_state(7, at=T0 - day, priority=Priority.P1, signature="demo-web:pool", title=HOSTILE),
    )
    recurrence = link_problem(store, "demo-web:demo_latency_p99", "latency recurring", [1, 3, 4, 5])
    pair = commit_link(store, cooccurrence_link((6, 5), 4, 2.5e-6))
    p1 = link_problem(store, "demo-web:pool", HOSTILE, [7])
    return recurrence, pair, p1


def cards(page: Any) -> list[int]:
    return [int(s.get_attribute("data-problem")) for s in page.locator("section.problem").all()]


def test_the_problems_page_ranks_by_cost_and_charts_incidents_per_day(server: Server, page: Any) -> None:
    recurrence, pair, p1 = seed_problems(server.store)
    page.goto(f"{server.url}/ui/#/problems")
    page.wait_for_selector("h2:text('Candidates by cost')")
    assert cards(page) == [p1, recurrence, pair]  # 192 (a P1 open a day), 8.7 (a failed change), 0.3
    top = page.locator(f"section[data-problem='{p1}']")
    assert "cost 192: 192 priority-weighted hours open" in str(top.text_content())
    assert top.locator(".trend-label").inner_text() == "rising"
    bars = page.locator(f"section[data-problem='{recurrence}'] svg.chart.days rect.bar")
    assert [b.get_attribute("data-day") for b in bars.all()] == ["2026-02-24", "2026-02-27", "2026-03-01"]
    assert [b.get_attribute("data-incidents") for b in bars.all()] == ["1", "1", "2"]
    assert HOSTILE in shown(page) and page.evaluate("window.__pwned") is None
    assert "[object" not in shown(page)


def test_a_cooccurrence_candidate_shows_its_services_on_one_time_axis(server: Server, page: Any) -> None:
    _, pair, _ = seed_problems(server.store)
    page.goto(f"{server.url}/ui/#/problems/{pair}")
    chart = page.locator("svg.chart.days")
    chart.wait_for()
    lanes = chart.locator("g.lane")
    assert [lane.get_attribute("data-service") for lane in lanes.all()] == ["db", "demo-web"]
    for service in ("db", "demo-web"):
        [bar] = chart.locator(f"g.lane[data-service='{service}'] rect.bar").all()
        assert bar.get_attribute("data-day") == "2026-02-24"
    assert "one row per service" in shown(page) and "lift 8" in shown(page)


def test_promote_then_record_a_workaround_through_the_page(server: Server, page: Any) -> None:
    _, _, p1 = seed_problems(server.store)
    page.goto(f"{server.url}/ui/#/problems")
    section = page.locator(f"section[data-problem='{p1}']")
    section.locator("details.promote summary").click()
    assert section.get_by_role("button", name="Promote").is_disabled()  # no token yet
    use_token(page, "viewer")
    page.wait_for_selector("text=dashboard (viewer)")
    section.locator("details.promote summary").click()  # the page was drawn again for the token
    assert section.get_by_role("button", name="Promote").is_disabled()
    use_token(page, "operator")
    page.wait_for_selector("text=oncall (operator)")
    section.locator("details.promote summary").click()
    section.locator("input[name=owner]").fill("carol")
    section.locator("input[name=title]").fill("web pool exhaustion")
    section.get_by_role("button", name="Promote").click()
    page.wait_for_selector(f"text=problem #{p1} promoted, owned by carol")
    page.wait_for_selector("h2:text('Problems by cost')")
    assert section.locator(".badge").inner_text() == "problem" and "owner: carol" in str(
        section.text_content()
    )
    row = server.store.problems.get(p1)
    assert (row.status, row.owner, row.title) == ("problem", "carol", "web pool exhaustion")

    section.locator("details.update summary").click()
    section.locator("textarea[name=root_cause]").fill("leaky pool")
    section.locator("textarea[name=workaround]").fill(HOSTILE)
    section.get_by_role("button", name="Record").click()
    page.wait_for_selector(f"text=problem #{p1} updated")
    known = server.store.problems.get(p1).known_error_id
    assert known is not None
    section.locator(f"text=known error #{known}").wait_for()
    assert section.locator(".badge").inner_text() == "known_error"
    assert f"workaround: {HOSTILE}" in str(section.text_content()) and page.evaluate("window.__pwned") is None
    assert server.store.known_errors.get(known).created_by == "api:oncall"
