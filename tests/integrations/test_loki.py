"""integrations.logs.loki against a local fake Loki (tests/support/fake_loki.py) on port 0.

The property the agent depends on: across polls, pages, read limits and restarts, every entry is read
exactly once, in time order, even when many entries share the nanosecond a page or a read ends on.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from demo.processes import free_port
from integrations.errors import QueryRejected, SourceUnavailable
from integrations.logs.checkpoints import load_json, save_json
from integrations.logs.loki import LokiSource
from integrations.logs.records import LogRecord
from tests.conftest import StartPeer
from tests.support.fake_loki import FakeLoki
from tests.support.logsources import drain
from tests.support.recording_http import RecordingServer, Reply

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
NS = 1_000_000_000
QUERY = '{job="app"}'
WEB = {"job": "app", "stream": "web"}
DB = {"job": "app", "stream": "db"}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loki(http_peer: StartPeer) -> tuple[FakeLoki, RecordingServer]:
    fake = FakeLoki()
    return fake, http_peer(fake)


MakeSource = Callable[..., LokiSource]


@pytest.fixture
def make_source(loki: tuple[FakeLoki, RecordingServer]) -> Iterator[MakeSource]:
    """Sources on the fake Loki with an injected clock (`clock.now`) and recorded backoff delays."""
    made: list[LokiSource] = []

    def make(**kw: Any) -> LokiSource:
        kw.setdefault("url", loki[1].url)
        kw.setdefault("query", QUERY)
        kw.setdefault("clock", Clock())
        kw.setdefault("sleep", lambda _: None)
        source = LokiSource(kw.pop("name", "loki-app"), **kw)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def at(seconds: float, ns: int = 0) -> int:
    return int(seconds) * NS + ns


def seen(records: list[LogRecord]) -> list[tuple[float | None, str, str]]:
    return [(r.ts, r.labels["stream"], r.line) for r in records]


def sent(server: RecordingServer) -> list[dict[str, str]]:
    return [dict(parse_qsl(urlsplit(r.path).query)) for r in server.requests]


# ------------------------------------------------------------------ positions and polling


def test_first_start_begins_now_and_does_not_replay_history(make_source: MakeSource, loki: Any) -> None:
    fake, _ = loki
    fake.push(WEB, [(at(T0 - 60), "old"), (at(T0 - 1), "just before the start")])
    clock = Clock(T0)
    source = make_source(clock=clock)

    assert source.read().records == []
    fake.push(WEB, [(at(T0 + 1), "new")])
    clock.now = T0 + 2

    assert [r.line for r in source.read().records] == ["new"]


def test_records_carry_event_time_labels_and_level(make_source: MakeSource, loki: Any) -> None:
    fake, _ = loki
    fake.push({"job": "app", "stream": "web", "level": "error"}, [(at(T0 + 1, 250), "boom")])
    fake.push({"job": "app", "stream": "db", "detected_level": "warn"}, [(at(T0 + 2), "slow")])
    fake.push({"job": "app", "stream": "cron", "env": "stream-wins"}, [(at(T0 + 3), "tick")])
    clock = Clock(T0)
    source = make_source(name="loki-app", clock=clock, labels={"service": "shop", "env": "config"})
    clock.now = T0 + 10

    boom, slow, tick = source.read().records

    assert boom == LogRecord(
        "loki-app",
        "boom",
        at(T0 + 1, 250) / NS,
        {"service": "shop", "env": "config", "job": "app", "stream": "web", "level": "error"},
        "error",
    )
    assert slow.level == "warn" and slow.ts == T0 + 2
    assert tick.level is None and tick.labels["env"] == "stream-wins"


def test_polls_read_every_entry_once_across_ties_pages_and_read_limits(
    make_source: MakeSource, loki: Any
) -> None:
    fake, server = loki
    rng = random.Random(7)
    clock = Clock(T0)
    source = make_source(clock=clock, limit=5)
    pushed: list[tuple[int, str, str]] = []
    got: list[LogRecord] = []

    for poll in range(40):
        for offset in (0, 5, 999):  # up to four entries (under `limit`) on each of these nanoseconds
            ts = at(T0 + poll, offset)
            for i in range(rng.randint(0, 4)):
                labels = rng.choice([WEB, DB])
                line = f"poll {poll} +{offset}ns line {i}"
                fake.push(labels, [(ts, line)])
                pushed.append((ts, labels["stream"], line))
        clock.now = T0 + poll + 0.5
        batch = source.read(limit=rng.randint(1, 12))
        if rng.random() < 0.3:
            continue  # crashed before processing: nothing committed, the same lines come back
        got += batch.records
        source.commit(batch)
    clock.now = T0 + 100
    got += drain(source, limit=7)

    assert len(got) == len(pushed) == len(set(seen(got))), "an entry was read twice or lost"
    assert sorted(seen(got)) == sorted((ts / NS, stream, line) for ts, stream, line in pushed)
    stamps = [r.ts or 0.0 for r in got]
    assert stamps == sorted(stamps), "entries came out of time order"
    limits = [int(q["limit"]) for q in sent(server)]
    assert max(limits) == 5, "the source's page limit was never reached"
    shared = {ts for ts, _, _ in pushed if sum(p[0] == ts for p in pushed) > 1}
    resumed_inside = [q for q in sent(server) if int(q["start"]) in shared]
    assert len(resumed_inside) > 10, "too few pages or reads ended inside a same-nanosecond group"


@pytest.mark.parametrize("read_limit", [1, 2, 3, 100])
def test_a_same_nanosecond_group_split_by_the_page_and_the_read_limit(
    make_source: MakeSource, loki: Any, read_limit: int
) -> None:
    fake, server = loki
    tie = at(T0 + 1, 42)
    fake.push(WEB, [(at(T0 + 1, 1), "b1"), (at(T0 + 1, 2), "b2"), (tie, "w1"), (tie, "w2")])
    fake.push(DB, [(tie, "d1"), (at(T0 + 2), "after")])
    clock = Clock(T0)
    source = make_source(clock=clock, limit=4)  # the first page ends inside the group of three
    clock.now = T0 + 5

    lines = [r.line for r in drain(source, read_limit)]

    assert lines[:2] == ["b1", "b2"] and lines[-1] == "after"
    assert sorted(lines[2:-1]) == ["d1", "w1", "w2"]
    assert str(tie) in {q["start"] for q in sent(server)}, "pages resume on the shared nanosecond"


def test_a_read_pages_forward_until_the_window_is_drained(make_source: MakeSource, loki: Any) -> None:
    fake, server = loki
    fake.push(WEB, [(at(T0 + 1, i), f"line {i}") for i in range(12)])
    clock = Clock(T0)
    source = make_source(clock=clock, limit=5, delay_s=1.0)
    clock.now = T0 + 10

    batch = source.read(limit=100)

    assert [r.line for r in batch.records] == [f"line {i}" for i in range(12)]
    queries = sent(server)
    assert [q["limit"] for q in queries] == ["5", "5", "5"]
    assert all(q["direction"] == "forward" and q["query"] == QUERY for q in queries)
    assert queries[0]["start"] == str(at(T0 - 1)), "first start at now - delay"
    assert queries[1]["start"] == str(at(T0 + 1, 4)), "the next page starts on the last entry's nanosecond"
    assert all(q["end"] == str(at(T0 + 9) + 1) for q in queries), "(start, now - delay] inclusive"
    assert batch.checkpoint == {"ts_ns": str(at(T0 + 9) + 1), "seen": []}


def test_delay_holds_back_entries_younger_than_delay(make_source: MakeSource, loki: Any) -> None:
    fake, _ = loki
    clock = Clock(T0)
    source = make_source(clock=clock, delay_s=5.0)
    fake.push(WEB, [(at(T0 + 1), "late arrival window")])

    clock.now = T0 + 5.5
    assert source.read().records == []
    clock.now = T0 + 6.0
    assert [r.line for r in source.read().records] == ["late arrival window"]


def test_read_without_commit_returns_the_same_entries(make_source: MakeSource, loki: Any) -> None:
    fake, _ = loki
    clock = Clock(T0)
    source = make_source(clock=clock)
    fake.push(WEB, [(at(T0 + 1), "a"), (at(T0 + 2), "b")])
    clock.now = T0 + 3

    first = source.read()
    again = source.read()
    source.commit(again)

    assert [r.line for r in first.records] == [r.line for r in again.records] == ["a", "b"]
    assert source.read().records == []
    assert source.checkpoint() == again.checkpoint


def test_checkpoint_survives_json_and_restart_resumes_exactly(
    make_source: MakeSource, loki: Any, tmp_path: Path
) -> None:
    fake, _ = loki
    tie = at(T0 + 1, 7)
    fake.push(WEB, [(tie, "w1"), (tie, "w2")])
    fake.push(DB, [(tie, "d1")])
    clock = Clock(T0)
    source = make_source(clock=clock, limit=2)
    clock.now = T0 + 2
    batch = source.read(limit=2)  # stops inside the nanosecond group
    source.commit(batch)
    save_json(tmp_path / "loki.json", source.checkpoint())
    source.close()

    fake.push(WEB, [(at(T0 + 3), "after restart")])
    clock.now = T0 + 4
    restarted = make_source(clock=clock, checkpoint=load_json(tmp_path / "loki.json"))
    rest = restarted.read()

    assert sorted(r.line for r in batch.records + rest.records) == ["after restart", "d1", "w1", "w2"]
    assert rest.records[-1].line == "after restart"


def test_a_malformed_checkpoint_is_refused(make_source: MakeSource) -> None:
    with pytest.raises(ValueError, match="not a Loki checkpoint"):
        make_source(checkpoint={"offset": 12})


def test_more_entries_on_one_nanosecond_than_limit_are_skipped_with_a_warning(
    make_source: MakeSource, loki: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Loki's API cannot page inside one nanosecond: the rest of such a group is skipped, loudly."""
    fake, _ = loki
    tie = at(T0 + 1)
    fake.push(WEB, [(tie, "a"), (tie, "b"), (tie, "c"), (at(T0 + 2), "next")])
    clock = Clock(T0)
    source = make_source(clock=clock, limit=2)
    clock.now = T0 + 3

    lines = [r.line for r in source.read().records]

    assert lines == ["a", "b", "next"]
    assert any("at least 2 entries share timestamp" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ failures


def test_503_then_success_retries_with_backoff(
    make_source: MakeSource, loki: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake, server = loki
    fake.fail_next(503, 503)
    clock = Clock(T0)
    delays: list[float] = []
    source = make_source(clock=clock, retries=3, backoff=0.5, sleep=delays.append)
    fake.push(WEB, [(at(T0 + 1), "made it")])
    clock.now = T0 + 2
    caplog.set_level(logging.WARNING, logger="integrations.logs.loki")

    assert [r.line for r in source.read().records] == ["made it"]

    assert len(server.requests) == 3
    assert delays == [0.5, 1.0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "integrations.logs.loki"]
    assert len(warnings) == 2
    assert "attempt 1/4" in warnings[0] and "HTTP 503" in warnings[0]


def test_bad_logql_is_rejected_at_once(make_source: MakeSource, loki: Any) -> None:
    _, server = loki
    delays: list[float] = []
    clock = Clock(T0)
    source = make_source(clock=clock, query='{job="app"', sleep=delays.append)
    clock.now = T0 + 1

    with pytest.raises(QueryRejected, match=r"Loki at .* refused the request \(HTTP 400\): parse error"):
        source.read()

    assert len(server.requests) == 1
    assert delays == []


def test_connection_refused_is_source_unavailable(make_source: MakeSource) -> None:
    delays: list[float] = []
    clock = Clock(T0)
    source = make_source(url=f"http://127.0.0.1:{free_port()}", clock=clock, retries=2, sleep=delays.append)
    clock.now = T0 + 1

    with pytest.raises(SourceUnavailable, match="after 3 attempts: ConnectionError: connection refused"):
        source.read()
    assert delays == [0.5, 1.0]


def test_a_failed_read_leaves_the_position(make_source: MakeSource, loki: Any) -> None:
    fake, _ = loki
    clock = Clock(T0)
    source = make_source(clock=clock, retries=0)
    fake.push(WEB, [(at(T0 + 1), "kept")])
    clock.now = T0 + 2
    before = source.checkpoint()
    fake.fail_next(502)

    with pytest.raises(SourceUnavailable):
        source.read()

    assert source.checkpoint() == before
    assert [r.line for r in source.read().records] == ["kept"]


def test_a_metric_query_is_rejected(make_source: MakeSource, http_peer: StartPeer) -> None:
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    peer = http_peer([Reply.json(200, matrix)])
    clock = Clock(T0)
    source = make_source(url=peer.url, query='rate({job="app"}[1m])', clock=clock)
    clock.now = T0 + 1

    with pytest.raises(QueryRejected, match="not log lines"):
        source.read()


def test_headers_are_sent_with_every_query(make_source: MakeSource, loki: Any) -> None:
    _, server = loki
    clock = Clock(T0)
    source = make_source(clock=clock, headers={"X-Scope-OrgID": "tenant-a"})
    clock.now = T0 + 1

    source.read()

    assert server.requests[0].headers["X-Scope-OrgID"] == "tenant-a"
