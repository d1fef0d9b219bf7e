"""Template mining: one configuration for every format, stable ids, and the header cut consistently."""

from __future__ import annotations

import json

import pytest

from detectors.logs.headers import BRACKET, COLON, PLAIN, HeaderStyle, bracket_cut, colon_cut
from detectors.logs.miner import LogMiner
from detectors.logs.tokens import MASK, level_of, normalize

SYSLOG = [
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; user=root rhost=10.0.0.{i}",
    "Jun 14 15:16:02 combo sshd(pam_unix)[19940]: session opened for user {u}{i} by (uid=0)",
]
BRACKETED = [
    "[Sun Dec 04 04:47:44 2005] [notice] jk2_init() Found child {i} in scoreboard slot 7",
    "[Sun Dec 04 04:47:45 2005] [error] mod_jk child workerEnv in error state {i}",
]
PLAIN_LINES = [
    "2016-09-28 04:30:30, Info CBS Loaded Servicing Stack v6.1.{i} with Core: C:\\Windows\\x{i}",
    "2016-09-28 04:30:31, Info CSI 0000000{i} Warning: Unrecognized packageExtended attribute.",
]


def lines(patterns: list[str], n: int) -> list[str]:
    users = ["alice", "bob", "carol"]
    return [p.format(i=i, u=users[i % 3]) for i in range(n) for p in patterns]


@pytest.mark.parametrize(
    ("patterns", "style"),
    [(SYSLOG, COLON), (BRACKETED, BRACKET), (PLAIN_LINES, PLAIN)],
    ids=["colon", "bracket", "plain"],
)
def test_each_format_is_cut_consistently_and_grouped_by_message(patterns: list[str], style: str) -> None:
    miner = LogMiner(learn_lines=20)
    matches = miner.mine_all(lines(patterns, 30))
    assert miner.header.style == style
    ids = [m.template_id for m in matches]
    assert len(set(ids[0::2])) == 1 and len(set(ids[1::2])) == 1  # each message kind is one template
    assert ids[0] != ids[1]


def test_timestamps_levels_and_pids_never_split_templates() -> None:
    miner = LogMiner(learn_lines=4)
    out = miner.mine_all(
        [
            f"2024-0{m}-1{d} 1{d}:0{m}:00,{d}{m}1 {level} [pool-{d}] app.Worker: job {d}{m} done in {m}ms"
            for m in range(1, 8)
            for d in range(1, 8)
            for level in ("INFO", "WARN")
        ]
    )
    assert len({m.template_id for m in out}) == 1
    assert out[0].template == "job <*> done in <*>"
    assert {m.level for m in out} == {"info", "warning"}


def test_variables_are_masked() -> None:
    for token in [
        "1234",
        "0x7f3a",
        "10.0.0.1:8080",
        "/var/log/app.log",
        "C:\\Temp\\x",
        "app.exe",
        "Tue",
        "6f1c0b6e-1d2a-4c0e-9d7e-0a1b2c3d4e5f",
        "12ms",
        "()",
        "(18.4",
    ]:
        assert normalize(token) == MASK, token
    assert normalize("user=root") == f"user={MASK}"
    for token in ["failed", "Connection", "error:", "jk2_init()"[:0] or "init()"]:
        assert normalize(token) == token, token


def test_units_and_optional_sizes_do_not_change_the_template() -> None:
    miner = LogMiner(learn_lines=2)
    a, b = miner.mine_all(
        [
            "[10.30 16:49:07] chrome.exe - proxy.example.com:5070 close, 451 bytes sent, 18846 bytes (18.4 KB) received",
            "[10.30 16:49:08] chrome.exe - proxy.example.com:5070 close, 0 bytes sent, 0 bytes received",
        ]
    )
    assert a.template_id == b.template_id


def test_levels_are_read_from_the_header_only() -> None:
    assert level_of("[error]") == "error" and level_of("W") == "warning" and level_of("FATAL") == "critical"
    miner = LogMiner(learn_lines=1)
    (m,) = miner.mine_all(["2024-01-01 00:00:00 INFO app.Main: error count is 3"])
    assert m.level == "info"  # "error" in the message is not the line's level


def test_new_is_true_exactly_once_per_template() -> None:
    miner = LogMiner(learn_lines=2)
    out = miner.mine_all(lines(SYSLOG, 10))
    assert sum(m.new for m in out) == len({m.template_id for m in out}) == 2


def test_template_ids_survive_a_restart_through_json() -> None:
    first = LogMiner(learn_lines=10)
    before = first.mine_all(lines(SYSLOG, 10))
    state = json.loads(json.dumps(first.state()))
    second = LogMiner.from_state(state)
    after = [m for line in lines(SYSLOG, 3) for _, m in second.add(line)]
    assert second.header.style == first.header.style  # no relearning: lines are mined at once
    assert {m.template_id for m in after} == {m.template_id for m in before}
    assert not any(m.new for m in after)
    novel = second.add("Jun 14 15:17:00 combo kernel: disk sda failing")
    assert novel[0][1].new and novel[0][1].template_id not in {m.template_id for m in before}


def test_state_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported template state version"):
        LogMiner.from_state({"version": 99})


def test_garbage_and_empty_lines_are_mined_without_error() -> None:
    miner = LogMiner(learn_lines=3)
    out = miner.mine_all(["", "\x00\x01\ufffd\ufffd", "x" * 100_000, "   ", "ok"])
    assert len(out) == 5


def test_the_cache_gives_the_same_answer_as_drain() -> None:
    data = lines(SYSLOG + BRACKETED, 40)
    cached = [m.template_id for m in LogMiner(learn_lines=10).mine_all(data)]
    uncached = [m.template_id for m in LogMiner(learn_lines=10, cache_size=0).mine_all(data)]
    assert cached == uncached


def test_header_cuts() -> None:
    assert colon_cut(["Jul", "1", "09:00:55", "host-1", "kernel[0]:", "ARPT:", "wl0", "up"]) == 5
    assert colon_cut(["this", "line", "has", "no", "header:", "at", "all"]) is None
    assert (
        bracket_cut(
            [
                "2015-07-29",
                "17:41:44,747",
                "-",
                "INFO",
                "[Quorum/0:2181:Election@774]",
                "-",
                "Notification",
                "time",
                "out",
            ]
        )
        == 6
    )
    style = HeaderStyle()
    assert style.learn([["plain", "words"]] * 5) == PLAIN
    assert style.cut(["only", "message"]) == 0
