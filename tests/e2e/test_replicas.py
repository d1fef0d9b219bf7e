"""Replicas: `aiops run` processes sharing one real PostgreSQL store, against a real Prometheus, the demo
exporter and real playbooks. One leads (polls, decides, remediates), the other stands by; a fault is
remediated once; a leader killed or paused mid-remediation is replaced within the lease TTL, what it
left running is escalated and never re-run, and a paused leader's writes are refused when it wakes.
On SQLite, a second agent on the same file is refused at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import sqlalchemy
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from agent.core.domain import ChangeStatus, IncidentStatus, RunStatus
from agent.shell.store import Store
from agent.shell.store.engine import SCHEMA_VERSION
from agent.shell.store.fence import LEADER
from agent.shell.store.tables import Change, Incident, Lease, RunbookRun
from demo.processes import free_port, prometheus_binary, start_prometheus, wait_until
from tests.conftest import DemoExporter, PromStack, require, start_exporter
from tests.e2e.conftest import HEALTHY, hung_processes, kill_tree, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")
T = TypeVar("T")

TTL = 3.0  # ha.lease_ttl of every config here, so failovers take seconds
POLL = 1.0  # prometheus.poll_interval of write_config (a standby checks the lease more often than that)
MARGIN = 1.5  # building the new leader, and the test's own polling
ERROR_POLLS = {"source": "prometheus:demo_error_ratio"}
ON_POSTGRES = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


# ---------------------------------------------------------------------- `aiops run` processes


@dataclass
class Replica:
    """An `aiops run` subprocess with its own API port (every config here reads it from the env)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def readiness(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.api}/readyz", timeout=2).json())

    def role(self) -> str | None:
        """`leader` or `standby`; None while the API does not answer."""
        try:
            return str(self.readiness()["role"])
        except requests.RequestException:
            return None

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        text = requests.get(f"{self.api}/metrics", timeout=2).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == (labels or {}):
                    return float(sample.value)
        return None

    def polls(self) -> float:
        return self.metric("aiops_polls_total", ERROR_POLLS) or 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_tree(self) -> None:
        kill_tree(self.proc)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[[str, Path], Replica]]:
    """`start(name, config)` starts an `aiops run`; each one is killed, tree and all, after the test."""
    started: list[Replica] = []

    def start(name: str, config: Path) -> Replica:
        port = free_port()
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [AIOPS, "run", "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "LC_ALL": "C.UTF-8", "AIOPS_API_LISTEN": f"127.0.0.1:{port}"},
            )
        started.append(Replica(name, proc, port, log))
        return started[-1]

    try:
        yield start
    finally:
        for replica in started:
            if replica.alive():
                replica.kill_tree()  # SIGKILL also ends a stopped process


@dataclass
class Roles:
    """The /readyz role of every replica, sampled at every turn of a wait."""

    replicas: list[Replica]
    samples: list[tuple[str | None, ...]] = field(default_factory=list)

    def one_leader(self) -> Replica | None:
        """The leader, when exactly one replica says leader and every other one says standby."""
        roles = tuple(r.role() for r in self.replicas)
        self.samples.append(roles)
        if sorted(map(str, roles)) != ["leader"] + ["standby"] * (len(roles) - 1):
            return None
        return self.replicas[roles.index("leader")]

    def wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        def turn() -> T | None:
            self.one_leader()
            return check()

        return wait_until(turn, timeout, what, interval=0.2)


def _config(directory: Path, stack_url: str, store_url: str, **kwargs: Any) -> Path:
    """One agent.yaml for every replica: the same store, a short lease TTL, the API port from the env."""
    return write_config(
        directory,
        stack_url,
        store_url=store_url,
        lease_ttl=f"{TTL:g}s",
        api_listen="${AIOPS_API_LISTEN}",
        **kwargs,
    )


