"""Stopping mid-remediation: SIGTERM records a cancelled run; a crash is found and escalated on restart.
Either way nothing is lost, nothing is left half-recorded, and nothing runs twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.core.domain import ChangeStatus, IncidentStatus
from agent.shell.app import AgentApp
from agent.shell.store import Store
from agent.shell.store.tables import Incident, RunbookRun
from demo.processes import free_port, wait_until
from tests.conftest import PromStack
from tests.e2e.conftest import eventually, hung_processes, kill_tree, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [AIOPS, "run", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )


def _running_run(store: Store) -> RunbookRun | None:
    changes = store.changes.with_status(ChangeStatus.RUNNING)
    if not changes:
        return None
    runs = store.runs.for_change(changes[0].id or 0)
    started = runs and any(e.task == "Wait forever" for e in store.runs.events(runs[0].id or 0))
    return runs[0] if started else None


@pytest.fixture
def hang_config(private_stack: PromStack, tmp_path: Path, hanging_catalog: Path) -> Path:
    return write_config(
        tmp_path / "cfg",
        private_stack.url,
        runbook="hang",
        params={"url": "unused"},
        catalog=hanging_catalog,
        api_listen=f"127.0.0.1:{free_port()}",
        shutdown_grace="1s",
    )


@dataclass
class Stuck:
    """An `aiops run` subprocess whose remediation is hanging inside a playbook."""

    store: Store
    proc: subprocess.Popen[bytes]
    run: RunbookRun

    def crash(self) -> None:
        kill_tree(self.proc)


@pytest.fixture
def stuck(private_stack: PromStack, hang_config: Path, tmp_path: Path) -> Iterator[Stuck]:
    store = Store.open(load_config(hang_config).agent.store.url)
    proc = _start(hang_config, tmp_path / "agent.log")
    try:
        private_stack.exporter.service.set_fault(True)
        run = eventually(store, _running_run, 40, "the hung runbook to be running")
        wait_until(hung_processes, 15, "the playbook's command to be running")
        yield Stuck(store, proc, run)
    finally:
        if proc.poll() is None:
            kill_tree(proc)


def test_sigterm_cancels_a_hung_runbook_and_records_it(stuck: Stuck, tmp_path: Path) -> None:
    stuck.proc.send_signal(signal.SIGTERM)
    assert stuck.proc.wait(30) == 0, (tmp_path / "agent.log").read_text()
    store = stuck.store
    (change,) = store.changes.list()
    assert change.status == ChangeStatus.FAILED and "cancelled" in change.outcome
    (run,) = store.runs.for_change(change.number)
    assert run.status == "canceled" and run.id == stuck.run.id
    assert store.changes.with_status(ChangeStatus.RUNNING, ChangeStatus.VERIFYING) == []
    incident = store.incidents.get(change.incident_id)
    assert incident.escalated and incident.status == IncidentStatus.OPEN
    wait_until(lambda: not hung_processes(), 10, "the cancelled playbook's processes to exit")
    assert "aiops agent stopped" in (tmp_path / "agent.log").read_text()


def test_crash_mid_remediation_is_escalated_on_restart_and_never_rerun(
    stuck: Stuck, hang_config: Path
) -> None:
    stuck.crash()
    wait_until(lambda: not hung_processes(), 10, "the killed playbook to be gone")

    app = AgentApp(load_config(hang_config), registry=CollectorRegistry())
    app.start()
    try:
        (change,) = app.store.changes.list()
        assert change.status == ChangeStatus.FAILED and change.outcome.startswith("interrupted")
        (run,) = app.store.runs.for_change(change.id)
        assert run.status == "interrupted"

        # The interrupted run reaches the core as an event after start-up: wait for its escalation.
        def escalated(s: Store) -> Incident | None:
            incident = s.incidents.get(change.incident_id)
            return incident if incident.escalated else None

        incident = eventually(app.store, escalated, 20, "the interrupted change's incident to be escalated")
        assert incident.status == IncidentStatus.OPEN
        # The fault persists: the agent keeps polling; signals join the same incident, nothing re-runs.
        polls = app.metrics.polls.labels(source="prometheus:demo_error_ratio")
        wait_until(lambda: polls._value.get() >= 5, 20, "several polls after the restart")
        assert len(app.store.incidents.list()) == 1
        assert len(app.store.changes.list()) == 1
        assert len(app.store.runs.for_change(change.id)) == 1
        assert not hung_processes()
    finally:
        app.stop()
