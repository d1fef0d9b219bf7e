"""integrations.logs.files on real files in a temporary directory.

The property the agent depends on: every complete line appended to a matched file is delivered exactly
once, in order per file, through rename and copytruncate rotation, truncation, restarts from a saved
checkpoint, partial last lines, huge lines and bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.logs.checkpoints import load_json, save_json
from integrations.logs.files import FileSource

pytestmark = pytest.mark.integration


class Tail:
    """A file source under test plus what it delivered, committed batch by batch."""

    def __init__(self, directory: Path, **kw: Any) -> None:
        self.directory = directory
        self.kw = kw
        self.source = FileSource("app", [str(directory / "*.log")], **kw)
        self.seen: list[str] = []

    def poll(self, limit: int = 10_000) -> list[str]:
        batch = self.source.read(limit)
        self.source.commit(batch)
        lines = [r.line for r in batch.records]
        self.seen += lines
        return lines

    def restart(self) -> None:
        """Stop, keep only the saved checkpoint (through JSON on disk), start again."""
        state = self.directory.parent / "position.json"
        save_json(state, self.source.checkpoint())
        self.source.close()
        self.source = FileSource(
            "app", [str(self.directory / "*.log")], checkpoint=load_json(state), **self.kw
        )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    return d


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    made: list[Tail] = []
    yield made
    for t in made:
        t.source.close()


def tail(tails: list[Tail], directory: Path, **kw: Any) -> Tail:
    t = Tail(directory, **kw)
    tails.append(t)
    return t


def append(path: Path, *lines: str, raw: bytes = b"") -> None:
    with path.open("ab") as f:
        f.write("".join(f"{line}\n" for line in lines).encode())
        f.write(raw)


def test_starts_at_the_end_and_delivers_each_appended_line_once(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    append(app, "old 1", "old 2")
    t = tail(tails, logs)
    assert t.poll() == []
    append(app, "new 1", "new 2")
    assert t.poll() == ["new 1", "new 2"]
    assert t.poll() == []
    append(app, "new 3")
    assert t.poll() == ["new 3"]


def test_start_at_beginning_reads_history(logs: Path, tails: list[Tail]) -> None:
    append(logs / "app.log", "old 1", "old 2")
    assert tail(tails, logs, start_at="beginning").poll() == ["old 1", "old 2"]


def test_an_uncommitted_read_comes_back_and_a_committed_one_never(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "a", "b")
    first = t.source.read()
    again = t.source.read()  # the agent crashed before recording `first`: nothing is lost
    assert [r.line for r in first.records] == [r.line for r in again.records] == ["a", "b"]
    t.source.commit(again)
    assert t.source.read().records == []


def test_read_limit_pages_through_a_backlog(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, *(f"line {i}" for i in range(25)))
    pages = [t.poll(limit=10) for _ in range(4)]
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    assert t.seen == [f"line {i}" for i in range(25)]


def test_a_partial_last_line_waits_for_its_newline(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "whole", raw=b"half a li")
    assert t.poll() == ["whole"]
    assert t.poll() == []
    append(app, raw=b"ne\n")
    assert t.poll() == ["half a line"]


def test_rename_rotation_loses_nothing_written_before_or_after(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "before 1")
    assert t.poll() == ["before 1"]
    with app.open("ab") as writer:  # a writer still holding the old file keeps writing to it
        writer.write(b"before 2\n")
        writer.flush()
        app.rename(logs / "app.log.1")  # the rotated name no longer matches *.log
        append(app, "after 1")
        writer.write(b"late to the old file\n")
    lines = t.poll()
    assert sorted(lines) == ["after 1", "before 2", "late to the old file"]
    assert lines.index("before 2") < lines.index("late to the old file")
    append(app, "after 2")
    assert t.poll() == ["after 2"]
    assert t.poll() == []


def test_rotation_while_stopped_is_followed_by_inode_after_restart(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "one")
    assert t.poll() == ["one"]
    t.source.close()
    append(app, "two (written while the agent was down)")
    app.rename(logs / "app.log.1")
    append(app, "three (in the new file)")
    t.restart()
    assert t.poll() == ["two (written while the agent was down)", "three (in the new file)"]
    assert t.poll() == []


def test_copytruncate_reads_the_tail_from_the_copy_then_the_file_from_zero(
    logs: Path, tails: list[Tail]
) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "first")
    assert t.poll() == ["first"]
    append(app, "between our read and the copy")
    shutil.copyfile(app, logs / "app.log.1")  # logrotate copytruncate: copy ...
    with app.open("r+b") as f:  # ... then truncate in place (same inode)
        f.truncate(0)
    append(app, "after truncation")
    assert t.poll() == ["between our read and the copy", "after truncation"]
    assert t.poll() == []


def test_truncation_without_a_copy_restarts_the_file_from_zero(
    logs: Path, tails: list[Tail], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="integrations.logs.files")
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "a fairly long first line to be truncated away", "second")
    assert t.poll() == ["a fairly long first line to be truncated away", "second"]
    app.write_bytes(b"fresh\n")  # same inode, shorter, different head
    assert t.poll() == ["fresh"]
    assert "truncated or rewritten" in caplog.text


def test_rewritten_same_size_file_is_noticed_by_its_head(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, "aaaa")
    assert t.poll() == ["aaaa"]
    with app.open("r+b") as f:  # truncated and refilled between two polls: size alone cannot tell
        f.truncate(0)
        f.write(b"bbbb\ncccc\n")
    assert t.poll() == ["bbbb", "cccc"]


def test_restart_resumes_exactly_after_the_committed_batch(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, *(f"l{i}" for i in range(5)))
    assert t.poll(limit=3) == ["l0", "l1", "l2"]
    uncommitted = t.source.read()  # read, then the agent dies before recording it
    assert [r.line for r in uncommitted.records] == ["l3", "l4"]
    t.restart()
    append(app, "l5")
    assert t.poll() == ["l3", "l4", "l5"]
    assert t.seen == [f"l{i}" for i in range(6)]


def test_checkpoint_is_plain_json(logs: Path, tails: list[Tail]) -> None:
    append(logs / "app.log", "x")
    t = tail(tails, logs, start_at="beginning")
    t.poll()
    doc = json.loads(json.dumps(t.source.checkpoint()))
    assert doc["version"] == 1 and doc["files"][0]["offset"] == 2


def test_a_file_that_appears_later_is_read_from_its_start(logs: Path, tails: list[Tail]) -> None:
    t = tail(tails, logs)
    assert t.poll() == []
    append(logs / "worker.log", "w1", "w2")
    assert t.poll() == ["w1", "w2"]


def test_very_long_lines_are_cut_and_the_next_line_is_intact(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs, max_line_bytes=1024)
    append(app, "x" * 500_000, "next")
    first, second = t.poll()
    assert first.startswith("x" * 1024) and first.endswith(f"…[truncated {500_000 - 1024} bytes]")
    assert second == "next"


def test_bytes_that_are_not_utf8_and_garbage_do_not_stop_the_source(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs)
    append(app, raw=b"caf\xe9 latin-1\n\x00\x01\x02\xff\xfe binary\r\n\n" + "ünïcode ok\n".encode())
    lines = t.poll()
    assert lines == ["caf\ufffd latin-1", "\x00\x01\x02\ufffd\ufffd binary", "", "ünïcode ok"]
    append(app, "still reading")
    assert t.poll() == ["still reading"]


def test_a_multibyte_character_cut_by_the_line_limit_is_not_half_kept(logs: Path, tails: list[Tail]) -> None:
    t = tail(tails, logs, max_line_bytes=5)
    append(logs / "app.log", "abcdé and more")  # "é" is bytes 5-6: the limit falls inside it
    (line,) = t.poll()
    assert line.startswith("abcd …[truncated")


def test_a_fifo_matching_the_glob_is_ignored_and_cannot_hang_a_read(logs: Path, tails: list[Tail]) -> None:
    t = tail(tails, logs)
    os.mkfifo(logs / "pipe.log")
    append(logs / "app.log", "real")
    assert t.poll() == ["real"]


def test_labels_carry_the_original_path_through_rotation(logs: Path, tails: list[Tail]) -> None:
    app = logs / "app.log"
    t = tail(tails, logs, labels={"job": "web"})
    append(app, "one")
    assert t.poll() == ["one"]
    with app.open("ab") as writer:
        app.rename(logs / "app.log.1")
        writer.write(b"two\n")
    (record,) = t.source.read().records
    assert record.line == "two" and dict(record.labels) == {"job": "web", "path": str(app)}
