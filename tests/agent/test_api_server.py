"""Request limits through a real `aiops run` (uvicorn on 127.0.0.1): what the agent process reads of a
body it refuses, measured on the process itself (its peak RSS), with raw sockets so the client decides
exactly which bytes are sent and when."""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from demo.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
AIOPS = "import sys; from agent.cli.main import main; sys.argv[0] = 'aiops'; main()"
OPERATOR = "operator-token-0123456789abcdef"
MIB = 1024 * 1024
UPLOAD = 10 * MIB
CHUNK = b"[" * 65536  # nested JSON, the shape that cost the most memory when parsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    port: int

    def peak_rss(self) -> int:
        """VmHWM of the agent process, in bytes: the most it ever held, so a brief spike counts."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def head(self, extra: str = "", authorized: bool = False) -> socket.socket:
        """A connection that has sent the head of a POST of alerts, and no body yet."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        auth = f"Authorization: Bearer {OPERATOR}\r\n" if authorized else ""
        sock.sendall(
            f"POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{auth}{extra}\r\n".encode()
        )
        return sock


def status_of(sock: socket.socket, timeout: float) -> int:
    """The status code of the answer on `sock`, waiting at most `timeout` seconds for it."""
    sock.settimeout(timeout)
    head = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                break
            head += data
    assert head, "the agent closed the connection without an answer"
    return int(head.split()[1])


def stream(sock: socket.socket, total: int) -> int:
    """Send up to `total` bytes as chunks until the agent answers or stops taking them; bytes sent."""
    sent = 0
    sock.settimeout(2)
    while sent < total:
        if select.select([sock], [], [], 0)[0]:
            break  # the answer (or the close) is there
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(CHUNK)
    else:
        with contextlib.suppress(OSError):
            sock.sendall(b"0\r\n\r\n")
    return sent


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """One agent for the module: each test measures its own growth of the peak."""
    tmp_path = tmp_path_factory.mktemp("agent")
    port = free_port()
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'aiops.db'}"},
        "prometheus": {"url": f"http://127.0.0.1:{free_port()}"},
        "alerts": {"max_clock_skew": "1m"},
        "api": {
            "listen": f"127.0.0.1:{port}",
            "tokens": [{"name": "am", "role": "operator", "token": OPERATOR}],
        },
        "services_file": str(ROOT / "config" / "services.yaml"),
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", AIOPS, "run", "-c", str(tmp_path / "agent.yaml")],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: requests.get(url, timeout=1).ok, 30, "the agent's API")
        yield Agent(proc, port)
    finally:
        proc.terminate()
        proc.wait(15)


def test_an_unauthenticated_post_is_refused_before_its_body_is_sent(agent: Agent) -> None:
    sock = agent.head("Transfer-Encoding: chunked\r\n")
    try:
        assert status_of(sock, timeout=5) == 401
    finally:
        sock.close()


@pytest.mark.parametrize(("authorized", "expected"), [(False, 401), (True, 413)])
def test_a_10_mib_chunked_upload_does_not_grow_the_agent(
    agent: Agent, authorized: bool, expected: int
) -> None:
    before = agent.peak_rss()
    sock = agent.head("Transfer-Encoding: chunked\r\n", authorized=authorized)
    started = time.monotonic()
    try:
        stream(sock, UPLOAD)
        assert status_of(sock, timeout=10) == expected
    finally:
        sock.close()
    assert time.monotonic() - started < 5
    grown = agent.peak_rss() - before
    assert grown < 4 * MIB, f"the agent's peak RSS grew by {grown / MIB:.1f} MiB"


def test_a_declared_oversized_body_is_refused_before_it_is_sent(agent: Agent) -> None:
    sock = agent.head(f"Content-Length: {UPLOAD}\r\n", authorized=True)
    try:
        assert status_of(sock, timeout=5) == 413
    finally:
        sock.close()


@pytest.mark.parametrize(("ahead", "expected"), [(timedelta(minutes=3), 422), (timedelta(0), 200)])
def test_the_configured_clock_skew_applies(agent: Agent, ahead: timedelta, expected: int) -> None:
    starts = (datetime.now(UTC) + ahead).isoformat()
    r = requests.post(
        f"http://127.0.0.1:{agent.port}/api/v1/alerts",
        json={"alerts": [{"status": "firing", "labels": {"alertname": "A"}, "startsAt": starts}]},
        headers={"Authorization": f"Bearer {OPERATOR}"},
        timeout=10,
    )
    assert r.status_code == expected, r.text
