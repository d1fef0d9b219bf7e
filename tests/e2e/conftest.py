"""Building blocks for end-to-end runs: a config directory per test, and waiting on the store."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from agent.shell.store import Store
from demo.processes import wait_until
from integrations.proctree import descendants

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

LATENCY = 'histogram_quantile(0.99, sum by (le, job, instance) (rate(demo_request_duration_seconds_bucket{job="demo"}[5s])))'
ERRORS = (
    'sum by (job, instance) (rate(demo_requests_total{job="demo",code=~"5.."}[5s]))'
    ' / sum by (job, instance) (rate(demo_requests_total{job="demo"}[5s]))'
)
HEALTHY = 'sum(rate(demo_requests_total{job="demo",code=~"5.."}[5s])) / sum(rate(demo_requests_total{job="demo"}[5s])) < 0.02'


def write_config(
    directory: Path,
    prometheus_url: str,
    *,
    dry_run: bool = False,
    approval: str = "auto",
    runbook: str = "recycle_workers",
    params: dict[str, Any] | None = None,
    verify: str = HEALTHY,
    deadline: str = "30s",
    catalog: Path | None = None,
    notifications: list[dict[str, Any]] | None = None,
    api_listen: str | None = None,
    tokens: list[dict[str, str]] | None = None,
    shutdown_grace: str = "2s",
    store_url: str | None = None,
    lease_ttl: str | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> Path:
    """An agent.yaml + rules.yaml that react to the demo service's error ratio with a static threshold
    (no detector warm-up, so tests are quick); services.yaml and the runbook catalog are the shipped ones.
    The store is a SQLite file in `directory` unless `store_url` names another; `lease_ttl` sets
    `ha.lease_ttl`; `rules` replaces the one `fix-demo` rule."""
    directory.mkdir(parents=True, exist_ok=True)
    agent: dict[str, Any] = {
        "dry_run": dry_run,
        "store": {"url": store_url or f"sqlite:///{directory / 'aiops.db'}"},
        "prometheus": {
            "url": prometheus_url,
            "poll_interval": "1s",
            "step": "1s",
            "timeout": "3s",
            "retries": 1,
            "backoff": "100ms",
        },
        "queries": [
            {
                "name": "demo_error_ratio",
                "promql": ERRORS,
                "detector": None,
                "thresholds": [{"above": 0.05, "severity": "critical"}],
            }
        ],
        "correlation": {"window": "1m", "quiet_period": "10s", "reopen_window": "2m", "settle_period": "10s"},
        "remediation": {"verify_interval": "1s", "shutdown_grace": shutdown_grace},
        "housekeeping_interval": "500ms",
        "api": {
            "enabled": api_listen is not None,
            "listen": api_listen or "127.0.0.1:0",
            "tokens": tokens or [],
        },
        "notifications": notifications or [],
        "services_file": str(ROOT / "config" / "services.yaml"),
        "rules_file": "rules.yaml",
        "catalog_file": str(catalog or ROOT / "runbooks" / "catalog.yaml"),
    }
    if lease_ttl is not None:
        agent["ha"] = {"lease_ttl": lease_ttl}
    if rules is None:
        rules = [
            {
                "name": "fix-demo",
                "match": {"service": "demo-web", "signals": ["demo_error_ratio"]},
                "runbook": runbook,
                "params": params if params is not None else {"url": "http://{labels.instance}/admin/recycle"},
                "guards": {"cooldown": "10m", "max_attempts": 1, "approval": approval},
                "verify": {"promql": verify, "deadline": deadline},
            }
        ]
    (directory / "agent.yaml").write_text(yaml.safe_dump(agent, sort_keys=False))
    (directory / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False))
    return directory / "agent.yaml"


def eventually(store: Store, check: Callable[[Store], T | None], timeout: float, what: str) -> T:
    return wait_until(lambda: check(store), timeout, what, interval=0.2)


HANG_SECONDS = 3017  # an unusual number, so a leftover `sleep` process can be found by its arguments


def hung_processes() -> list[int]:
    """Pids of the `hang` runbook's command, wherever it was started from."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[:2] == [b"sleep", str(HANG_SECONDS).encode()]:
            found.append(int(pid))
    return found


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """The machine dies: the agent and every process under it (Ansible workers leave its process
    group with setsid, so the tree is killed, not the group)."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def catalog_with(
    directory: Path, name: str, tasks: str, timeout: str = "10m", rollback: str | None = None
) -> Path:
    """The shipped catalog plus runbook `name`: a standard change whose playbook runs `tasks` (YAML),
    and whose rollback playbook runs `rollback` when given."""
    catalog = yaml.safe_load((ROOT / "runbooks" / "catalog.yaml").read_text())
    for spec in catalog["runbooks"].values():
        spec["playbook"] = str(ROOT / "runbooks" / spec["playbook"])
    head = "- hosts: all\n  gather_facts: false\n  tasks:\n"
    playbook = directory / f"{name}.yml"
    playbook.write_text(head + tasks)
    catalog["runbooks"][name] = {
        "playbook": str(playbook),
        "change_type": "standard",
        "risk": "low",
        "timeout": timeout,
        "params": {"url": {"type": "string"}},
    }
    if rollback is not None:
        (directory / f"{name}_rollback.yml").write_text(head + rollback)
        catalog["runbooks"][name]["rollback"] = str(directory / f"{name}_rollback.yml")
    path = directory / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return path


@pytest.fixture
def hanging_catalog(tmp_path: Path) -> Path:
    """`hang`: a runbook that never finishes by itself."""
    task = f"    - name: Wait forever\n      ansible.builtin.command: sleep {HANG_SECONDS}\n"
    return catalog_with(tmp_path, "hang", task)
