"""No runbook process outlives its run, even one that detached itself with `(cmd &)` (a double fork
that reparents it away from ansible-playbook), whether the run times out or ends normally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.processes import wait_until
from integrations.ansible import RunEvent
from tests.support.playbooks import kill_processes, processes_running, run, unique_duration, write_playbook

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def detach_task(duration: str) -> dict[str, object]:
    return {"name": "Detach a sleeper", "ansible.builtin.shell": f"(sleep {duration} >/dev/null 2>&1 &)"}


@pytest.fixture
def markers() -> Iterator[list[str]]:
    """Unique sleep durations; any process still using one is killed after the test, pass or fail."""
    used: list[str] = []
    yield used
    kill_processes(used)


def test_timeout_kills_detached_descendants(tmp_path: Path, markers: list[str]) -> None:
    detached, hanging = unique_duration(300), unique_duration(300)
    markers += [detached, hanging]
    playbook = write_playbook(
        tmp_path,
        [detach_task(detached), {"name": "Hang", "ansible.builtin.command": f"sleep {hanging}"}],
    )
    alive_while_running: list[bool] = []

    def note(event: RunEvent) -> None:
        if event.kind == "runner_on_ok" and event.task == "Detach a sleeper":
            alive_while_running.append(bool(processes_running(detached)))

    outcome, _ = run(tmp_path, playbook, {}, timeout=8, on_event=note)

    assert outcome.status == "timeout"
    assert alive_while_running == [True], "the detached sleeper must have been running before the kill"
    wait_until(lambda: not processes_running(detached), 5, "the detached sleeper to be killed")
    assert not processes_running(hanging)


def test_a_finished_run_leaves_no_process_behind(tmp_path: Path, markers: list[str]) -> None:
    detached = unique_duration(300)
    markers.append(detached)
    playbook = write_playbook(tmp_path, [detach_task(detached)])

    outcome, _ = run(tmp_path, playbook, {})

    assert outcome.ok, outcome.stdout
    wait_until(lambda: not processes_running(detached), 5, "the detached sleeper to be killed")
