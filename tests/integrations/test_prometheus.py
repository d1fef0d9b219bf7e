"""integrations.prometheus against a real Prometheus (and a scripted fake one for the failure modes).

The cursor tests poll the way agent.shell.runtime.Agent.poll_query does, with real time passing, and check the
property the agent depends on: every grid timestamp is fetched exactly once, even across a failed poll.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from demo.processes import free_port, wait_until
from integrations.errors import QueryRejected, SourceUnavailable
from integrations.http import gc_paused
from integrations.prometheus import MAX_POINTS_PER_SERIES, PrometheusClient, RangeCursor, Series
from tests.conftest import PromStack, StartPeer
from tests.support.prom_history import wait_for_history
from tests.support.recording_http import Reply

pytestmark = pytest.mark.integration

UP = 'up{job="demo"}'
REQUESTS_BY_CODE = 'sum by (code) (demo_requests_total{job="demo"})'
HISTORY = 5
STEP = 1.0


class CountingSession(requests.Session):
    """A real session that remembers every URL it was asked to fetch."""

    opened: ClassVar[list[CountingSession]] = []

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        CountingSession.opened.append(self)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append(str(url))
        return super().request(method, url, *args, **kwargs)


def make_client(
    url: str, *, retries: int = 0, backoff: float = 0.5, timeout: float = 5.0
) -> tuple[PrometheusClient, CountingSession, list[float]]:
    """A client with a counting session and a `sleep` that records the backoff delays instead of waiting."""
    session = CountingSession()
    delays: list[float] = []
    client = PrometheusClient(
        url, timeout=timeout, retries=retries, backoff=backoff, session=session, sleep=delays.append
    )
    return client, session, delays


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    """Close every test's HTTP sessions so no keep-alive socket outlives it."""
    yield
    while CountingSession.opened:
        CountingSession.opened.pop().close()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def grid(start: float, end: float, step: float = STEP) -> list[float]:
    return [round(start + i * step, 3) for i in range(round((end - start) / step) + 1)]


def only_series(batch: list[Series]) -> Series:
    assert len(batch) == 1, f"expected one series, got {[dict(s.labels) for s in batch]}"
    return batch[0]


@pytest.fixture(scope="module")
def stack(prometheus_stack: PromStack) -> PromStack:
    """The shared stack, once Prometheus holds a few seconds of `up` on the 1 s grid."""

    wait_for_history(prometheus_stack.url, (UP, REQUESTS_BY_CODE), HISTORY)
    return prometheus_stack


# ------------------------------------------------------------------ queries against the real Prometheus


def test_query_returns_labelled_series_with_float_points(stack: PromStack) -> None:
    client, _, _ = make_client(stack.url)
    before = time.time()

    series = only_series(client.query(UP))

    assert series.labels["job"] == "demo"
    assert series.labels["instance"] == stack.exporter.address
    assert series.labels["__name__"] == "up"
    [(ts, value)] = series.points
    assert isinstance(ts, float) and isinstance(value, float)
    assert value == 1.0
    assert before - 1 <= ts <= time.time() + 1


def test_query_at_a_given_time_is_evaluated_there(stack: PromStack) -> None:
    client, _, _ = make_client(stack.url)
    at = math.floor(time.time()) - 2.0

    [(ts, value)] = only_series(client.query(UP, at=at)).points

    assert ts == at
    assert value == 1.0


def test_query_range_returns_every_step_of_every_series(stack: PromStack) -> None:
    client, _, _ = make_client(stack.url)
    end = math.floor(time.time()) - 1.0
    start = end - 3.0

    batch = client.query_range(REQUESTS_BY_CODE, start, end, STEP).series()

    assert sorted(s.labels["code"] for s in batch) == ["200", "500"]
    for s in batch:
        assert [t for t, _ in s.points] == grid(start, end)
        assert all(isinstance(v, float) and v >= 0 for _, v in s.points)
    ok = next(s for s in batch if s.labels["code"] == "200")
    values = [v for _, v in ok.points]
    assert values == sorted(values) and values[-1] > 0  # a counter that the exporter keeps incrementing


