"""No input gets a 5xx or a partial write: generated requests (odd ids and query strings, random and
hostile JSON, Alertmanager payloads with wrong types, surrogates and out-of-range times, random bytes,
wrong content types and tokens) against every route of the real app on a real SQLite store.

Routes are read from the app, so a new endpoint is covered without touching this file. Examples are
derandomized: the same requests every run.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import SQLModel
from starlette.routing import Mount

from agent.shell.store import Store
from tests.agent.test_api import TOKENS, Api, build_api, seed

EXAMPLES_PER_ROUTE = 120  # derandomized: the same requests every run; ~7,000 over the ~60 routes
ODD_SEGMENTS = [
    "0",
    "-1",
    "1e3",
    "0x10",
    "%201",
    "%EF%BC%91",  # a full-width digit one
    "9223372036854775807",
    "9223372036854775808",
    "%00",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "%FF",
    "..",
    "%2e%2e%2fapi",
    "index.html",
]
TIMES = [
    "2026-03-01T11:59:00Z",
    "2026-03-01T11:59:00.123456789+01:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "2026-03-01T12:00:00",
    "2026-03-01",
    "1772366400",
]
CONTENT_TYPES = [
    "application/json",
    None,
    "application/json; charset=latin-1",
    "application/problem+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "garbage",
]
# Hypothesis favours the first choice of a list or union: here, what gets furthest into the endpoint
# (a writer's token, a JSON body, an alert that may be valid).
AUTHORIZATIONS = [
    f"Bearer {TOKENS['operator']}",
    None,
    "Bearer not-a-token-0123456789",
    "Basic x",
    "Bearer ",
    *(f"Bearer {t}" for t in TOKENS.values()),
]

surrogates = st.integers(0xD800, 0xDFFF).map(chr)
texts = st.text(max_size=12) | st.lists(st.text(max_size=3) | surrogates, max_size=4).map("".join)
numbers = st.integers() | st.integers(min_value=2**63 - 2) | st.floats() | st.integers(max_value=-(2**63))
scalars = st.none() | st.booleans() | numbers | texts
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
times = st.sampled_from(TIMES) | st.datetimes().map(lambda d: d.isoformat() + "Z") | scalars
label_sets = st.dictionaries(
    st.sampled_from(["service", "severity", "instance"]) | texts,
    texts | st.just("x" * 4097) | numbers,
    max_size=3,
)
labels = (
    st.tuples(label_sets, st.text(min_size=1, max_size=8) | scalars).map(
        lambda pair: {**pair[0], "alertname": pair[1]}
    )
    | label_sets
)
plausible_alerts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved"]),
        "labels": st.dictionaries(st.sampled_from(["service", "instance"]), st.text(max_size=8)).map(
            lambda extra: {**extra, "alertname": "A"}
        ),
        "startsAt": st.sampled_from(TIMES[:3]),
    }
)
hostile_alerts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved", "pending"]) | scalars,
        "labels": labels,
        "startsAt": times,
    },
    optional={"endsAt": times, "annotations": label_sets, "generatorURL": scalars, "x": documents},
)
payloads = st.fixed_dictionaries(
    {"alerts": st.lists(plausible_alerts | hostile_alerts | documents, max_size=3)},
    optional={"version": scalars, "status": scalars, "receiver": scalars},
)
encoded = (payloads | st.fixed_dictionaries({"note": scalars}) | documents).map(
    lambda d: json.dumps(d).encode()
)
deep = st.integers(1, 300).flatmap(
    lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n])
)
bodies = encoded | st.none() | deep | st.binary(max_size=200)
segments = (
    st.sampled_from(ODD_SEGMENTS)
    | st.integers().map(str)
    | texts.map(lambda t: quote(t, errors="surrogatepass"))
)
queries = st.dictionaries(
    st.sampled_from(["status", "limit", "note"]) | texts.map(lambda t: quote(t, errors="surrogatepass")),
    segments,
    max_size=3,
).map(lambda q: "&".join(f"{k}={v}" for k, v in q.items()))


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route; a mounted app gets a `{path}` below its mount point."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(("GET", f"{route.path}/{{path}}"))
        else:
            found.extend(
                (method, route.path) for method in sorted(getattr(route, "methods", None) or ["GET"])
            )
    return found


def row_counts(store: Store) -> dict[str, int]:
    """Every table's row count, in one statement (this runs twice per generated request)."""
    tables = SQLModel.metadata.sorted_tables
    counts = [select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables]
    with store.engine.connect() as conn:
        return dict(conn.execute(select(*counts)).one()._mapping)


def fuzz(api: Api, method: str, template: str) -> None:
    """Send generated requests to one route: each answer is below 500, and a refusal wrote nothing."""

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        segment=segments,
        query=queries,
        body=bodies,
        content_type=st.sampled_from(CONTENT_TYPES),
        authorization=st.sampled_from(AUTHORIZATIONS),
    )
    def check(
        segment: str,
        query: str,
        body: bytes | None,
        content_type: str | None,
        authorization: str | None,
    ) -> None:
        path = re.sub(r"\{[^}]+\}", segment, template)
        headers = {"Content-Type": content_type, "Authorization": authorization}
        before = row_counts(api.store)
        r = api.client.request(
            method,
            f"{path}?{query}",
            content=body,
            headers={k: v for k, v in headers.items() if v is not None},
        )
        what = f"{method} {path}?{query}: {r.status_code} {r.text[:300]}"
        assert r.status_code < 500, what
        if r.status_code >= 400:
            assert row_counts(api.store) == before, f"{what}, yet rows changed"

    check()


def test_no_request_gets_a_server_error_or_a_partial_write(tmp_path: Path) -> None:
    with contextlib.contextmanager(build_api)(tmp_path, settle=0) as api:
        seed(api.store)
        found = routes(api.client.app)
        assert {("POST", "/api/v1/alerts"), ("GET", "/api/v1/incidents/{incident_id}")} <= set(found)
        for method, template in found:
            fuzz(api, method, template)
