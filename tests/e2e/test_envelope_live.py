"""The safety envelope against real parts: a running agent (real Prometheus, the demo exporter, real
playbooks through ansible-runner, SQLite) obeys a silence and a circuit breaker set with the `aiops`
command from another process, without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.core.domain import ChangeStatus, IncidentStatus
from agent.shell.app import AgentApp
from agent.shell.store import Store
from tests.conftest import PromStack
from tests.e2e.conftest import catalog_with, eventually, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")


def cli(*args: str, config: Path) -> Any:
    done = subprocess.run(
        [AIOPS, *args, "--json", "-c", str(config)],
        env={**os.environ, "AIOPS_ACTOR": "alice"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def kinds(store: Store, incident_id: int) -> list[str]:
    return [e.kind for e in store.incidents.timeline(incident_id)]


def test_a_silence_set_from_the_cli_holds_a_running_agent_until_it_is_expired(
    private_stack: PromStack, tmp_path: Path
) -> None:
    config = write_config(tmp_path, private_stack.url)
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        silence = cli(
            "silences", "add", "-m", "service=demo-web", "-m", "signal=demo_error_ratio",
            "--for", "1h", "--comment", "load test", config=config,
        )  # fmt: skip
        eventually(app.store, lambda s: app.leader and app.leader.core.envelope.silences, 10, "the silence")
        private_stack.exporter.service.set_fault(True)
        incident = eventually(app.store, lambda s: next(iter(s.incidents.list()), None), 30, "an incident")
        eventually(app.store, lambda s: "remediation_held" in kinds(s, incident.id), 15, "the rule held back")
        [signal] = app.store.incidents.signals(incident.id)
        assert signal.muted.startswith(f"silence #{silence['id']} (service=demo-web, signal=demo_error_ratio")
        assert app.store.changes.list() == [], "a silenced signal must run nothing"
        assert kinds(app.store, incident.id)[:2] == ["opened", "signal_muted"]

        cli("silences", "expire", str(silence["id"]), config=config)
        expired = time.monotonic()
        change = eventually(app.store, lambda s: next(iter(s.changes.list()), None), 10, "a change")
        took = time.monotonic() - expired
        assert took < 5, f"the expiry took {took:.1f}s to reach the core (housekeeping is 500ms)"
        done = eventually(
            app.store, lambda s: s.incidents.get(incident.id).status == "resolved" or None, 60, "a repair"
        )
        assert done and app.store.changes.get(change.id).status == ChangeStatus.SUCCEEDED
        assert private_stack.exporter.service.fault is False
        assert [a.action for a in reversed(app.store.audit.list()) if a.action.startswith("silence")] == [
            "silence.add",
            "silence.expire",
        ]
    finally:
        app.stop()


@pytest.fixture
def failing_catalog(tmp_path: Path) -> Path:
    """`broken`: a runbook whose playbook always fails."""
    task = "    - name: Fail like a broken runbook\n      ansible.builtin.fail:\n        msg: broken on purpose\n"
    return catalog_with(tmp_path, "broken", task, timeout="2m")


def test_failing_runbooks_open_the_breaker_and_a_cli_resume_closes_it(
    private_stack: PromStack, tmp_path: Path, failing_catalog: Path
) -> None:
    rule = {
        "name": "fix-demo",
        "match": {"service": "demo-web", "signals": ["demo_error_ratio"]},
        "runbook": "broken",
        "params": {"url": "http://{labels.instance}/admin/recycle"},
        "guards": {"cooldown": "1s", "max_attempts": 3},
        "verify": {"promql": "vector(1)", "deadline": "5s"},
    }
    config = write_config(tmp_path / "agent", private_stack.url, catalog=failing_catalog, rules=[rule])
    doc = yaml.safe_load(config.read_text())
    doc["remediation"]["circuit_breaker"] = {"failures": 2, "within": "10m"}
    config.write_text(yaml.safe_dump(doc))
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        private_stack.exporter.service.set_fault(True)

        def failed(n: int) -> Any:
            changes = [c for c in app.store.changes.list() if c.status == ChangeStatus.FAILED]
            return changes if len(changes) >= n else None

        eventually(app.store, lambda s: failed(2), 60, "two failed changes")
        incident = app.store.incidents.list()[0]
        eventually(app.store, lambda s: "circuit_breaker_opened" in kinds(s, incident.id), 10, "the breaker")
        eventually(app.store, lambda s: "remediation_held" in kinds(s, incident.id), 10, "the hold")
        status = cli("automation", "status", config=config)
        assert [(b["runbook"], b["service"]) for b in status["breakers"]] == [("broken", "demo-web")]
        assert len(app.store.changes.list()) == 2, "an open breaker runs nothing more"
        assert app.store.incidents.get(incident.id).status != IncidentStatus.RESOLVED

        cli("automation", "resume", "--service", "demo-web", "--runbook", "broken", config=config)
        eventually(app.store, lambda s: failed(3), 60, "a third change after the resume")
        assert [a.actor for a in app.store.audit.list() if a.action == "automation.resume"] == ["cli:alice"]
    finally:
        app.stop()
