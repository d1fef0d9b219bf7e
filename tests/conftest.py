"""Shared fixtures: real Prometheus, a real demo exporter, real PostgreSQL; strict about missing parts.

With CI=true (or AIOPS_STRICT_TESTS=1) a missing dependency fails the test instead of skipping it,
so the README's test command can never go green by skipping what it was meant to test.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from demo.processes import prometheus_binary, start_prometheus
from demo.service import DemoService, make_handler
from tests.support.postgres import PostgresServer, postgres_bindir
from tests.support.recording_http import RecordingServer, Reply, Responder, serve

# Fixtures of the on-call command and endpoint tests (a config with tokens, the API over a real store).
pytest_plugins = ["tests.support.oncall"]

STRICT = os.environ.get("AIOPS_STRICT_TESTS") == "1" or os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parent.parent


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (CI / strict) when a real dependency is not installed."""
    if available:
        return
    if STRICT:
        pytest.fail(f"{what} is required in strict mode (CI=true); install it with scripts/setup.sh")
    pytest.skip(f"{what} not installed; run scripts/setup.sh")


@dataclass
class DemoExporter:
    """The demo service served from this process (a real HTTP exporter on 127.0.0.1:port)."""

    service: DemoService
    server: ThreadingHTTPServer

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.service.stop.set()
        self.server.shutdown()
        self.server.server_close()


def start_exporter(rps: float = 50.0, log_file: Path | None = None) -> DemoExporter:
    svc = DemoService(rps=rps, seed=7, log_file=str(log_file) if log_file else None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(svc))
    threading.Thread(target=svc.simulate, daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return DemoExporter(svc, server)


@dataclass
class PromStack:
    exporter: DemoExporter
    url: str
    request_log: Path | None = None  # the exporter's request log (private stacks only)


@pytest.fixture(scope="session")
def prometheus_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """A real Prometheus (1s scrapes) scraping a real demo exporter; shared, so do not fault its exporter."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    exporter = start_exporter()
    proc, url = start_prometheus(tmp_path_factory.mktemp("prometheus"), {"demo": [exporter.address]})
    yield PromStack(exporter, url)
    proc.stop()
    exporter.stop()


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[PromStack]:
    """Like prometheus_stack, but for one test alone: its exporter may be faulted, and writes a request log."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    request_log = tmp_path / "demo-service.requests.log"
    exporter = start_exporter(log_file=request_log)
    proc, url = start_prometheus(tmp_path / "prometheus", {"demo": [exporter.address]})
    yield PromStack(exporter, url, request_log)
    proc.stop()
    exporter.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    require(postgres_bindir() is not None, "PostgreSQL server (Debian package postgresql)")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


_db_counter = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store per test, on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aiops.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    import sqlalchemy

    name = f"t{os.getpid()}_{next(_db_counter)}"
    engine = sqlalchemy.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.url(name)


def prometheus_has(url: str, promql: str) -> bool:
    r = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=2)
    return bool(r.json()["data"]["result"])


StartPeer = Callable[[Sequence[Reply] | Responder], RecordingServer]


@pytest.fixture
def http_peer() -> Iterator[StartPeer]:
    """Start local recording HTTP servers (port 0) for one test: `http_peer([Reply(503), Reply(200)])`."""
    started: list[RecordingServer] = []

    def start(replies: Sequence[Reply] | Responder) -> RecordingServer:
        server = serve(replies)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
