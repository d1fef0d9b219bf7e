"""Fixtures for the integration suites: recording HTTP peers that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.support.recording_http import RecordingServer, Reply, Responder, serve

StartPeer = Callable[[Sequence[Reply] | Responder], RecordingServer]


@pytest.fixture
def http_peer() -> Iterator[StartPeer]:
    """Start local recording HTTP servers (port 0) for one test: `http_peer([Reply(503), Reply(200)])`."""
    started: list[RecordingServer] = []

    def start(replies: Sequence[Reply] | Responder) -> RecordingServer:
        server = serve(replies)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
