"""Starting and stopping the local processes the demo and the tests need (Prometheus, the demo service)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


class StartupError(RuntimeError):
    """A process did not come up; the message says which and shows the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns a truthy value or `timeout` seconds pass (then raise, naming `what`)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as e:
            last_error = e
        else:
            if result:
                return result
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")


class ManagedProcess:
    """A child process with its output in a log file; stop() sends SIGTERM, then SIGKILL after a grace."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or next(
        (p for p in ("/usr/bin/prometheus", "/usr/local/bin/prometheus") if Path(p).exists()), None
    )


def start_prometheus(
    workdir: Path,
    targets: dict[str, list[str]],
    scrape_interval: str = "1s",
    port: int | None = None,
    timeout: float = 60.0,
) -> tuple[ManagedProcess, str]:
    """Start a real Prometheus on loopback scraping `targets` ({job: [host:port]}); returns once it has
    stored a first `up` sample for every job, not merely when /-/ready answers."""
    binary = prometheus_binary()
    if binary is None:
        raise StartupError(
            "prometheus is not installed (Debian: apt-get install --no-install-recommends prometheus)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    jobs = "\n".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: [{', '.join(repr(t) for t in hosts)}]"
        for job, hosts in targets.items()
    )
    cfg = workdir / "prometheus.yml"
    cfg.write_text(
        f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
        f"scrape_configs:\n{jobs}\n"
    )
    proc = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={cfg}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ],
        workdir / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"

    def has_data() -> bool:
        if not proc.alive():
            raise StartupError(f"prometheus exited:\n{proc.tail()}")
        r = requests.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=2)
        found = {s["metric"].get("job") for s in r.json()["data"]["result"]}
        return set(targets) <= found

    try:
        wait_until(has_data, timeout, "Prometheus' first scraped samples", interval=0.2)
    except (TimeoutError, StartupError):
        proc.stop()
        raise
    return proc, url


def start_demo_service(
    workdir: Path, port: int | None = None, log: Path | None = None
) -> tuple[ManagedProcess, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = ManagedProcess(
        "demo-service",
        [
            sys.executable,
            str(ROOT / "demo" / "service.py"),
            "--port",
            str(port),
            *(["--log", str(log)] if log else []),
        ],
        workdir / "demo-service.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 15, "the demo service")
    except TimeoutError:
        proc.stop()
        raise StartupError(f"demo service did not start:\n{proc.tail()}") from None
    return proc, url