def _two(start: Callable[[str, Path], Replica], config: Path) -> tuple[Replica, Replica]:
    """Start two replicas of `config`; (leader, standby) once exactly one leads."""
    a, b = start("a", config), start("b", config)
    leader = wait_until(Roles([a, b]).one_leader, 30, "one leader and one standby")
    return leader, (b if leader is a else a)


# ---------------------------------------------------------------------- the store


def _count(store: Store, table: type[Change] | type[RunbookRun]) -> int:
    with Session(store.engine) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def _lease(store: Store) -> Lease:
    with Session(store.engine) as s:
        lease = s.get(Lease, LEADER)
        assert lease is not None
        return lease


def _escalated(store: Store, incident_id: int) -> Incident | None:
    incident = store.incidents.get(incident_id)
    return incident if incident.escalated else None


def _running_hang(store: Store) -> Change | None:
    """The hanging change, once its playbook has reached the task that never ends."""
    running = store.changes.with_status(ChangeStatus.RUNNING)
    runs = store.runs.for_change(running[0].number) if running else []
    if runs and any(e.task == "Wait forever" for e in store.runs.events(runs[0].id or 0)):
        return running[0]
    return None


def _assert_interrupted_and_escalated(store: Store, hung: Change, epoch: int) -> Incident:
    """What a new leader makes of a change its lost predecessor was running: failed, interrupted, escalated."""
    incident = wait_until(lambda: _escalated(store, hung.incident_id), 10, "the incident to be escalated")
    (change,) = store.changes.list()
    assert change.id == hung.id and change.status == ChangeStatus.FAILED, change
    assert change.outcome.startswith("interrupted") and change.epoch == epoch, change
    (run,) = store.runs.for_change(change.number)
    assert run.status == RunStatus.INTERRUPTED, run
    assert incident.status == IncidentStatus.OPEN
    assert "escalated" in [e.kind for e in store.incidents.timeline(hung.incident_id)]
    return incident


# ---------------------------------------------------------------------- one fault, two replicas


@ON_POSTGRES
def test_two_replicas_remediate_one_fault_once(
    private_stack: PromStack, store_url: str, tmp_path: Path, replicas: Callable[[str, Path], Replica]
) -> None:
    leader, standby = _two(replicas, _config(tmp_path / "cfg", private_stack.url, store_url))
    assert leader.metric("aiops_leader") == 1.0 and standby.metric("aiops_leader") == 0.0
    lead, stand = leader.readiness(), standby.readiness()
    assert lead["leader"] == lead["identity"] != stand["identity"]
    assert stand["leader"] == lead["identity"] and stand["epoch"] == lead["epoch"]
    assert stand["ready"] is True and stand["scheduler"] is False

    roles = Roles([leader, standby])  # sampled at every turn while the fault is remediated
    store = Store.open(store_url)
    try:
        private_stack.exporter.service.set_fault(True)
        (incident,) = roles.wait(
            lambda: store.incidents.list(status=IncidentStatus.RESOLVED.value),
            60,
            "the incident to be remediated and resolved",
        )
        assert incident.resolved_by == "agent" and "verified" in incident.resolution
        assert private_stack.exporter.service.fault is False, "the runbook must have repaired the service"
        (change,) = store.changes.list()
        assert change.status == ChangeStatus.SUCCEEDED and change.incident_id == incident.id
        assert change.epoch == lead["epoch"], "the change must be claimed under the leader's epoch"
        (run,) = store.runs.for_change(change.number)
        assert run.status == RunStatus.SUCCESSFUL and run.rc == 0
        assert _count(store, Change) == 1 and _count(store, RunbookRun) == 1
        assert store.incidents.list() == [incident]
        assert standby.polls() == 0 and leader.polls() > 0, "only the leader polls"
    finally:
        store.close()

    assert len(roles.samples) >= 10, roles.samples
    assert set(roles.samples) == {("leader", "standby")}, roles.samples
    assert leader.metric("aiops_leader") == 1.0 and standby.metric("aiops_leader") == 0.0
    assert leader.alive() and standby.alive()