@pytest.mark.parametrize("kind", ["query", "query_range"])
def test_bad_promql_is_rejected_at_once_with_prometheus_error(stack: PromStack, kind: str) -> None:
    client, session, delays = make_client(stack.url, retries=3)
    end = math.floor(time.time())

    with pytest.raises(QueryRejected, match=r"HTTP 400.*parse error.*unclosed left parenthesis"):
        if kind == "query":
            client.query("sum(up")
        else:
            client.query_range("sum(up", end - 5, end, STEP)

    assert len(session.calls) == 1, "a rejected query must not be retried"
    assert delays == []


# ------------------------------------------------------------------ polling with a cursor, in real time


def poll(cursor: RangeCursor, client: PrometheusClient, promql: str) -> tuple[float, float, list[Series]]:
    """One poll as Agent.poll_query does it: window, fetch, advance only on success."""
    window = cursor.window(time.time())
    assert window is not None, "poll() called before a grid point was due"
    start, end, skipped = window
    assert skipped == 0
    batch = client.query_range(promql, start, end, cursor.step).series()
    cursor.advance(end)
    return start, end, batch


def wait_for_window(cursor: RangeCursor, points: int = 1, timeout: float = 10.0) -> None:
    """Wait (with a deadline) until the cursor's next window holds at least `points` grid points."""

    def due() -> bool:
        w = cursor.window(time.time())
        return w is not None and (w[1] - w[0]) / cursor.step + 1 >= points

    wait_until(due, timeout, f"a window of {points} grid point(s)", interval=0.05)


def test_consecutive_polls_are_contiguous_and_never_repeat(stack: PromStack) -> None:
    client, session, _ = make_client(stack.url)
    cursor = RangeCursor(step=STEP, early=0.0)  # polled as soon as due, never early
    fetched: list[float] = []
    windows: list[tuple[float, float]] = []

    for points in (1, 1, 3, 1, 2):
        wait_for_window(cursor, points)
        calls_before = len(session.calls)
        start, end, batch = poll(cursor, client, UP)
        assert len(session.calls) - calls_before == 1, "one HTTP request per poll"
        stamps = [t for t, _ in only_series(batch).points]
        assert stamps == grid(start, end), f"window [{start}, {end}] came back incomplete: {stamps}"
        assert not set(stamps) & set(fetched), "a poll fetched a sample an earlier poll already had"
        fetched += stamps
        windows.append((start, end))

    assert fetched == grid(windows[0][0], windows[-1][1]), "gap or disorder between polls"
    assert any(end - start >= 2 * STEP for start, end in windows), "no multi-point window was exercised"
    assert all(round((t - fetched[0]) / STEP, 6).is_integer() for t in fetched), (
        "one grid, from the first poll"
    )


def test_failed_poll_leaves_no_gap(stack: PromStack) -> None:
    client, _, _ = make_client(stack.url)
    cursor = RangeCursor(step=STEP)
    _, first_end, _ = poll(cursor, client, UP)
    resume_at = cursor.next_ts
    assert resume_at == first_end + STEP

    wait_for_window(cursor)
    client.url = dead_url()
    with pytest.raises(SourceUnavailable):
        poll(cursor, client, UP)
    assert cursor.next_ts == resume_at, "a failed poll must not move the cursor"

    client.url = stack.url
    wait_for_window(cursor, points=3)
    start, end, batch = poll(cursor, client, UP)

    assert start == resume_at, "the next successful poll starts where the last good one stopped"
    assert [t for t, _ in only_series(batch).points] == grid(start, end)


# ------------------------------------------------------------------ cursor arithmetic


def aligned(step: float, at: float, **kw: float) -> RangeCursor:
    """A cursor whose first poll was at `at`."""
    cursor = RangeCursor(step=step, **kw)
    assert cursor.window(now=at) is not None
    cursor.advance(at - kw.get("delay", 0.0))
    return cursor


def test_first_window_is_now_not_a_multiple_of_step() -> None:
    assert RangeCursor(step=15.0).window(now=1000.0) == (1000.0, 1000.0, 0.0)
    assert RangeCursor(step=15.0).window(now=1000.1234) == (1000.123, 1000.123, 0.0)


