"""A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, one per test, clustering off."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from demo.processes import ManagedProcess, StartupError, free_port, wait_until


def alertmanager_binary() -> str | None:
    debian = Path("/usr/bin/prometheus-alertmanager")
    return shutil.which("prometheus-alertmanager") or (str(debian) if debian.exists() else None)


@dataclass
class Alertmanager:
    proc: ManagedProcess
    url: str

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Active alerts (resolved ones are not listed), those with `labels` only."""
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return [a for a in r.json() if labels.items() <= a["labels"].items()]

    def post(self, *alerts: dict[str, Any]) -> None:
        """Post alerts as Prometheus does."""
        requests.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=5).raise_for_status()

    def metric(self, name: str, **labels: str) -> float:
        """A sample of Alertmanager's own /metrics (0 when absent)."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}} ") or (not want and line.startswith(f"{name} ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        self.proc.stop()


def start_alertmanager(workdir: Path, config: dict[str, Any], port: int | None = None) -> Alertmanager:
    """Start Alertmanager with `config` (alertmanager.yml as a dict); returns once it answers."""
    binary = alertmanager_binary()
    if binary is None:
        raise StartupError("prometheus-alertmanager is not installed (scripts/setup.sh --dev)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = port or free_port()
    proc = ManagedProcess(
        "alertmanager",
        [
            binary,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={workdir / 'data'}",
            "--log.level=warn",
        ],
        workdir / "alertmanager.log",
    )
    am = Alertmanager(proc, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if not proc.alive():
            raise StartupError(f"alertmanager exited:\n{proc.tail()}")
        return requests.get(f"{am.url}/-/ready", timeout=1).ok

    try:
        wait_until(ready, 20, "Alertmanager to answer")
    except (TimeoutError, StartupError):
        proc.stop()
        raise
    return am
