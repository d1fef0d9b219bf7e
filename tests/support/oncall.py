"""Fixtures shared by the tests of on-call commands and endpoints (registered in tests/conftest.py): a
config with a store and a token of each role, and the API over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock
from agent.config.models import CircuitBreaker
from agent.shell.api import create_app
from agent.shell.store import Store
from tests.agent.core.test_engine import diagnose, write_config
from tests.agent.test_api import NAMES, TOKENS, api_config
from tests.support.records import T0

ALICE = {"AIOPS_ACTOR": "alice"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose store exists and whose API has a token of each role."""
    tokens = [{"name": NAMES[r], "role": r, "token": t} for r, t in TOKENS.items()]
    path = write_config(tmp_path, [diagnose()], api={"enabled": False, "tokens": tokens})
    Store.open(f"sqlite:///{tmp_path / 'aiops.db'}").close()
    return path


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Store, list[int]]]:
    store = Store.open(f"sqlite:///{tmp_path / 'api.db'}")
    woken: list[int] = []
    app = create_app(
        store,
        CollectorRegistry(),
        api_config(),
        ManualClock(T0),
        lambda: {"ready": True},
        wake=lambda: woken.append(1),
        breaker=CircuitBreaker(),
        services={"demo-web", "monitoring"},
        runbooks={"recycle_workers"},
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, store, woken
    store.close()


def call(c: TestClient, method: str, path: str, role: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    return c.request(method, path, headers=headers, **kw)