def test_grid_follows_the_first_poll() -> None:
    cursor = aligned(15.0, 1000.0)

    assert cursor.window(now=1004.0) is None
    assert cursor.window(now=1014.7) is None
    assert cursor.window(now=1015.0) == (1015.0, 1015.0, 0.0)
    assert cursor.window(now=1015.3) == (1015.0, 1015.0, 0.0)
    assert cursor.window(now=1059.0) == (1015.0, 1045.0, 0.0)


def test_a_slightly_early_poll_is_judged_at_its_own_time_and_keeps_the_grid() -> None:
    cursor = aligned(15.0, 1000.0)

    assert cursor.window(now=1014.8) == (1014.8, 1014.8, 0.0)
    cursor.advance(1014.8)
    assert cursor.next_ts == 1030.0
    assert cursor.window(now=1030.01) == (1030.0, 1030.0, 0.0)


def test_a_catch_up_poll_a_little_ahead_of_the_grid_takes_the_point_due() -> None:
    """The grid follows the first poll; when that one was late, later on-time polls are a little ahead
    of it. One that also catches up on a missed poll must still take the point due at its own time, or
    the newest scrape waits a whole poll (seen in CI as a scrape judged one poll late)."""
    cursor = aligned(1.0, 1000.05)  # a first poll 50 ms late: the grid is at .05
    assert cursor.window(now=1001.0) == (1001.0, 1001.0, 0.0)  # early: its own time, the grid kept
    cursor.advance(1001.0)
    # the next poll is missed; the one after comes on time, 50 ms before the grid's point 1003.05
    assert cursor.window(now=1003.0) == (1002.05, 1003.05, 0.0)
    cursor.advance(1003.05)
    assert cursor.window(now=1004.0) == (1004.0, 1004.0, 0.0)
    assert cursor.window(now=1003.5) is None  # half a step ahead is not jitter: nothing due yet


def test_delay_holds_back_the_newest_points() -> None:
    cursor = aligned(15.0, 1030.0, delay=30.0)

    assert cursor.window(now=1044.7) is None
    assert cursor.window(now=1045.0) == (1015.0, 1015.0, 0.0)


def test_window_stays_put_until_advanced() -> None:
    cursor = aligned(10.0, 100.0)

    assert cursor.window(now=125.0) == (110.0, 120.0, 0.0)
    assert cursor.window(now=145.0) == (110.0, 140.0, 0.0)  # e.g. the poll in between failed
    cursor.advance(140.0)
    assert cursor.window(now=145.0) is None


def test_resumed_cursor_realigns_to_the_new_polls_without_a_gap() -> None:
    cursor = RangeCursor(step=15.0)
    cursor.advance(990.0)  # the end a previous agent recorded

    assert cursor.window(now=990.0) is None
    start, end, skipped = cursor.window(now=1027.3) or pytest.fail("expected a window")
    assert (start, end, skipped) == (997.3, 1027.3, 0.0)
    assert 990.0 < start <= 990.0 + 15.0, "the first point follows the saved end by at most a step"
    cursor.advance(end)
    assert cursor.window(now=1042.3) == (1042.3, 1042.3, 0.0)


def test_backfill_beyond_max_backfill_is_skipped_and_reported() -> None:
    cursor = aligned(15.0, 1005.0, max_backfill=60.0)

    start, end, skipped = cursor.window(now=2000.0) or pytest.fail("expected a window")

    assert end == 1995.0
    assert start == end - 60.0
    assert skipped == start - 1020.0 == 915.0
    assert (start - 1005.0) % 15.0 == 0, "the skip lands on the step grid"


def test_backfill_is_also_capped_by_prometheus_point_limit() -> None:
    cursor = aligned(1.0, 0.0, max_backfill=10 * 24 * 3600.0)

    start, end, skipped = cursor.window(now=50_000.0) or pytest.fail("expected a window")

    assert (end - start) / cursor.step <= MAX_POINTS_PER_SERIES
    assert skipped == start - 1.0 > 0


# ------------------------------------------------------------------ retries, against a scripted fake


VECTOR_UP = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "fake"}, "value": [1700000000.0, "1"]}],
    },
}


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "integrations.prometheus" and r.levelno == logging.WARNING
    ]