# ---------------------------------------------------------------------- failover mid-remediation


@dataclass
class TwoInstances:
    """Two demo instances behind one Prometheus (job demo: both are service demo-web)."""

    url: str
    first: DemoExporter
    second: DemoExporter


@pytest.fixture
def two_instances(tmp_path: Path) -> Iterator[TwoInstances]:
    """The failover test faults one instance before the failover and the other after it, so a rule
    per instance tells the fault the lost leader was remediating from the new one."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    first, second = start_exporter(), start_exporter()
    proc, url = start_prometheus(tmp_path / "prometheus", {"demo": [first.address, second.address]})
    try:
        yield TwoInstances(url, first, second)
    finally:
        proc.stop()
        first.stop()
        second.stop()


def _rule(name: str, instance: str, runbook: str, params: dict[str, Any]) -> dict[str, Any]:
    """A rule for one instance's error ratio; one attempt per incident, so nothing is ever re-run."""
    return {
        "name": name,
        "match": {"service": "demo-web", "signals": ["demo_error_ratio"], "labels": {"instance": instance}},
        "runbook": runbook,
        "params": params,
        "guards": {"cooldown": "10m", "max_attempts": 1, "approval": "auto"},
        "verify": {"promql": HEALTHY, "deadline": "30s"},
    }


@ON_POSTGRES
def test_leader_killed_mid_remediation_is_replaced_and_its_change_escalated_never_rerun(
    two_instances: TwoInstances,
    hanging_catalog: Path,
    store_url: str,
    tmp_path: Path,
    replicas: Callable[[str, Path], Replica],
) -> None:
    first, second = two_instances.first, two_instances.second
    # The first instance's fault gets the runbook that hangs; the second's, after the failover, the
    # real repair. Each rule has its own attempts and cooldown: the hang never runs again, and the
    # fix is not held back by it.
    recycle = {"url": "http://{labels.instance}/admin/recycle"}
    rules = [
        _rule("hang-first", first.address, "hang", {"url": "unused"}),
        _rule("fix-second", second.address, "recycle_workers", recycle),
    ]
    config = _config(
        tmp_path / "cfg",
        two_instances.url,
        store_url,
        catalog=hanging_catalog,
        rules=rules,
        shutdown_grace="1s",
    )
    old, new = _two(replicas, config)
    old_state = old.readiness()
    epoch = old_state["epoch"]

    store = Store.open(store_url)
    try:
        first.service.set_fault(True)
        hung = wait_until(lambda: _running_hang(store), 40, "the hanging runbook to be running", 0.2)
        wait_until(hung_processes, 15, "the playbook's command to be running")
        assert hung.epoch == epoch

        killed_at = time.monotonic()
        old.kill_tree()
        last = _lease(store)  # the dead leader's last renewal: nobody can have taken over yet
        assert last.holder == old_state["identity"] and last.epoch == epoch
        wait_until(lambda: new.role() == "leader", TTL + POLL + 10, "the standby to take over", 0.05)
        failover = time.monotonic() - killed_at
        taken = _lease(store)
        assert last.renewed_at is not None and taken.acquired_at is not None
        silence = (taken.acquired_at - last.renewed_at).total_seconds()
        print(f"\nkill -9 of the leader -> standby leads after {failover:.2f}s (lease silent {silence:.2f}s)")
        assert failover <= TTL + POLL + MARGIN, f"failover took {failover:.2f}s"
        assert silence >= TTL, "the standby must wait out a whole TTL without renewals"
        state = new.readiness()
        assert state["epoch"] == taken.epoch == epoch + 1
        assert state["leader"] == state["identity"] == taken.holder
        assert new.metric("aiops_leader") == 1.0
        wait_until(lambda: not hung_processes(), 10, "the killed playbook's command to be gone")

        _assert_interrupted_and_escalated(store, hung, epoch)
        # The fault persists while the new leader polls: nothing is run again for it.
        since = new.polls()
        wait_until(lambda: new.polls() >= since + 5, 20, "five polls by the new leader")
        assert first.service.fault is True
        assert _count(store, Change) == 1 and _count(store, RunbookRun) == 1
        assert not hung_processes()

        # Someone clears that fault by hand, and a new one appears: the new leader remediates it.
        first.service.set_fault(False)
        second.service.set_fault(True)
        (fix,) = wait_until(
            lambda: store.changes.list(status=ChangeStatus.SUCCEEDED.value), 60, "the new fault's repair", 0.2
        )
        assert fix.rule == "fix-second" and fix.epoch == epoch + 1
        assert second.service.fault is False, "the runbook must have repaired the second instance"
        (fix_run,) = store.runs.for_change(fix.number)
        assert fix_run.status == RunStatus.SUCCESSFUL and fix_run.rc == 0
        assert store.incidents.get(fix.incident_id).status == IncidentStatus.RESOLVED
        assert [c.id for c in store.changes.list()] == [fix.id, hung.id]
        assert [r.status for r in store.runs.for_change(hung.number)] == [RunStatus.INTERRUPTED]
        assert new.alive() and new.role() == "leader"
    finally:
        store.close()


