"""The lists' filters on a real SQLite file and a real PostgreSQL database: text search ignores case on
both, and the characters LIKE treats as wildcards match only themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.core.domain import ChangeStatus, IncidentStatus, Priority
from agent.shell.store import Store
from tests.support.records import add_change, incident_state, save_incidents


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    save_incidents(
        store,
        incident_state(1, signature="demo-web:latency", title="demo-web latency 500 ms above expected"),
        incident_state(
            2,
            service="demo-db",
            signature="demo-db:errors",
            priority=Priority.P1,
            title="demo-db errors at 50% of requests",
        ),
        incident_state(3, signature="demo-web:cache", status=IncidentStatus.RESOLVED, title="cache_misses"),
    )
    add_change(store, 1, reason="latency above expected")
    add_change(store, 2, service="demo-db", runbook="failover_db", reason="errors at 50%")
    add_change(store, 3, ChangeStatus.SUCCEEDED, rule="clear-cache", reason="cache misses")
    yield store
    store.close()


@pytest.mark.parametrize(
    ("search", "ids"),
    [("LATENCY", [1]), ("50%", [2]), ("0_m", []), ("cache_", [3]), ("demo-web", [3, 1]), ("/", [])],
)
def test_incident_search_is_literal_and_ignores_case(store: Store, search: str, ids: list[int]) -> None:
    assert [i.id for i in store.incidents.list(search=search)] == ids


def test_incident_filters_combine(store: Store) -> None:
    assert [i.id for i in store.incidents.list(priority="P1")] == [2]
    assert [i.id for i in store.incidents.list(service="demo-web", status="resolved")] == [3]
    assert [i.id for i in store.incidents.list(service="demo-web", search="latency", priority="P1")] == []


def test_change_filters_use_the_incidents_priority(store: Store) -> None:
    assert [c.id for c in store.changes.list(priority="P1")] == [2]
    assert [c.id for c in store.changes.list(priority="P2", search="CACHE")] == [3]
    assert [c.id for c in store.changes.list(service="demo-db", search="50%")] == [2]
    assert [c.id for c in store.changes.list(search="5_%")] == []
