"""What a runbook can see of the agent, and what a run leaves on disk, with the real ansible-runner.

The agent's environment holds its tokens and store URL, and ansible-runner would hand all of it to the
playbook (and write it into the run directory); secret parameters must not be written to a file either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config.models import RunbookSpec
from demo.processes import wait_until
from integrations.ansible import sweep_run_dirs
from tests.support.playbooks import (
    files_containing,
    processes_running,
    run,
    run_dirs_in,
    write_playbook,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLANTED = {
    "AIOPS_TOKEN_X": "planted-token-7f3a9c",
    "DATABASE_URL": "postgresql://aiops:planted-pw-51e2@db/aiops",
    "AIOPS_STORE_URL": "sqlite:////planted/store-9d0b.db",
    "UNLISTED_VAR": "planted-unlisted-c44e",
}
# Ansible sets the working directory of the module it runs on localhost.
ADDED_BY_ANSIBLE_AND_SH = {"PWD"}


def gated_playbook(tmp_path: Path, go: Path, tasks: list[dict[str, object]]) -> Path:
    """`tasks`, then a task that waits (holding the `token` parameter) until `go` exists."""
    wait = 'while [ ! -e "$1" ]; do sleep 0.05; done'
    hold = {
        "name": "Hold the secret until the test has looked",
        "no_log": True,  # as any task handling a secret should be: keeps it out of events
        "ansible.builtin.command": {"argv": ["sh", "-c", wait, "sh", str(go), "{{ token }}"]},
    }
    return write_playbook(tmp_path, [*tasks, hold])


def release_after(go: Path, look: list[object], check: Callable[[], object]) -> threading.Thread:
    """Once the gated task runs, record `check()` into `look`, then let the playbook finish."""

    def watch() -> None:
        try:
            wait_until(lambda: processes_running(str(go)), 60, "the gated task to run")
            look.append(check())
        finally:
            go.touch()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_runbook_sees_only_its_minimal_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUNBOOK_REGION", "eu-west-3")
    dump = tmp_path / "env.txt"
    go = tmp_path / "go"
    playbook = gated_playbook(
        tmp_path,
        go,
        [
            {"name": "Read the environment", "ansible.builtin.command": {"argv": ["env"]}, "register": "e"},
            {"name": "Keep it", "ansible.builtin.copy": {"dest": str(dump), "content": "{{ e.stdout }}"}},
        ],
    )
    found_on_disk: list[object] = []
    watcher = release_after(
        go, found_on_disk, lambda: files_containing(tmp_path / "runs", [*PLANTED.values()])
    )

    outcome, _ = run(tmp_path, playbook, {"token": "t0ken-value"}, pass_env=("RUNBOOK_REGION", "UNSET_ONE"))

    watcher.join(5)
    assert outcome.ok, outcome.stdout
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines())
    assert not set(PLANTED) & set(env), "the agent's secrets reached the playbook"
    assert env["RUNBOOK_REGION"] == "eu-west-3", "a variable the catalog lists passes through"
    assert "UNSET_ONE" not in env
    assert env["LC_ALL"] == "C.UTF-8" and env["PATH"]
    runs = str(tmp_path / "runs")
    assert env["HOME"].startswith(runs) and env["TMPDIR"].startswith(runs), "HOME and TMPDIR of the run"
    unexpected = {
        name
        for name in env
        if name
        not in {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "RUNBOOK_REGION", *ADDED_BY_ANSIBLE_AND_SH}
        and not name.startswith(("ANSIBLE_", "RUNNER_", "AWX_"))
    }
    assert unexpected == set()
    assert found_on_disk == [[]], "the agent's environment was written into the run directory"


def test_secret_params_never_reach_a_file(tmp_path: Path) -> None:
    secret = "s3cr3t-on-disk-Vq81"
    go = tmp_path / "go"
    playbook = gated_playbook(
        tmp_path,
        go,
        [{"name": "Use the secret", "ansible.builtin.command": "true {{ token }}", "no_log": True}],
    )
    found: list[object] = []
    watcher = release_after(go, found, lambda: files_containing(tmp_path / "runs", [secret]))

    outcome, _ = run(tmp_path, playbook, {"token": secret, "plain": "x"}, secret=frozenset({"token"}))

    watcher.join(5)
    assert outcome.ok, outcome.stdout
    assert found == [[]], "a secret parameter was written to a file during the run"
    assert run_dirs_in(tmp_path / "runs") == []


def test_startup_sweep_removes_abandoned_run_dirs_but_not_running_ones(tmp_path: Path) -> None:
    work_root = tmp_path / "runs"
    abandoned = work_root / "aiops-run-crashed1"
    (abandoned / "artifacts").mkdir(parents=True)
    (abandoned / "artifacts" / "stdout").write_text("left by a crashed agent")
    unrelated = work_root / "not-a-run"
    unrelated.mkdir()
    go = tmp_path / "go"
    playbook = gated_playbook(tmp_path, go, [])
    swept: list[object] = []
    watcher = release_after(go, swept, lambda: (sweep_run_dirs(work_root), len(run_dirs_in(work_root))))

    outcome, _ = run(tmp_path, playbook, {"token": "t"})

    watcher.join(5)
    assert swept == [(1, 1)], "the sweep removed the abandoned dir and kept the one in use"
    assert outcome.ok, outcome.stdout
    assert not abandoned.exists() and unrelated.exists()
    assert run_dirs_in(work_root) == []


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("AIOPS_API_TOKEN", "configures Ansible or the agent"),
        ("DATABASE_URL", "looks like a secret"),
        ("VAULT_TOKEN", "looks like a secret"),
        ("HOME", "set by the runner"),
        ("ANSIBLE_CONFIG", "ansible.cfg"),
        ("BAD-NAME", "not an environment variable name"),
    ],
)
def test_catalog_env_refuses_secrets_and_runner_names(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        RunbookSpec(playbook="x.yml", env=["HTTPS_PROXY", name])
    assert RunbookSpec(playbook="x.yml", env=["HTTPS_PROXY", "SSH_AUTH_SOCK"]).env == [
        "HTTPS_PROXY",
        "SSH_AUTH_SOCK",
    ]