# ---------------------------------------------------------------------- a paused leader


_IDLE_HOLDING_LEASE = sqlalchemy.text(
    "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
    " WHERE a.datname = current_database() AND a.state = 'idle in transaction'"
    " AND l.relation = 'leases'::regclass AND l.granted AND l.mode = 'RowExclusiveLock'"
)


def _pause_mid_write(replica: Replica, engine: Engine) -> None:
    """SIGSTOP the leader at a moment when one of its fenced writes holds the lease row (updated, not
    yet committed): what a long GC pause, a frozen VM or a partition with the TCP link up looks like
    to the database."""

    def caught() -> bool:
        os.kill(replica.proc.pid, signal.SIGSTOP)
        held = False
        try:
            with engine.connect() as conn:
                held = bool(conn.execute(_IDLE_HOLDING_LEASE).scalar())
        finally:
            if not held:
                os.kill(replica.proc.pid, signal.SIGCONT)
        return held

    wait_until(caught, 60, "the leader to be paused in the middle of a fenced write", interval=0.005)


@ON_POSTGRES
def test_leader_paused_mid_write_is_replaced_and_fenced_when_it_wakes(
    private_stack: PromStack,
    hanging_catalog: Path,
    store_url: str,
    tmp_path: Path,
    replicas: Callable[[str, Path], Replica],
) -> None:
    config = _config(
        tmp_path / "cfg",
        private_stack.url,
        store_url,
        runbook="hang",
        params={"url": "unused"},
        catalog=hanging_catalog,
        shutdown_grace="1s",
    )
    old, new = _two(replicas, config)
    epoch = old.readiness()["epoch"]
    store = Store.open(store_url)
    try:
        private_stack.exporter.service.set_fault(True)
        hung = wait_until(lambda: _running_hang(store), 40, "the hanging runbook to be running", 0.2)
        _pause_mid_write(old, store.engine)
        paused_at = time.monotonic()
        try:
            wait_until(lambda: new.role() == "leader", TTL + POLL + 10, "the standby to take over", 0.05)
            failover = time.monotonic() - paused_at
            print(f"\nleader paused holding the lease row -> standby leads after {failover:.2f}s")
            assert failover <= TTL + POLL + MARGIN, (
                f"failover took {failover:.2f}s; the standby's log ends:\n{new.output()[-3000:]}"
            )
            incident = _assert_interrupted_and_escalated(store, hung, epoch)
        finally:
            os.kill(old.proc.pid, signal.SIGCONT)

        # The old leader wakes up believing it leads and still runs the change: its writes are refused,
        # it steps down and cancels the playbook, and the store keeps what the new leader recorded.
        wait_until(lambda: "lost the lease mid-change" in old.output(), 30, "the stale write to be refused")
        assert old.alive() and old.role() == "standby" and old.metric("aiops_leader") == 0.0
        wait_until(lambda: not hung_processes(), 10, "the stale playbook's command to be gone")
        assert new.role() == "leader" and _lease(store).epoch == epoch + 1
        assert _count(store, Change) == 1 and _count(store, RunbookRun) == 1
        (run,) = store.runs.for_change(hung.number)
        assert run.status == RunStatus.INTERRUPTED, "the stale leader's cancelled run must not be recorded"
        change = store.changes.get(hung.number)
        assert change.status == ChangeStatus.FAILED and change.outcome.startswith("interrupted")
        after = store.incidents.get(incident.id or 0)
        assert after.escalated and after.status == IncidentStatus.OPEN
    finally:
        store.close()


