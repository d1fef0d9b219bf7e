"""The HTTP API through FastAPI's TestClient, on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter

from agent.clock import ManualClock
from agent.config.models import ApiConfig
from agent.core.domain import ChangeStatus, IncidentStatus, Priority
from agent.shell.api import UI_DIR, create_app
from agent.shell.store import Store
from tests.support.records import (
    T0,
    add_change,
    approvals_in_inbox,
    incident_state,
    save_incidents,
    signal_state,
)

TOKENS = {
    "viewer": "viewer-token-0123456789abcdef",
    "operator": "operator-token-0123456789abcdef",
    "admin": "admin-token-0123456789abcdef",
}
NAMES = {"viewer": "dashboard", "operator": "oncall", "admin": "root-ops"}
ALL_SECRETS = list(TOKENS.values())


@dataclass
class Api:
    """A built app with the things a test pokes at: its store, readiness state, and how often it woke
    the (absent) leader."""

    client: TestClient
    store: Store
    ready: dict[str, Any]
    woken: list[int] = field(default_factory=list)
    seen: list[httpx.Response] = field(default_factory=list)

    @property
    def approved(self) -> list[int]:
        return approvals_in_inbox(self.store)

    def call(
        self, method: str, path: str, role: str | None = None, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        secret = token if token is not None else (TOKENS[role] if role else None)
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        response = self.client.request(method, path, headers=headers, **kw)
        self.seen.append(response)
        return response


def api_config(read_requires_token: bool = False, **settings: Any) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "tokens": [
                {"name": NAMES[role], "role": role, "token": secret} for role, secret in TOKENS.items()
            ],
            "read_requires_token": read_requires_token,
            **settings,
        }
    )


def build_api(
    tmp_path: Path, read_requires_token: bool = False, settle: float = 5.0, **settings: Any
) -> Iterator[Api]:
    """`settings` are further `api` config keys."""
    store = Store.open(f"sqlite:///{tmp_path / 'api.db'}")
    registry = CollectorRegistry()
    Counter("aiops_test_ticks", "Ticks seen by the test.", registry=registry).inc(3)
    ready: dict[str, Any] = {"ready": True, "status": "ok"}
    woken: list[int] = []
    app = create_app(
        store,
        registry,
        api_config(read_requires_token, **settings),
        ManualClock(T0),
        lambda: dict(ready),
        wake=lambda: woken.append(1),
        settle=settle,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store, ready, woken)
    store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(tmp_path)


@pytest.fixture
def private_api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(tmp_path, read_requires_token=True)


def seed(store: Store) -> dict[str, int]:
    """Three incidents (one resolved) and changes in several states."""
    save_incidents(
        store,
        incident_state(1, signals=[signal_state("fp-a"), signal_state("fp-b", name="demo_error_ratio")]),
        incident_state(2, at=T0.replace(minute=5), status=IncidentStatus.RESOLVED),
        incident_state(3, at=T0.replace(minute=10)),
    )
    return {
        "awaiting": add_change(store, 1),
        "second": add_change(store, 3),
        "dry_run": add_change(store, 2, ChangeStatus.DRY_RUN),
    }


# ---------------------------------------------------------------- health and metrics


def test_healthz(api: Api) -> None:
    r = api.call("GET", "/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_readyz_follows_the_readiness_callable(api: Api) -> None:
    r = api.call("GET", "/readyz")
    assert (r.status_code, r.json()["status"]) == (200, "ok")
    api.ready.update(ready=False, status="not ready", store=False)
    r = api.call("GET", "/readyz")
    assert r.status_code == 503
    assert r.json() == {"ready": False, "status": "not ready", "store": False}
    api.ready["ready"] = True
    assert api.call("GET", "/readyz").status_code == 200


def test_metrics_serve_the_given_registry(api: Api) -> None:
    r = api.call("GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "aiops_test_ticks_total 3.0" in r.text.splitlines()
    # A fresh registry: nothing from the process-wide default one.
    assert "python_gc_objects_collected_total" not in r.text


# ---------------------------------------------------------------- reads


def test_list_incidents_newest_first_with_status_filter_and_limit(api: Api) -> None:
    seed(api.store)
    r = api.call("GET", "/api/v1/incidents")
    assert r.status_code == 200
    assert [i["id"] for i in r.json()] == [3, 2, 1]
    first = r.json()[2]
    assert (first["status"], first["priority"], first["service"]) == ("open", "P2", "demo-web")
    assert first["opened_at"] == T0.isoformat()
    assert first["sla"]["acknowledge_breached"] is False

    assert [i["id"] for i in api.call("GET", "/api/v1/incidents", params={"status": "resolved"}).json()] == [
        2
    ]
    assert api.call("GET", "/api/v1/incidents", params={"status": "closed"}).json() == []
    assert [i["id"] for i in api.call("GET", "/api/v1/incidents", params={"limit": 1}).json()] == [3]
    assert len(api.call("GET", "/api/v1/incidents", params={"limit": 1000}).json()) == 3


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many"])
def test_bad_limits_are_422(api: Api, limit: str) -> None:
    assert api.call("GET", "/api/v1/incidents", params={"limit": limit}).status_code == 422
    assert api.call("GET", "/api/v1/changes", params={"limit": limit}).status_code == 422


def test_incident_detail_and_unknown_incident(api: Api) -> None:
    ids = seed(api.store)
    r = api.call("GET", "/api/v1/incidents/1")
    assert r.status_code == 200
    doc = r.json()
    assert doc["id"] == 1
    assert sorted(s["name"] for s in doc["signals"]) == ["demo_error_ratio", "demo_latency_p99"]
    assert [e["kind"] for e in doc["timeline"]] == ["opened"]
    assert [c["id"] for c in doc["changes"]] == [ids["awaiting"]]

    missing = api.call("GET", "/api/v1/incidents/999")
    assert missing.status_code == 404
    assert "999" in missing.json()["detail"]
    assert api.call("GET", "/api/v1/incidents/abc").status_code == 422


def seed_for_filters(store: Store) -> None:
    """Incidents of two services and priorities, with titles a search tells apart, and their changes."""
    save_incidents(
        store,
        incident_state(1, title="demo-web latency 500 ms above expected"),
        incident_state(2, service="demo-db", priority=Priority.P1, title="demo-db errors at 50% of requests"),
        incident_state(3, status=IncidentStatus.RESOLVED, title="demo-web cache misses"),
    )
    add_change(store, 1, reason="latency above expected")
    add_change(store, 2, service="demo-db", runbook="failover_db", reason="errors at 50%")
    add_change(store, 3, ChangeStatus.SUCCEEDED, rule="clear-cache", reason="cache misses")


@pytest.mark.parametrize(
    ("path", "query", "ids"),
    [
        ("/api/v1/incidents", {"priority": "P1"}, [2]),
        ("/api/v1/incidents", {"service": "demo-web"}, [3, 1]),
        ("/api/v1/incidents", {"service": "demo"}, []),  # a service is named whole
        ("/api/v1/incidents", {"q": "CACHE"}, [3]),  # in any case
        ("/api/v1/incidents", {"q": "50%"}, [2]),  # `%` is a character, not a wildcard: not "500 ms"
        ("/api/v1/incidents", {"q": "demo-db"}, [2]),  # the service
        ("/api/v1/incidents", {"q": "demo-web:demo_latency"}, [3, 2, 1]),  # the signature
        ("/api/v1/incidents", {"status": "open", "service": "demo-web", "q": "latency"}, [1]),
        ("/api/v1/changes", {"priority": "P1"}, [2]),  # the incident's priority
        ("/api/v1/changes", {"service": "demo-db"}, [2]),
        ("/api/v1/changes", {"q": "failover"}, [2]),  # the runbook
        ("/api/v1/changes", {"q": "clear-"}, [3]),  # the rule
        ("/api/v1/changes", {"q": "above"}, [1]),  # the reason
        ("/api/v1/changes", {"status": "succeeded", "priority": "P2"}, [3]),
        ("/api/v1/changes", {"q": "", "service": ""}, [3, 2, 1]),  # empty filters are no filters
    ],
)
def test_lists_filter_by_status_priority_service_and_text(
    api: Api, path: str, query: dict[str, str], ids: list[int]
) -> None:
    seed_for_filters(api.store)
    r = api.call("GET", path, params=query)
    assert r.status_code == 200, r.text
    assert [item["id"] for item in r.json()] == ids


@pytest.mark.parametrize(
    "query",
    [{"priority": "P9"}, {"priority": "p1"}, {"service": "a\x00b"}, {"q": "x" * 201}, {"q": "line\nbreak"}],
)
@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/changes"])
def test_bad_filters_are_422(api: Api, path: str, query: dict[str, str]) -> None:
    seed_for_filters(api.store)
    r = api.call("GET", path, params=query)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["query", next(iter(query))]


def test_list_changes(api: Api) -> None:
    ids = seed(api.store)
    r = api.call("GET", "/api/v1/changes")
    assert r.status_code == 200
    assert [c["id"] for c in r.json()] == [ids["dry_run"], ids["second"], ids["awaiting"]]
    waiting = api.call("GET", "/api/v1/changes", params={"status": "awaiting_approval"}).json()
    assert [c["id"] for c in waiting] == [ids["second"], ids["awaiting"]]
    assert waiting[0]["verification"]["promql"] == "demo_latency_p99 < 0.25"
    assert api.call("GET", f"/api/v1/changes/{ids['dry_run']}").json()["status"] == "dry_run"
    assert api.call("GET", "/api/v1/changes/999").status_code == 404


# ---------------------------------------------------------------- approvals


@pytest.mark.parametrize("verb", ["approve", "reject"])
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-known-token-at-all"}, 401),
        ({"Authorization": f"Basic {TOKENS['operator']}"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": f"Bearer {TOKENS['viewer']}"}, 403),
    ],
)
def test_decisions_need_an_operator_token(
    api: Api, verb: str, headers: dict[str, str], expected: int
) -> None:
    ids = seed(api.store)
    r = api.call("POST", f"/api/v1/changes/{ids['awaiting']}/{verb}", headers=headers)
    assert r.status_code == expected
    if expected == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert api.store.changes.get(ids["awaiting"]).status == "awaiting_approval"
    assert api.store.audit.list() == []
    assert api.approved == []


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_approve_with_a_writer_token(api: Api, role: str) -> None:
    ids = seed(api.store)
    r = api.call("POST", f"/api/v1/changes/{ids['awaiting']}/approve", role=role, json={"note": "looks safe"})
    assert r.status_code == 200
    body = r.json()
    actor = f"api:{NAMES[role]}"
    assert (body["id"], body["status"], body["decided_by"]) == (ids["awaiting"], "approved", actor)
    assert body["decided_at"] == T0.isoformat()
    assert api.approved == [ids["awaiting"]]

    [entry] = [e for e in api.store.incidents.timeline(1) if e.kind == "change_approved"]
    assert (entry.actor, entry.data) == (actor, {"change_id": ids["awaiting"], "note": "looks safe"})
    assert "looks safe" in entry.reason
    assert body["reason"] == "latency above expected"  # the agent's reason stays; the note is beside it
    [audit] = api.store.audit.list()
    assert (audit.actor, audit.action, audit.target, audit.details) == (
        actor,
        "change.approve",
        f"change:{ids['awaiting']}",
        {"note": "looks safe"},
    )


def test_reject_records_the_note_and_does_not_trigger_execution(api: Api) -> None:
    ids = seed(api.store)
    r = api.call("POST", f"/api/v1/changes/{ids['second']}/reject", role="operator", json={"note": "not now"})
    assert (r.status_code, r.json()["status"]) == (200, "rejected")
    assert api.approved == []
    [entry] = [e for e in api.store.incidents.timeline(3) if e.kind == "change_rejected"]
    assert entry.actor == "api:oncall" and "not now" in entry.reason
    [audit] = api.store.audit.list()
    assert (audit.action, audit.details) == ("change.reject", {"note": "not now"})


def test_a_decision_without_a_body_is_fine(api: Api) -> None:
    ids = seed(api.store)
    r = api.call("POST", f"/api/v1/changes/{ids['awaiting']}/approve", role="admin")
    assert (r.status_code, r.json()["status"]) == (200, "approved")
    assert api.store.audit.list()[0].details == {"note": ""}


def test_deciding_twice_or_on_the_wrong_status_is_409(api: Api) -> None:
    ids = seed(api.store)
    path = f"/api/v1/changes/{ids['awaiting']}"
    assert api.call("POST", f"{path}/approve", role="operator").status_code == 200
    for verb in ("approve", "reject"):
        r = api.call("POST", f"{path}/{verb}", role="operator")
        assert r.status_code == 409
        assert "approved" in r.json()["detail"]
    assert api.call("POST", f"/api/v1/changes/{ids['dry_run']}/approve", role="admin").status_code == 409
    assert api.approved == [ids["awaiting"]]
    assert api.store.changes.get(ids["awaiting"]).status == "approved"
    assert len(api.store.audit.list()) == 1


def test_deciding_an_unknown_change_is_404(api: Api) -> None:
    seed(api.store)
    for verb in ("approve", "reject"):
        assert api.call("POST", f"/api/v1/changes/999/{verb}", role="operator").status_code == 404
    assert api.approved == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"note": ', "application/json"),
        (b'{"note": 42}', "application/json"),
        (b'["note"]', "application/json"),
        (b'{"note": "' + b"x" * 2001 + b'"}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"note=hi", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_are_client_errors(api: Api, content: bytes, content_type: str) -> None:
    ids = seed(api.store)
    r = api.call(
        "POST",
        f"/api/v1/changes/{ids['awaiting']}/approve",
        role="operator",
        content=content,
        headers={"Content-Type": content_type},
    )
    assert 400 <= r.status_code < 500
    assert api.store.changes.get(ids["awaiting"]).status == "awaiting_approval"
    assert api.approved == []


# ---------------------------------------------------------------- read protection and secrets


def test_reads_can_require_a_viewer_token(private_api: Api) -> None:
    seed(private_api.store)
    paths = ["/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/changes", "/api/v1/problems"]
    for path in paths:
        assert private_api.call("GET", path).status_code == 401
        assert private_api.call("GET", path, token="wrong-token-0123456789").status_code == 401
        for role in TOKENS:
            assert private_api.call("GET", path, role=role).status_code == 200
    assert private_api.call("GET", "/healthz").status_code == 200


def test_whoami_names_the_tokens_role_and_never_the_token(private_api: Api) -> None:
    assert private_api.call("GET", "/api/v1/whoami").json() == {"name": None, "role": None}
    for role, name in NAMES.items():
        r = private_api.call("GET", "/api/v1/whoami", role=role)
        assert r.json() == {"name": name, "role": role}
        assert TOKENS[role] not in r.text
    wrong = private_api.call("GET", "/api/v1/whoami", token="wrong-token-0123456789")
    assert wrong.status_code == 401 and "wrong-token" not in wrong.text
    assert private_api.call("GET", "/api/v1/whoami", headers={"Authorization": "Basic x"}).status_code == 401


def test_charts_are_reads(private_api: Api) -> None:
    seed(private_api.store)
    assert private_api.call("GET", "/api/v1/incidents/1/series").status_code == 401
    r = private_api.call("GET", "/api/v1/incidents/1/series", role="viewer")
    assert r.status_code == 200
    # no Prometheus given to this app: what the store recorded, and why only that
    assert r.json()["prometheus"] == {"queried": False, "error": "no Prometheus is configured"}
    assert [(s["source"], len(s["recorded"])) for s in r.json()["signals"]] == [("store", 1), ("store", 1)]


def test_reads_are_open_by_default(api: Api) -> None:
    seed(api.store)
    assert api.call("GET", "/api/v1/incidents").status_code == 200
    assert api.call("GET", "/api/v1/problems").json() == []


def test_tokens_never_appear_in_responses(api: Api) -> None:
    ids = seed(api.store)
    for role in TOKENS:
        api.call("POST", f"/api/v1/changes/{ids['second']}/approve", role=role)
        api.call("GET", "/api/v1/incidents/3", role=role)
    api.call("POST", f"/api/v1/changes/{ids['awaiting']}/reject", token=TOKENS["operator"] + "x")
    api.call("POST", f"/api/v1/changes/{ids['awaiting']}/reject", role="viewer", content=b"{bad")
    api.call("GET", "/openapi.json")
    api.call("GET", "/metrics")
    api.call("GET", "/readyz")

    assert {r.status_code for r in api.seen} >= {200, 401, 403, 409}
    for r in api.seen:
        exposed = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        for secret in ALL_SECRETS:
            assert secret not in exposed, f"{r.request.method} {r.request.url} leaked a token"
    for secret in ALL_SECRETS:
        assert all(secret not in str(a.details) + a.actor for a in api.store.audit.list())
        assert all(secret not in e.reason + e.actor for e in api.store.incidents.timeline(3))


# ---------------------------------------------------------------- review UI


def test_ui_is_served_with_a_strict_content_security_policy(api: Api) -> None:
    r = api.call("GET", "/ui", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith("/ui/")
    page = api.call("GET", "/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # every script is a file of ours: nothing inline for an injected value to hide in
    assert '<script type="module" src="app.js"></script>' in page.text
    assert page.text.count("<script") == 1
    modules = sorted(p.name for p in UI_DIR.glob("*.js"))
    assert "app.js" in modules and "chart.js" in modules
    for name in modules:
        script = api.call("GET", f"/ui/{name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "style="):
            assert unsafe not in script.text, f"{name} uses {unsafe}"
    assert api.call("GET", "/ui/../agent/api.py").status_code == 404