def test_503_twice_then_success_backs_off_exponentially(
    http_peer: StartPeer, caplog: pytest.LogCaptureFixture
) -> None:
    peer = http_peer([Reply(503), Reply(503), Reply.json(200, VECTOR_UP)])
    client, _, delays = make_client(peer.url, retries=3, backoff=0.5)
    caplog.set_level(logging.WARNING, logger="integrations.prometheus")

    [series] = client.query("up")

    assert series.labels == {"__name__": "up", "job": "fake"}
    assert series.points == [(1700000000.0, 1.0)]
    sent = peer.requests
    assert len(sent) == 3
    assert all(r.path == "/api/v1/query" and r.form() == {"query": "up"} for r in sent)
    assert delays == [0.5, 1.0]
    logged = retry_warnings(caplog)
    assert len(logged) == 2
    assert "attempt 1/4" in logged[0] and "HTTP 503" in logged[0]
    assert "attempt 2/4" in logged[1] and "retrying in 1.0s" in logged[1]


def test_persistent_500_gives_up_after_all_retries(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(500, b"oops")])
    client, _, delays = make_client(peer.url, retries=2, backoff=0.25)

    with pytest.raises(SourceUnavailable, match="after 3 attempts: HTTP 500"):
        client.query_range("up", 0, 10, 5)

    assert len(peer.requests) == 3
    assert delays == [0.25, 0.5]


def test_422_is_rejected_without_retry(http_peer: StartPeer) -> None:
    body = {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"}
    peer = http_peer([Reply.json(422, body)])
    client, _, delays = make_client(peer.url, retries=3)

    with pytest.raises(QueryRejected, match=r"HTTP 422.*many-to-many matching not allowed"):
        client.query("a / b")

    assert len(peer.requests) == 1
    assert delays == []


def test_connection_refused_is_source_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    url = dead_url()
    client, session, delays = make_client(url, retries=2, backoff=0.1)
    caplog.set_level(logging.WARNING, logger="integrations.prometheus")

    with pytest.raises(SourceUnavailable, match="after 3 attempts: ConnectionError: connection refused"):
        client.query("up")

    assert len(session.calls) == 3
    assert delays == [0.1, 0.2]
    assert len(retry_warnings(caplog)) == 2


def test_server_slower_than_timeout_is_source_unavailable(http_peer: StartPeer) -> None:
    peer = http_peer([Reply(200, hang=30.0)])
    client, _, delays = make_client(peer.url, retries=1, backoff=0.1, timeout=0.3)
    t0 = time.monotonic()

    with pytest.raises(SourceUnavailable, match=r"after 2 attempts: .*Timeout"):
        client.query("up")

    assert time.monotonic() - t0 < 5.0, "the timeout did not bound the wait"
    assert len(peer.requests) == 2
    assert delays == [0.1]


def matrix_body(result: list[Any]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@pytest.mark.parametrize(
    "values",
    [[[1.0, "1", "extra"]], [1.0], [[1.0, "not a number"]], "12"],
    ids=["three-item point", "bare number", "non-numeric value", "string"],
)
def test_malformed_matrix_is_source_unavailable(http_peer: StartPeer, values: Any) -> None:
    peer = http_peer([Reply.json(200, matrix_body([{"metric": {"job": "a"}, "values": values}]))])
    client, _, _ = make_client(peer.url)

    with pytest.raises(SourceUnavailable, match="malformed matrix"):
        client.query_range("up", 0, 10, 5)


def test_range_query_runs_no_garbage_collection_while_it_decodes(http_peer: StartPeer) -> None:
    """Decoding builds a container per series and per point; collections triggered by those allocations
    would walk them all again and again (~30 times here). The answer holds no cycles: nothing is left
    to collect. At most one collection runs as the pause ends, over the label sets the matrix keeps."""
    series = [
        {"metric": {"job": f"j{i}", "code": "200"}, "values": [[1.0, "1"], [6.0, "2"]]} for i in range(5000)
    ]
    peer = http_peer([Reply.json(200, matrix_body(series))])
    client, _, _ = make_client(peer.url)
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        got = client.query_range("up", 0, 10, 5)
    finally:
        gc.callbacks.remove(count)

    assert len(got) == 5000 and got.values.tolist()[:2] == [1.0, 2.0]
    assert len(collections) <= 1, collections
    assert gc.isenabled()


def test_gc_pauses_nest_and_restore_the_setting() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "a pause must not enable collection someone else turned off"
    finally:
        gc.enable()
