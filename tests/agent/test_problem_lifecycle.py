"""The problem manager's workflow as people use it: `aiops problems promote|update`, `aiops known-errors`
and the same operations over HTTP, on a real SQLite store; every step audited with who made it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from agent.shell.store import Store
from tests.agent.test_cli import aiops, json_out
from tests.support.oncall import ALICE, call
from tests.support.records import incident_state, link_problem, save_incidents

SIGNATURE = "demo-web:demo_latency_p99"


def candidate(store: Store) -> int:
    """A recurrence candidate over two stored incidents."""
    save_incidents(store, incident_state(1), incident_state(2))
    return link_problem(store, SIGNATURE, "demo-web latency recurring (2x in 1d)", [1, 2])


def with_store(config: Path) -> Store:
    return Store.open(f"sqlite:///{config.parent / 'aiops.db'}")


def audit(store: Store) -> list[tuple[str, str, str]]:
    return [(a.actor, a.action, a.target) for a in reversed(store.audit.list())]


# ---------------------------------------------------------------- CLI


def test_a_candidate_is_promoted_then_becomes_a_known_error(config: Path) -> None:
    store = with_store(config)
    try:
        pid = candidate(store)
    finally:
        store.close()
    promoted = json_out(
        aiops(
            "problems", "promote", str(pid), "--owner", "carol", "--title", "web pool exhaustion",
            "--json", "-c", config, env=ALICE,
        )
    )  # fmt: skip
    assert (promoted["status"], promoted["owner"], promoted["title"]) == (
        "problem",
        "carol",
        "web pool exhaustion",
    )
    again = aiops("problems", "promote", str(pid), "--owner", "dave", "-c", config, env=ALICE)
    assert again.exit_code == 1 and "only a candidate can be promoted" in again.stderr

    noted = json_out(
        aiops("problems", "update", str(pid), "--root-cause", "leaky pool", "--json", "-c", config, env=ALICE)
    )
    assert (noted["status"], noted["root_cause"], noted["known_error_id"]) == ("problem", "leaky pool", None)

    known = json_out(
        aiops(
            "problems", "update", str(pid), "--workaround", "recycle the workers",
            "--workaround-runbook", "recycle_workers", "--json", "-c", config, env={"AIOPS_ACTOR": "bob"},
        )
    )  # fmt: skip
    assert known["status"] == "known_error" and known["known_error_id"] is not None
    kid = known["known_error_id"]
    [listed] = json_out(aiops("known-errors", "list", "--json", "-c", config))
    assert (listed["id"], listed["problem_id"], listed["signatures"]) == (kid, pid, [SIGNATURE])
    assert (listed["root_cause"], listed["workaround"], listed["workaround_runbook"]) == (
        "leaky pool",
        "recycle the workers",
        "recycle_workers",
    )
    assert (listed["title"], listed["created_by"]) == ("web pool exhaustion", "cli:bob")
    shown = aiops("known-errors", "show", str(kid), "-c", config)
    assert shown.exit_code == 0 and "workaround: recycle the workers" in shown.stdout
    assert "recycle_workers" in aiops("known-errors", "list", "-c", config).stdout
    problem = aiops("problems", "show", str(pid), "-c", config).stdout
    assert "owner carol" in problem and f"known error #{kid}" in problem

    # a later update changes the known error, never makes a second one
    json_out(
        aiops("problems", "update", str(pid), "--workaround", "restart", "--json", "-c", config, env=ALICE)
    )
    [kept] = json_out(aiops("known-errors", "list", "--json", "-c", config))
    assert (kept["id"], kept["workaround"], kept["workaround_runbook"]) == (kid, "restart", "recycle_workers")

    store = with_store(config)
    try:
        assert audit(store) == [
            ("cli:alice", "problem.promote", f"problem:{pid}"),
            ("cli:alice", "problem.update", f"problem:{pid}"),
            ("cli:bob", "known_error.create", f"known_error:{kid}"),
            ("cli:bob", "problem.update", f"problem:{pid}"),
            ("cli:alice", "known_error.update", f"known_error:{kid}"),
            ("cli:alice", "problem.update", f"problem:{pid}"),
        ]
    finally:
        store.close()


def test_problem_commands_refuse_what_does_not_fit(config: Path) -> None:
    store = with_store(config)
    try:
        pid = candidate(store)
    finally:
        store.close()
    missing = aiops("problems", "promote", "99", "--owner", "carol", "-c", config, env=ALICE)
    assert missing.exit_code == 1 and "no problem 99" in missing.stderr
    early = aiops("problems", "update", str(pid), "--workaround", "x", "-c", config, env=ALICE)
    assert early.exit_code == 1 and "promote it first" in early.stderr
    assert aiops("problems", "promote", str(pid), "--owner", "carol", "-c", config, env=ALICE).exit_code == 0
    nothing = aiops("problems", "update", str(pid), "-c", config, env=ALICE)
    assert nothing.exit_code == 1 and "give a root cause" in nothing.stderr
    unknown = aiops(
        "problems", "update", str(pid), "--workaround", "x", "--workaround-runbook", "reboot_world",
        "-c", config, env=ALICE,
    )  # fmt: skip
    assert unknown.exit_code == 1 and "unknown workaround runbook 'reboot_world'" in unknown.stderr
    bare = aiops(
        "problems", "update", str(pid), "--workaround-runbook", "recycle_workers", "-c", config, env=ALICE
    )
    assert bare.exit_code == 1 and "needs a workaround" in bare.stderr
    viewer = aiops(
        "problems", "update", str(pid), "--workaround", "x", "-c", config,
        env={"AIOPS_TOKEN": "viewer-token-0123456789abcdef"},
    )  # fmt: skip
    assert viewer.exit_code == 1 and "this needs operator" in viewer.stderr
    assert aiops("known-errors", "show", "5", "-c", config).exit_code == 1
    assert aiops("known-errors", "list", "-c", config).stdout.strip() == "no known errors"
    store = with_store(config)
    try:
        assert [a[1] for a in audit(store)] == ["problem.promote"]  # refusals write nothing
    finally:
        store.close()


# ---------------------------------------------------------------- API


def test_the_lifecycle_over_http(client: tuple[TestClient, Store, list[int]]) -> None:
    c, store, _ = client
    pid = candidate(store)
    body = {"owner": "carol", "title": "web pool exhaustion"}
    assert call(c, "POST", f"/api/v1/problems/{pid}/promote", json=body).status_code == 401
    assert call(c, "POST", f"/api/v1/problems/{pid}/promote", "viewer", json=body).status_code == 403
    r = call(c, "POST", f"/api/v1/problems/{pid}/promote", "operator", json=body)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["owner"], len(r.json()["incidents"])) == ("problem", "carol", 2)
    twice = call(c, "POST", f"/api/v1/problems/{pid}/promote", "operator", json=body)
    assert twice.status_code == 409 and "only a candidate" in twice.json()["detail"]

    update = {"root_cause": "leaky pool", "workaround": "recycle", "workaround_runbook": "recycle_workers"}
    assert call(c, "PATCH", f"/api/v1/problems/{pid}", "viewer", json=update).status_code == 403
    r = call(c, "PATCH", f"/api/v1/problems/{pid}", "operator", json=update)
    assert r.status_code == 200, r.text
    kid = r.json()["known_error_id"]
    assert r.json()["status"] == "known_error" and r.json()["known_error"]["workaround"] == "recycle"
    r = call(c, "POST", f"/api/v1/problems/{pid}", "admin", json={"workaround": "recycle workers"})
    assert r.status_code == 200 and r.json()["known_error"]["workaround"] == "recycle workers"

    [listed] = call(c, "GET", "/api/v1/known-errors").json()
    assert (listed["id"], listed["problem_id"], listed["created_by"]) == (kid, pid, "api:oncall")
    detail = call(c, "GET", f"/api/v1/known-errors/{kid}").json()
    assert detail["workaround_runbook"] == "recycle_workers" and detail["incidents"] == []
    save_incidents(store, incident_state(3, known_error_id=kid))  # as the core links a new incident
    incident = call(c, "GET", "/api/v1/incidents/3").json()
    assert (incident["known_error_id"], incident["known_error"]["workaround"]) == (kid, "recycle workers")
    assert [i["id"] for i in call(c, "GET", f"/api/v1/known-errors/{kid}").json()["incidents"]] == [3]
    assert [(a, t) for _, a, t in audit(store)] == [
        ("problem.promote", f"problem:{pid}"),
        ("known_error.create", f"known_error:{kid}"),
        ("problem.update", f"problem:{pid}"),
        ("known_error.update", f"known_error:{kid}"),
        ("problem.update", f"problem:{pid}"),
    ]


def test_bad_problem_requests_get_a_clear_4xx(client: tuple[TestClient, Store, list[int]]) -> None:
    c, store, _ = client
    pid = candidate(store)
    cases = [
        ("POST", "/api/v1/problems/99/promote", {"owner": "x"}, 404, "no problem 99"),
        ("POST", f"/api/v1/problems/{pid}/promote", None, 422, ""),
        ("POST", f"/api/v1/problems/{pid}/promote", {"owner": ""}, 422, ""),
        ("POST", f"/api/v1/problems/{pid}/promote", {"owner": "x", "extra": 1}, 422, ""),
        ("PATCH", f"/api/v1/problems/{pid}", {"workaround": "x"}, 409, "promote it first"),
        ("PATCH", "/api/v1/problems/99", {"workaround": "x"}, 404, "no problem 99"),
        ("PATCH", f"/api/v1/problems/{pid}", {}, 422, ""),
        ("GET", "/api/v1/known-errors/7", None, 404, "no known error 7"),
        ("GET", "/api/v1/known-errors/0", None, 422, ""),
        ("GET", "/api/v1/problems?status=problm", None, 422, "known_error"),  # a typo, not an empty list
    ]
    for method, path, body, code, says in cases:
        r = call(c, method, path, "operator", json=body)
        assert r.status_code == code, (method, path, body, r.text)
        assert says in r.text
    call(c, "POST", f"/api/v1/problems/{pid}/promote", "operator", json={"owner": "carol"})
    r = call(
        c,
        "PATCH",
        f"/api/v1/problems/{pid}",
        "operator",
        json={"workaround": "x", "workaround_runbook": "nope"},
    )
    assert r.status_code == 422 and "unknown workaround runbook 'nope'" in r.json()["detail"]
    assert store.known_errors.list() == []
