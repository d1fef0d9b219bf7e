"""integrations.logs.journald against real journal files, read by the real journalctl.

The files are written by systemd-journal-remote (tests/support/journal.py), so cursors, field matches,
unit filters and binary fields behave exactly as on a host's own journal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integrations.errors import SourceUnavailable
from integrations.logs.checkpoints import load_json, save_json
from integrations.logs.journald import JournaldSource
from integrations.logs.records import LogBatch, LogRecord
from tests.conftest import require
from tests.support.journal import START_US, Journal, journal_remote_available
from tests.support.logsources import drain

pytestmark = pytest.mark.integration


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    require(JournaldSource.available(), "journalctl (Debian package systemd)")
    require(journal_remote_available(), "systemd-journal-remote (Debian package systemd-journal-remote)")
    return Journal(tmp_path / "test.journal")


MakeSource = Callable[..., JournaldSource]


@pytest.fixture
def make_source(journal: Journal) -> MakeSource:
    def make(**kw: Any) -> JournaldSource:
        if "directory" not in kw:
            kw.setdefault("file", str(journal.path))
        return JournaldSource(kw.pop("name", "journal-demo"), **kw)

    return make


def lines(batch: LogBatch | list[LogRecord]) -> list[str]:
    records = batch.records if isinstance(batch, LogBatch) else batch
    return [r.line for r in records]


def test_first_start_reads_only_entries_written_after_it(journal: Journal, make_source: MakeSource) -> None:
    journal.log("old 1", "old 2")
    source = make_source()

    assert source.read().records == []
    journal.log("new 1", "new 2")

    assert lines(source.read()) == ["new 1", "new 2"]


def test_first_start_on_an_empty_journal_reads_everything_that_comes(
    journal: Journal, make_source: MakeSource
) -> None:
    journal.log("other unit", unit="other.service")
    source = make_source(units=["demo.service"])

    assert source.read().records == []
    journal.log("first demo line")

    assert lines(source.read()) == ["first demo line"]


def test_incremental_reads_by_cursor_have_no_gap_or_duplicate(
    journal: Journal, make_source: MakeSource
) -> None:
    source = make_source(checkpoint={"cursor": ""})  # from the start of the journal
    expected: list[str] = []
    got: list[LogRecord] = []

    for round_ in range(4):
        batch_lines = [f"round {round_} line {i}" for i in range(round_ * 3 + 1)]
        journal.log(*batch_lines)
        expected += batch_lines
        got += drain(source, limit=4)

    assert lines(got) == expected
    assert [r.ts for r in got] == [(START_US + (i + 1) * 1_000_000) / 1e6 for i in range(len(expected))]


def test_a_read_is_bounded_and_keeps_the_cursor_of_its_last_entry(
    journal: Journal, make_source: MakeSource
) -> None:
    source = make_source(checkpoint={"cursor": ""})
    journal.log(*(f"line {i}" for i in range(50)))

    first = source.read(limit=5)
    source.commit(first)
    second = source.read(limit=5)

    assert lines(first) == [f"line {i}" for i in range(5)]
    assert lines(second) == [f"line {i}" for i in range(5, 10)]
    assert first.checkpoint["cursor"] != second.checkpoint["cursor"]


def test_read_without_commit_returns_the_same_entries(journal: Journal, make_source: MakeSource) -> None:
    journal.log("before start")
    source = make_source()
    source.read()  # positions at the tail
    journal.log("a", "b", "c")

    first = source.read(limit=2)
    again = source.read(limit=2)
    source.commit(again)

    assert lines(first) == lines(again) == ["a", "b"]
    assert lines(source.read()) == ["c"]


def test_units_and_matches_select_entries(journal: Journal, make_source: MakeSource) -> None:
    by_unit = make_source(units=["demo.service", "db.service"], checkpoint={"cursor": ""})
    by_match = make_source(matches=["SYSLOG_IDENTIFIER=worker"], checkpoint={"cursor": ""})
    both = make_source(
        units=["demo.service"], matches=["SYSLOG_IDENTIFIER=worker"], checkpoint={"cursor": ""}
    )
    journal.write(
        journal.entry("demo web", unit="demo.service", identifier="web"),
        journal.entry("demo worker", unit="demo.service", identifier="worker"),
        journal.entry("db", unit="db.service", identifier="postgres"),
        journal.entry("cron worker", unit="cron.service", identifier="worker"),
    )

    assert lines(by_unit.read()) == ["demo web", "demo worker", "db"]
    assert lines(by_match.read()) == ["demo worker", "cron worker"]
    assert lines(both.read()) == ["demo worker"]


def test_priorities_become_levels(journal: Journal, make_source: MakeSource) -> None:
    source = make_source(checkpoint={"cursor": ""})
    journal.write(
        *(journal.entry(f"p{p}", priority=p) for p in range(8)), journal.entry("none", priority=None)
    )

    levels = {r.line: r.level for r in source.read().records}

    assert levels == {
        "p0": "critical",
        "p1": "critical",
        "p2": "critical",
        "p3": "error",
        "p4": "warning",
        "p5": "notice",
        "p6": "info",
        "p7": "debug",
        "none": None,
    }


def test_binary_message_labels_and_time(journal: Journal, make_source: MakeSource) -> None:
    journal.log("before start")
    source = make_source(name="journal-demo", labels={"service": "demo-web", "unit": "overridden"})
    source.read()
    journal.write(
        journal.entry(b"bad byte \xff then text", unit="demo.service", identifier="demo", hostname="web-1"),
        journal.entry("multi\nline\n", unit=None, identifier=None),
    )

    binary, multi = source.read().records

    assert binary == LogRecord(
        "journal-demo",
        "bad byte \ufffd then text",
        (START_US + 2_000_000) / 1e6,
        {"service": "demo-web", "unit": "demo.service", "identifier": "demo", "hostname": "web-1"},
        "info",
    )
    assert multi.line == "multi\nline"
    assert multi.labels == {"service": "demo-web", "unit": "overridden", "hostname": "testhost"}


def test_checkpoint_survives_json_and_restart_resumes_exactly(
    journal: Journal, make_source: MakeSource, tmp_path: Path
) -> None:
    journal.log("before start")
    source = make_source()
    assert source.checkpoint() == {}, "nothing is committed before the first read"
    source.read()
    journal.log("one", "two", "three")
    batch = source.read(limit=2)
    source.commit(batch)
    save_json(tmp_path / "journald.json", source.checkpoint())

    journal.log("four")
    restarted = make_source(checkpoint=load_json(tmp_path / "journald.json"))

    assert lines(restarted.read()) == ["three", "four"]


def test_a_directory_of_journal_files_is_read_in_time_order(tmp_path: Path) -> None:
    require(JournaldSource.available(), "journalctl (Debian package systemd)")
    require(journal_remote_available(), "systemd-journal-remote (Debian package systemd-journal-remote)")
    journal = Journal(tmp_path / "journal-dir", split=True)
    journal.log("before start")
    source = JournaldSource("journal-dir", directory=str(journal.path))
    source.read()

    journal.log("file 2 a", "file 2 b")
    first = source.read()
    source.commit(first)
    journal.log("file 3 a")
    second = source.read()

    assert len(journal.files) == 3
    assert lines(first) == ["file 2 a", "file 2 b"]
    assert lines(second) == ["file 3 a"]


# ------------------------------------------------------------------ failures


def test_missing_journalctl_is_source_unavailable(tmp_path: Path) -> None:
    source = JournaldSource("j", journalctl=str(tmp_path / "no-journalctl"))

    assert not JournaldSource.available(str(tmp_path / "no-journalctl"))
    with pytest.raises(SourceUnavailable, match="cannot run"):
        source.read()


def test_missing_journal_file_is_source_unavailable(journal: Journal, tmp_path: Path) -> None:
    source = JournaldSource("j", file=str(tmp_path / "absent.journal"), checkpoint={"cursor": ""})

    with pytest.raises(SourceUnavailable, match=r"journalctl failed \(exit 1\): .*No such file"):
        source.read()


def test_an_invalid_cursor_is_source_unavailable_and_keeps_the_position(
    journal: Journal, make_source: MakeSource
) -> None:
    journal.log("x")
    source = make_source(checkpoint={"cursor": "not-a-cursor"})

    with pytest.raises(SourceUnavailable, match="cursor"):
        source.read()
    assert source.checkpoint() == {"cursor": "not-a-cursor"}


def test_a_hanging_journalctl_is_stopped_by_the_timeout(tmp_path: Path) -> None:
    slow = tmp_path / "journalctl"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    os.chmod(slow, 0o755)
    source = JournaldSource("j", journalctl=str(slow), checkpoint={"cursor": ""}, timeout=0.3)

    with pytest.raises(SourceUnavailable, match=r"did not finish within 0.3s"):
        source.read()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matches": ["--since=yesterday"]}, "FIELD=value"),
        ({"matches": ["lowercase=x"]}, "FIELD=value"),
        ({"file": "a.journal", "directory": "d"}, "not both"),
        ({"checkpoint": {"cursor": 12}}, "not a journald checkpoint"),
    ],
)
def test_bad_settings_are_refused_when_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JournaldSource("j", **kwargs)
