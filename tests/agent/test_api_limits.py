"""What the API refuses, and how: oversized, deep or undecodable bodies, odd ids and filters. Each is a
4xx that names the problem and leaves the store as it was, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.shell.bodies import MAX_DEPTH
from tests.agent.test_api import Api, build_api, seed

MIB = 1024 * 1024


def alert(**labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": "X", **labels}, "startsAt": "2026-03-01T11:00:00Z"}


def post_alerts(api: Api, content: bytes | str, **kw: Any) -> Any:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return api.call("POST", "/api/v1/alerts", role="operator", content=content, headers=headers, **kw)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(tmp_path)


@pytest.fixture
def small_api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(tmp_path, max_alerts_per_request=2)


@pytest.mark.parametrize("number", ["9223372036854775808", "99999999999999999999999", "-1", "0"])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/v1/incidents/{}"),
        ("GET", "/api/v1/changes/{}"),
        ("GET", "/api/v1/problems/{}"),
        ("POST", "/api/v1/changes/{}/approve"),
        ("POST", "/api/v1/incidents/{}/acknowledge"),
    ],
)
def test_ids_out_of_range_are_422(api: Api, method: str, template: str, number: str) -> None:
    r = api.call(method, template.format(number), role="operator")
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "path"


def test_the_largest_id_is_just_unknown(api: Api) -> None:
    assert api.call("GET", "/api/v1/incidents/9223372036854775807").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/changes"])
def test_a_status_filter_outside_the_vocabulary_is_422(api: Api, path: str) -> None:
    r = api.call("GET", f"{path}?status=%ED%A0%80")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "status"]


def test_a_lone_surrogate_in_a_label_is_422_and_stores_nothing(api: Api) -> None:
    body = '{"alerts": [{"status": "firing", "labels": {"alertname": "X", "v": "\\udc00"}, "startsAt": "2026-03-01T11:00:00Z"}]}'
    r = post_alerts(api, body)
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["detail"]
    assert api.store.inbox.pending() == []


def test_a_lone_surrogate_in_a_note_is_422(api: Api) -> None:
    ids = seed(api.store)
    r = api.call(
        "POST",
        f"/api/v1/changes/{ids['awaiting']}/approve",
        role="operator",
        content=b'{"note": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert api.store.changes.get(ids["awaiting"]).status == "awaiting_approval"


def test_json_nested_deeper_than_the_limit_is_422(api: Api) -> None:
    def nested(depth: int) -> str:  # an alert payload (4 levels) plus an ignored field making up the rest
        return (
            '{"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2026-03-01T11:00:00Z", "x": %s}]}'
            % ("[" * (depth - 3) + "]" * (depth - 3))
        )

    assert post_alerts(api, nested(MAX_DEPTH)).status_code == 200
    r = post_alerts(api, nested(MAX_DEPTH + 1))
    assert r.status_code == 422
    assert r.json()["detail"] == f"the body nests JSON more than {MAX_DEPTH} levels deep"


def test_alerts_per_request_are_bounded_by_the_config(small_api: Api) -> None:
    doc = {"alerts": [alert(n="1"), alert(n="2"), alert(n="3")]}
    r = small_api.call("POST", "/api/v1/alerts", role="operator", json=doc)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "alerts"]
    assert "holds 3 alerts, more than the 2" in error["msg"]
    assert small_api.store.inbox.pending() == []
    doc["alerts"].pop()
    assert small_api.call("POST", "/api/v1/alerts", role="operator", json=doc).status_code == 200


def _padded(size: int) -> bytes:
    """A valid payload of `size` bytes, padded in a field the payload model ignores."""
    head = b'{"alerts": [{"status": "firing", "labels": {"alertname": "X"}, "startsAt": "2026-03-01T11:00:00Z"}], "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_bodies_over_max_body_are_413_whether_declared_or_streamed(api: Api) -> None:
    assert post_alerts(api, _padded(MIB)).status_code == 200
    over = _padded(MIB + 1)
    assert post_alerts(api, over).status_code == 413
    chunks = (over[i : i + 65536] for i in range(0, len(over), 65536))  # no Content-Length: chunked
    assert post_alerts(api, chunks).status_code == 413
    assert len(api.store.inbox.pending()) == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_415(api: Api, content_type: str) -> None:
    r = post_alerts(api, b'{"alerts": []}', headers={"Content-Type": content_type})
    assert r.status_code == 415
    assert api.store.inbox.pending() == []


def test_a_body_is_read_only_after_the_token_is_checked(api: Api) -> None:
    read = []

    def body() -> Iterator[bytes]:
        read.append(1)
        yield b"{}"

    r = api.call("POST", "/api/v1/alerts", content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert read == []
    r = api.call("POST", "/api/v1/changes/1/approve", role="viewer", content=body())
    assert r.status_code == 403
    assert read == []