# ---------------------------------------------------------------------- racing on a fresh database


@ON_POSTGRES
def test_simultaneous_start_on_a_fresh_database_creates_the_schema_once(
    private_stack: PromStack, store_url: str, tmp_path: Path, replicas: Callable[[str, Path], Replica]
) -> None:
    engine = sqlalchemy.create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert sqlalchemy.inspect(conn).get_table_names() == [], "the database must start empty"
        config = _config(tmp_path / "cfg", private_stack.url, store_url)
        a, b = replicas("a", config), replicas("b", config)

        def healthy(r: Replica) -> bool:
            return requests.get(f"{r.api}/healthz", timeout=2).json() == {"status": "ok"}

        wait_until(lambda: healthy(a) and healthy(b), 30, "both replicas to answer /healthz")
        roles = Roles([a, b])
        leader = wait_until(roles.one_leader, 15, "one leader and one standby")
        wait_until(lambda: leader.polls() >= 3, 15, "three polls by the leader")
        assert a.alive() and b.alive(), a.output() + b.output()
        assert roles.one_leader() is leader

        with engine.connect() as conn:
            versions = conn.execute(sqlalchemy.text("SELECT version FROM schema_version")).scalars().all()
            holders = conn.execute(sqlalchemy.text("SELECT holder FROM leases")).scalars().all()
        assert versions == [SCHEMA_VERSION]
        assert holders == [leader.readiness()["identity"]]
        created = [r.name for r in (a, b) if "store created at schema version" in r.output()]
        assert len(created) == 1, created
        for r in (a, b):
            assert "Traceback" not in r.output() and "ERROR" not in r.output(), r.output()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- SQLite: one agent per file


def test_second_agent_on_one_sqlite_file_is_refused_at_start(
    private_stack: PromStack, tmp_path: Path, replicas: Callable[[str, Path], Replica]
) -> None:
    config = write_config(tmp_path / "cfg", private_stack.url, api_listen="${AIOPS_API_LISTEN}")
    database = tmp_path / "cfg" / "aiops.db"
    first = replicas("first", config)
    wait_until(lambda: first.role() == "leader", 30, "the first agent to lead")
    epoch = first.readiness()["epoch"]

    began = time.monotonic()
    second = subprocess.run(
        [AIOPS, "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LC_ALL": "C.UTF-8", "AIOPS_API_LISTEN": f"127.0.0.1:{free_port()}"},
    )
    took = time.monotonic() - began
    assert second.returncode != 0, second.stderr
    assert took < 10, f"the second agent took {took:.1f}s to give up"
    (line,) = second.stderr.strip().splitlines()  # that line alone: no start announced, no traceback
    assert line.startswith("error: ") and str(database) in line, line
    assert "one agent per SQLite file" in line, line

    assert first.alive(), first.output()
    since = first.polls()
    wait_until(lambda: first.polls() >= since + 2, 10, "the first agent to keep polling")
    state = first.readiness()
    assert state["role"] == "leader" and state["epoch"] == epoch and state["ready"] is True
