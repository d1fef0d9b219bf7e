"""Real systemd journal files for tests, written by systemd-journal-remote from journal export format.

`systemd-journal-remote -o FILE.journal -` reads the export format on stdin and appends the entries to
FILE.journal (creating it), which journalctl then reads with `--file` or `--directory` like any journal.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT_ID = "4f1d0c1e9a8b4c7d8e2f3a4b5c6d7e8f"
START_US = 1_700_000_000_000_000

Fields = Mapping[str, str | bytes]


def journal_remote_available() -> bool:
    return JOURNAL_REMOTE.is_file()


def export_format(entries: Iterable[Fields]) -> bytes:
    """Entries as journal export format: `KEY=value` lines, binary-safe `KEY\\n<le64 size><data>\\n`
    for values with a newline or non-text bytes, and an empty line after each entry."""
    out = bytearray()
    for entry in entries:
        for key, value in entry.items():
            data = value.encode() if isinstance(value, str) else value
            if isinstance(value, str) and "\n" not in value:
                out += key.encode() + b"=" + data + b"\n"
            else:
                out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        out += b"\n"
    return bytes(out)


@dataclass
class Journal:
    """A journal file (or, with `split`, a directory of files) that tests log into, one entry per second."""

    path: Path
    split: bool = False  # each write() adds a new file to the directory `path`
    written: int = 0
    files: list[Path] = field(default_factory=list)

    def entry(
        self,
        message: str | bytes,
        unit: str | None = "demo.service",
        priority: int | None = 6,
        identifier: str | None = "demo",
        hostname: str = "testhost",
        **extra: str | bytes,
    ) -> dict[str, str | bytes]:
        """The fields of the next entry; its time is one second after the previous one's."""
        self.written += 1
        fields: dict[str, str | bytes] = {
            "__REALTIME_TIMESTAMP": str(START_US + self.written * 1_000_000),
            "__MONOTONIC_TIMESTAMP": str(self.written * 1_000_000),
            "_BOOT_ID": BOOT_ID,
            "_HOSTNAME": hostname,
            "MESSAGE": message,
        }
        if unit is not None:
            fields["_SYSTEMD_UNIT"] = unit
        if identifier is not None:
            fields["SYSLOG_IDENTIFIER"] = identifier
        if priority is not None:
            fields["PRIORITY"] = str(priority)
        return fields | dict(extra)

    def write(self, *entries: Fields) -> None:
        """Append entries: to the one file, or as a new file in the directory when `split`."""
        if self.split:
            self.path.mkdir(parents=True, exist_ok=True)
            target = self.path / f"part-{len(self.files):03d}.journal"
        else:
            target = self.path
        subprocess.run(
            [str(JOURNAL_REMOTE), "-o", str(target), "-"],
            input=export_format(entries),
            capture_output=True,
            check=True,
            timeout=30,
        )
        if target not in self.files:
            self.files.append(target)

    def log(self, *messages: str, **fields: Any) -> None:
        """Write one entry per message, all with the same other fields."""
        self.write(*(self.entry(m, **fields) for m in messages))
