"""The core's owner under load and failure: concurrent producers, a real store outage, an unclear commit.

The agent runs as `aiops run` builds it (AgentApp, the leader's threaded runtime) on real stores,
with a file log source; the clock is manual so log buckets and quiet periods are exact, while
threads, connections and the database are real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from agent.clock import ManualClock
from agent.config import load_config
from agent.core.decisions import Committed, Decisions
from agent.shell.app import AgentApp
from agent.shell.leader import Leader
from demo.processes import wait_until
from tests.conftest import StartPeer, require
from tests.support.postgres import PostgresServer, postgres_bindir
from tests.support.recording_http import Reply

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=5)


def normal(i: int) -> str:
    return f"2026-03-01 12:00:{i % 60:02d},123 INFO [worker-{i % 8}] demo.web: GET /api/items 200 {40 + i % 30}ms"


def failing(i: int) -> str:
    return f"2026-03-01 12:01:{i % 60:02d},456 ERROR [worker-{i % 8}] demo.web: upstream timeout after {3000 + i}ms"


def new_kind(i: int) -> str:
    """A line of a kind never seen before (each one a new template, each opening a detector counter)."""
    return f"2026-03-01 12:02:{i % 60:02d},789 WARN [worker-{i % 8}] demo.web: cache shard{'x' * (i % 7)} k{i} evicted"


def write_config(directory: Path, store_url: str, **agent: Any) -> Path:
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    doc = {
        "dry_run": True,
        "store": {"url": store_url},
        "prometheus": {"url": "http://127.0.0.1:9"},
        "log_sources": [
            {
                "name": "web",
                "type": "file",
                "paths": [str(directory / "logs" / "*.log")],
                "start_at": "beginning",
                "interval": "1h",  # the test drives the polls itself
                "service": "demo-web",
                "detection": {"bucket": "10s", "warmup": "30s", "warmup_lines": 50},
            }
        ],
        "housekeeping_interval": "1h",
        "api": {"enabled": False},
        "services_file": str(ROOT / "config" / "services.yaml"),
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
        **agent,
    }
    rules = [
        {
            "name": "diagnose-log-errors",
            "match": {"service": "demo-web", "signals": ["log_error_burst"]},
            "runbook": "collect_diagnostics",
            "params": {"incident_id": "{incident.id}", "service": "{service}"},
        }
    ]
    (directory / "agent.yaml").write_text(yaml.safe_dump(doc))
    (directory / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}))
    return directory / "agent.yaml"


class Agent:
    """An AgentApp leading with its threaded core; the test appends lines and drives polls and ticks."""

    def __init__(self, config: Path, clock: ManualClock, inline: bool = False):
        self.clock = clock
        self.registry = CollectorRegistry()
        self.app = AgentApp(load_config(config), clock=clock, registry=self.registry)
        self.leader: Leader = self.app.lead(inline=inline)
        self.log = config.parent / "logs" / "web.log"
        self.written = 0

    def append(self, *lines: str) -> None:
        with self.log.open("a", encoding="utf-8") as f:
            f.writelines(f"{line}\n" for line in lines)
        self.written += len(lines)

    def poll(self) -> None:
        self.leader.log_pollers[0].poll()

    def warm_up(self, polls: int = 14, per_poll: int = 20) -> None:
        for p in range(polls):
            self.append(*(normal(p * per_poll + i) for i in range(per_poll)))
            self.clock.advance(POLL)
            self.poll()
            self.leader.housekeeping()

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def close(self) -> None:
        self.app.stop()


@pytest.fixture
def sqlite_agent(tmp_path: Path) -> Iterator[Agent]:
    agent = Agent(write_config(tmp_path, f"sqlite:///{tmp_path / 'aiops.db'}"), ManualClock(T0))
    yield agent
    agent.close()


def test_log_polls_and_ticks_from_two_threads_lose_and_repeat_nothing(
    sqlite_agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    """Polls and housekeeping run on different scheduler threads; both only hand events to the core's
    owner, so the log detector is never read by one while the other changes it (before the redesign:
    "dictionary changed size during iteration" in most runs of exactly this)."""
    caplog.set_level(logging.ERROR)
    agent = sqlite_agent
    agent.warm_up()
    failures: list[BaseException] = []
    done = threading.Event()

    def polls() -> None:
        try:
            for round_ in range(60):
                agent.append(*(new_kind(round_ * 10 + i) for i in range(10)), *(normal(i) for i in range(10)))
                agent.clock.advance(timedelta(seconds=1))
                agent.poll()
        except BaseException as e:
            failures.append(e)
        finally:
            done.set()

    def ticks() -> None:
        try:
            while not done.is_set():
                agent.leader.housekeeping()
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=polls), threading.Thread(target=ticks), threading.Thread(target=ticks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failures == [] and not any(t.is_alive() for t in threads)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert agent.metric("aiops_samples_processed_total", source="logs:web") == agent.written
    templates = agent.metric("aiops_signals_total", source="logs", severity="info")
    assert 1 <= templates <= 20  # new templates reported (at most new_templates_per_hour), none twice
    [incident] = agent.app.store.incidents.list()
    assert len(agent.app.store.incidents.signals(incident.id)) == templates


@pytest.fixture
def outage_store(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own: the test stops it and starts it again."""
    require(postgres_bindir() is not None, "PostgreSQL server (Debian package postgresql)")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def test_a_store_outage_delays_decisions_but_loses_and_repeats_nothing(
    outage_store: PostgresServer, tmp_path: Path, http_peer: StartPeer
) -> None:
    """The store goes away while an error burst is read: the core decides, its commit fails and is
    retried until the database is back; then the incident, its evidence, its timeline, the planned
    change, the new log position and the notification are all recorded, each exactly once."""
    hook = http_peer([Reply(200)])
    sink = {"name": "oncall", "url": hook.url, "events": ["incident_opened"]}
    url = outage_store.create_database("outage")
    agent = Agent(write_config(tmp_path, url, notifications=[sink]), ManualClock(T0))
    try:
        agent.warm_up()
        outage_store.pause()
        agent.append(*(failing(i) for i in range(25)))
        agent.clock.advance(POLL)
        reader = threading.Thread(target=agent.poll)  # blocks while its decisions cannot be recorded
        reader.start()
        wait_until(lambda: agent.metric("aiops_store_write_failures_total") >= 3, 30, "commits failing")
        assert reader.is_alive(), "the poll must wait for its decisions to be recorded"
        outage_store.resume()
        reader.join(60)
        assert not reader.is_alive()

        store = agent.app.store
        [incident] = store.incidents.list()
        [burst] = [s for s in store.incidents.signals(incident.id) if s.name == "log_error_burst"]
        assert burst.evidence is not None and burst.evidence["count"] >= 10
        kinds = [e.kind for e in store.incidents.timeline(incident.id)]
        assert kinds.count("opened") == 1 and kinds.count("change_created") == 1
        assert len(store.changes.list()) == 1
        assert agent.metric("aiops_samples_processed_total", source="logs:web") == agent.written
        position = store.sources.all()["logs:web:position"]
        assert position["files"][0]["offset"] == agent.log.stat().st_size  # moved past every line
        hook.wait_for(1, timeout=20)
        assert [r.json()["event"] for r in hook.requests] == ["incident_opened"]
        assert store.outbox.pending() == 0
        agent.poll()  # nothing new: nothing is read twice
        assert agent.metric("aiops_samples_processed_total", source="logs:web") == agent.written
        assert len(store.incidents.list()) == 1
    finally:
        agent.close()


