"""A local HTTP server on port 0 that records every request and answers from a script.

Stands in for third-party HTTP peers (a webhook receiver, a misbehaving Prometheus) so tests can
count requests, read what was sent, and make the peer fail, refuse or hang on purpose.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass(frozen=True)
class Reply:
    """What to answer; `hang` holds the answer back that many seconds (cut short when the server stops)."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    hang: float = 0.0

    @classmethod
    def json(cls, status: int, doc: Any) -> Reply:
        return cls(status=status, body=json.dumps(doc).encode())


Responder = Callable[[Recorded], Reply]


def scripted(*replies: Reply) -> Responder:
    """Answer with `replies` in order, then keep repeating the last one."""
    lock = threading.Lock()
    remaining = list(replies)

    def respond(_: Recorded) -> Reply:
        with lock:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return respond


@dataclass
class RecordingServer:
    responder: Responder = field(default_factory=lambda: scripted(Reply()))
    _requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> RecordingServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="recording-http",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Block until at least `count` requests arrived (or fail, saying how many did)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.requests
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests within {timeout:g}s, got {len(self.requests)}")

    def _record(self, req: Recorded) -> Reply:
        with self._lock:
            self._requests.append(req)
        return self.responder(req)


def _handler(owner: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = owner._record(
                Recorded(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
            )
            if reply.hang and owner._release.wait(reply.hang):
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up waiting; nothing left to tell it

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def serve(replies: Sequence[Reply] | Responder) -> RecordingServer:
    """Start a server answering with a fixed script of replies or a responder function."""
    responder = scripted(*replies) if isinstance(replies, Sequence) else replies
    return RecordingServer(responder).start()
