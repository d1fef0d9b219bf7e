"""An on-call engineer's retry and rollback from the command line, carried out by a running agent with
real playbooks (ansible-runner), real Prometheus and the demo exporter."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.core.domain import ChangeKind, ChangeStatus
from agent.shell.app import AgentApp
from tests.conftest import PromStack
from tests.e2e.conftest import catalog_with, eventually, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")


def aiops(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIOPS, *args, "-c", str(config)],
        env={**os.environ, "AIOPS_ACTOR": "alice"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@contextlib.contextmanager
def agent(config: Path, stack: PromStack) -> Iterator[AgentApp]:
    """A running agent whose rule's fault is on."""
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        stack.exporter.service.set_fault(True)
        yield app
    finally:
        app.stop()


def rule(runbook: str) -> dict[str, Any]:
    return {
        "name": "fix-demo",
        "match": {"service": "demo-web", "signals": ["demo_error_ratio"]},
        "runbook": runbook,
        "params": {"url": "http://{labels.instance}/admin/recycle"},
        "guards": {"cooldown": "10m", "max_attempts": 1},
        "verify": {"promql": "vector(1)", "deadline": "5s"},
    }


def test_a_retry_from_the_cli_runs_the_failed_change_again(private_stack: PromStack, tmp_path: Path) -> None:
    fail = "    - name: Fail like a broken runbook\n      ansible.builtin.fail:\n        msg: broken on purpose\n"
    catalog = catalog_with(tmp_path, "broken", fail, timeout="2m")
    config = write_config(tmp_path / "agent", private_stack.url, catalog=catalog, rules=[rule("broken")])
    with agent(config, private_stack) as app:
        first = eventually(
            app.store,
            lambda s: next((c for c in s.changes.list() if c.status == ChangeStatus.FAILED), None),
            60,
            "a failure",
        )
        done = aiops(config, "changes", "retry", str(first.id), "--note", "flaky network", "--json")
        assert done.returncode == 0, done.stderr
        made = yaml.safe_load(done.stdout)
        assert (made["kind"], made["origin_id"], made["decided_by"], made["decision_note"]) == (
            "retry",
            first.id,
            "cli:alice",
            "flaky network",
        )
        retried = eventually(
            app.store,
            lambda s: s.changes.get(made["id"]) if s.changes.get(made["id"]).status.final else None,
            60,
            "the retry",
        )
        assert retried.status == ChangeStatus.FAILED
        [run] = app.store.runs.for_change(retried.id)  # it really ran, once
        assert run.rc != 0
        again = aiops(config, "changes", "rollback", str(first.id))
        assert again.returncode == 1 and "no rollback playbook" in again.stderr


def test_a_rollback_from_the_cli_runs_the_rollback_playbook(private_stack: PromStack, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    apply = f"    - name: Apply\n      ansible.builtin.copy:\n        content: applied\n        dest: {marks}/applied\n"
    undo = f"    - name: Undo\n      ansible.builtin.copy:\n        content: undone\n        dest: {marks}/undone\n"
    catalog = catalog_with(tmp_path, "tweak", apply, timeout="2m", rollback=undo)
    config = write_config(tmp_path / "agent", private_stack.url, catalog=catalog, rules=[rule("tweak")])
    with agent(config, private_stack) as app:
        first = eventually(
            app.store,
            lambda s: next((c for c in s.changes.list() if c.status == ChangeStatus.SUCCEEDED), None),
            60,
            "the change to succeed",
        )
        private_stack.exporter.service.set_fault(False)
        assert (marks / "applied").exists() and not (marks / "undone").exists()
        done = aiops(config, "changes", "rollback", str(first.id), "--note", "made latency worse")
        assert done.returncode == 0, done.stderr
        rollback = eventually(
            app.store,
            lambda s: next(
                (c for c in s.changes.list() if c.kind == ChangeKind.ROLLBACK and c.status.final), None
            ),
            60,
            "the rollback to finish",
        )
        assert rollback.status == ChangeStatus.SUCCEEDED and rollback.origin_id == first.id
        assert rollback.outcome == f"rollback playbook of change #{first.id} succeeded"
        assert (marks / "undone").read_text() == "undone"
        kinds = [e.kind for e in app.store.incidents.timeline(first.incident_id)]
        assert "rollback_finished" in kinds
        assert [a.action for a in app.store.audit.list() if a.action == "change.rollback"] == [
            "change.rollback"
        ]

        # the fault is gone: once resolved, the incident is closed with its review, by the running agent
        eventually(
            app.store,
            lambda s: s.incidents.get(first.incident_id).status == "resolved" or None,
            60,
            "resolved",
        )
        review = tmp_path / "review.yaml"
        review.write_text("summary: s\nimpact: i\nroot_cause: r\nactions: [a]\n")
        closed = aiops(config, "incidents", "close", str(first.incident_id), "--review", str(review))
        assert closed.returncode == 0, closed.stderr
        assert closed.stdout.strip() == f"incident #{first.incident_id} closed with its post-incident review"
        assert app.store.incidents.get(first.incident_id).closed_by == "cli:alice"
