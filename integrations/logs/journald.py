"""The systemd journal as a log source, read through `journalctl -o json` and resumed by journal cursor.

journalctl rather than a binding to libsystemd: it is on every systemd host, reads live journals as well
as copied `--file`/`--directory` ones, and keeps this package free of a compiled dependency. A journal
cursor names one entry exactly, so `--after-cursor` gives reads without gaps or repeats.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

from integrations.errors import SourceUnavailable
from integrations.logs.records import LogBatch, LogRecord

log = logging.getLogger(__name__)

LEVELS = {
    0: "critical",
    1: "critical",
    2: "critical",
    3: "error",
    4: "warning",
    5: "notice",
    6: "info",
    7: "debug",
}
LABEL_FIELDS = {"unit": "_SYSTEMD_UNIT", "identifier": "SYSLOG_IDENTIFIER", "hostname": "_HOSTNAME"}
FIELDS = ("MESSAGE", "PRIORITY", *LABEL_FIELDS.values())  # journalctl adds __CURSOR and timestamps
_MATCH = re.compile(r"^[A-Z0-9_]+=.*$|^\+$", re.DOTALL)


class JournaldSource:
    """Reads new journal entries of some units (or matches), oldest first, each once across restarts.

    `matches` are journalctl matches (`SYSLOG_IDENTIFIER=nginx`; `+` between them means OR). A first
    start without checkpoint begins after the newest matching entry: it does not replay the journal.
    """

    def __init__(
        self,
        name: str,
        units: Sequence[str] = (),
        matches: Sequence[str] = (),
        directory: str | None = None,
        file: str | None = None,
        journalctl: str = "journalctl",
        labels: Mapping[str, str] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ):
        if directory and file:
            raise ValueError("journald source: give `directory` or `file`, not both")
        bad = [m for m in matches if not _MATCH.match(m)]
        if bad:
            raise ValueError(f"journald source {name}: matches must look like FIELD=value or '+', got {bad}")
        self.name = name
        self.journalctl = journalctl
        self.labels = dict(labels or {})
        self.timeout = timeout
        self._filters = [
            *([f"--directory={directory}"] if directory else []),
            *([f"--file={file}"] if file else []),
            *(f"--unit={u}" for u in units),
            *matches,
        ]
        # None: not positioned yet (tail on first read); "": from the start of the journal.
        self._committed: str | None = None
        if checkpoint:
            cursor = checkpoint.get("cursor")
            if not isinstance(cursor, str):
                raise ValueError(f"not a journald checkpoint: {dict(checkpoint)!r}")
            self._committed = cursor

    @staticmethod
    def available(journalctl: str = "journalctl") -> bool:
        return shutil.which(journalctl) is not None

    def read(self, limit: int = 10_000) -> LogBatch:
        """Up to `limit` entries after the committed cursor."""
        if self._committed is None:
            self._committed = self._tail_cursor()
        after = [f"--after-cursor={self._committed}"] if self._committed else []
        entries = self._journalctl([*after, f"--output-fields={','.join(FIELDS)}"], limit)
        records = [r for r in map(self._record, entries) if r is not None]
        cursor = str(entries[-1]["__CURSOR"]) if entries else self._committed
        return LogBatch(records, {"cursor": cursor})

    def commit(self, batch: LogBatch) -> None:
        self._committed = str(batch.checkpoint["cursor"])

    def checkpoint(self) -> dict[str, Any]:
        """The committed cursor; `{}` before the first read, which means "start at the tail" again."""
        return {} if self._committed is None else {"cursor": self._committed}

    def close(self) -> None:
        """Nothing stays open between reads: each one is a journalctl run of its own."""

    def _tail_cursor(self) -> str:
        """The cursor of the newest matching entry, or "" (read from the start) when there is none yet."""
        newest = self._journalctl(["--lines=1", "--output-fields=MESSAGE"], 1)
        return str(newest[-1]["__CURSOR"]) if newest else ""

    def _journalctl(self, args: list[str], limit: int) -> list[dict[str, Any]]:
        """Run journalctl and parse at most `limit` entries, stopping it once it has given that many."""
        cmd = [self.journalctl, "--output=json", "--no-pager", "--quiet", "--all", *self._filters, *args]
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
            except OSError as e:
                raise SourceUnavailable(
                    f"journald source {self.name}: cannot run {self.journalctl}: {e}"
                ) from e
            timed_out = threading.Event()

            def give_up() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(self.timeout, give_up)
            timer.start()
            try:
                assert proc.stdout is not None
                entries = _parse(proc.stdout, limit)
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()  # it has more than `limit` entries to give: a negative exit status, not a failure
                rc = proc.wait()
                if proc.stdout:
                    proc.stdout.close()
            stderr.seek(0)
            problem = stderr.read().decode(errors="replace").strip()
        if timed_out.is_set():
            raise SourceUnavailable(
                f"journald source {self.name}: journalctl did not finish within {self.timeout:g}s"
            )
        if rc > 0:
            raise SourceUnavailable(f"journald source {self.name}: journalctl failed (exit {rc}): {problem}")
        if problem:
            log.debug("journald source %s: journalctl said: %s", self.name, problem)
        return entries

    def _record(self, entry: Mapping[str, Any]) -> LogRecord | None:
        message = _text(entry.get("MESSAGE"))
        if message is None:
            return None  # a structured entry with nothing to read
        labels = {key: v for key, field in LABEL_FIELDS.items() if (v := _text(entry.get(field)))}
        priority = _text(entry.get("PRIORITY"))
        level = LEVELS.get(int(priority)) if priority and priority.isdigit() else None
        ts = int(entry["__REALTIME_TIMESTAMP"]) / 1_000_000
        return LogRecord(self.name, message.rstrip("\n"), ts, {**self.labels, **labels}, level)


def _parse(stdout: IO[bytes], limit: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    if limit <= 0:
        return entries
    for raw in stdout:
        try:
            entries.append(json.loads(raw))
        except ValueError as e:
            raise SourceUnavailable(f"journalctl wrote a line that is not JSON: {raw[:200]!r}") from e
        if len(entries) >= limit:
            break
    return entries


def _text(value: Any) -> str | None:
    """A journal field as text: fields that are not valid UTF-8 come as byte arrays, repeated ones as lists."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, list) and value:
        return _text(value[0])
    return str(value)