def test_a_commit_that_went_through_unacknowledged_is_not_written_twice(tmp_path: Path) -> None:
    """The connection fails at COMMIT after the database took it: the retry finds its commit already
    recorded (the lease row numbers the leader's commits), reloads what the core holds from the
    store, and goes on; nothing is inserted twice."""
    agent = Agent(write_config(tmp_path, f"sqlite:///{tmp_path / 'aiops.db'}"), ManualClock(T0), inline=True)
    real = agent.leader.runtime.committer
    lost_acks = [0]

    class AckLost:
        def commit(self, out: Decisions, seq: int) -> Committed:
            result = real.commit(out, seq)
            if out.incidents and lost_acks[0] == 0:
                lost_acks[0] += 1
                raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
            return result

    try:
        agent.leader.runtime.committer = AckLost()
        agent.warm_up()
        agent.append(*(failing(i) for i in range(25)))
        agent.clock.advance(POLL)
        agent.poll()
        assert lost_acks == [1]
        store = agent.app.store
        [incident] = store.incidents.list()
        assert [e.kind for e in store.incidents.timeline(incident.id)].count("opened") == 1
        # the core reloaded the incident from the store and keeps adding to it, not to a copy
        agent.append(*(failing(100 + i) for i in range(25)))
        agent.clock.advance(timedelta(seconds=20))
        agent.poll()
        assert [i.id for i in store.incidents.list()] == [incident.id]
        assert agent.leader.core.correlator.by_id(incident.id or 0) is not None
    finally:
        agent.close()
