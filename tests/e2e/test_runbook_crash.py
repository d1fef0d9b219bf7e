"""The agent dies (kill -9) mid-runbook: the playbook and everything it started, detached or not,
dies within seconds, and the run directory left behind is removed when an agent next starts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.shell.app import AgentApp
from demo.processes import free_port, wait_until
from integrations.proctree import descendants
from tests.e2e.conftest import ROOT, write_config
from tests.support.playbooks import (
    alive,
    kill_processes,
    processes_running,
    run_dirs_in,
    unique_duration,
    write_playbook,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A stand-in for the agent: a process running a playbook through integrations.ansible.
RUN_ONE = """
import sys
from pathlib import Path
from integrations.ansible import AnsibleRunner, PlaybookRun
AnsibleRunner(Path(sys.argv[1])).run(PlaybookRun(playbook=Path(sys.argv[2]), params={}, timeout=300))
"""


def test_agent_killed_mid_run_takes_the_runbook_tree_with_it(tmp_path: Path) -> None:
    detached, hanging = unique_duration(300), unique_duration(300)
    playbook = write_playbook(
        tmp_path,
        [
            {"name": "Detach a sleeper", "ansible.builtin.shell": f"(sleep {detached} >/dev/null 2>&1 &)"},
            {"name": "Hang", "ansible.builtin.command": f"sleep {hanging}"},
        ],
    )
    work_root = tmp_path / "runs"
    agent = subprocess.Popen(
        [sys.executable, "-c", RUN_ONE, str(work_root), str(playbook)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_until(lambda: processes_running(detached) and processes_running(hanging), 60, "the playbook")
        tree = descendants(agent.pid)  # the reaper, ansible-playbook, its workers, the task, the sleeper
        agent.kill()
        agent.wait(10)
        killed = time.monotonic()
        wait_until(
            lambda: not processes_running(detached) and not any(alive(pid) for pid in tree),
            5,
            "the runbook's processes to die with the agent",
        )
        assert time.monotonic() - killed < 5
    finally:
        with contextlib.suppress(ProcessLookupError):
            agent.kill()
        kill_processes([detached, hanging])

    (left,) = run_dirs_in(work_root)  # nobody removed it: the agent died
    config = write_config(tmp_path / "cfg", "http://127.0.0.1:1", api_listen=f"127.0.0.1:{free_port()}")
    agent_yaml = yaml.safe_load(config.read_text())
    agent_yaml["remediation"]["data_dir"] = str(work_root)
    config.write_text(yaml.safe_dump(agent_yaml))
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        assert not left.exists(), "the abandoned run directory is removed when the agent starts"
    finally:
        app.stop()
