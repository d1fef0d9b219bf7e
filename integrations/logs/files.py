"""Tail log files by glob: files are followed by inode through rename and copytruncate rotation, and a
checkpoint makes a restart resume exactly where the last committed batch ended."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from integrations.logs.lines import last_line_end, read_lines
from integrations.logs.records import LogBatch, LogRecord

log = logging.getLogger(__name__)

HEAD_BYTES = 1024  # how much of a file's head identifies its content (a fingerprint, as Filebeat's)
CHECKPOINT_VERSION = 1

FileKey = tuple[int, int]  # (st_dev, st_ino): a file's identity, whatever its name


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_EMPTY_DIGEST = _digest(b"")


@dataclass(frozen=True)
class _Position:
    """How far one file has been read: one entry of a checkpoint, all plain JSON values.

    `path` is the name the file was first found under: the `path` label of its lines (so they keep
    matching service selectors after a rotation renames the file) and where to look for its inode
    after a restart. `head` fingerprints the first `head_len` bytes, which tells a truncated or
    rewritten file from one that only grew. `size` is the size at that read: what is known to be
    missed if the file vanishes. `rotated` means the glob no longer matched it at that read.
    """

    path: str
    dev: int
    ino: int
    offset: int
    head: str = _EMPTY_DIGEST
    head_len: int = 0
    size: int = 0
    rotated: bool = False

    @property
    def key(self) -> FileKey:
        return (self.dev, self.ino)


class _TrackedFile:
    """An open descriptor on one inode: it keeps a renamed or deleted file readable to its end.

    `origin` is where a file found by a read that was never committed starts when it is read again,
    even after it stopped matching the glob: 0 for a new file, the saved offset for an adopted copy.
    """

    def __init__(self, fd: int, path: str, origin: int = 0):
        self.fd = fd
        self.path = path
        self.origin = origin
        st = os.fstat(fd)
        self.key: FileKey = (st.st_dev, st.st_ino)

    @classmethod
    def open(cls, path: str, origin: int = 0) -> _TrackedFile | None:
        """Opens a regular file (None for anything else); O_NONBLOCK so a FIFO put in its place cannot hang us."""
        fd = _open(path)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None
            return cls(fd, path, origin)
        except BaseException:
            os.close(fd)
            raise

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def head(self, n: int) -> bytes:
        return os.pread(self.fd, n, 0) if n > 0 else b""

    def holds(self, pos: _Position) -> bool:
        """Whether the file still starts with the bytes `pos` fingerprinted."""
        return _digest(self.head(pos.head_len)) == pos.head

    def close(self) -> None:
        os.close(self.fd)


def _open(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)


@dataclass(frozen=True)
class _Step:
    """One file to read in this batch, from `pos.offset`; `final` flushes an unterminated last line."""

    pos: _Position
    file: _TrackedFile
    final: bool = False


class FileSource:
    """Lines appended to the files that `paths` (glob patterns) match, each delivered once across
    rotations and restarts.

    Files are known by inode, and the globs are evaluated again on every read, so a file that appears
    later is read from its beginning. `start_at` only decides what happens to files that exist when a
    source starts without a checkpoint. A file renamed away (rotation) is read to its end through the
    descriptor still open on it, or found again by inode in its directory after a restart, and is
    forgotten once it has stopped growing for a whole read. A file truncated in place (copytruncate)
    starts again at 0, after the lines it lost are read from the copy beside it.

    >>> import pathlib, shutil, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "app.log").write_text("history\\n")
    >>> src = FileSource("app", [str(d / "*.log")])
    >>> with open(d / "app.log", "a") as f:
    ...     _ = f.write("news\\n")
    >>> batch = src.read()
    >>> [(r.line, r.labels["path"] == str(d / "app.log")) for r in batch.records]
    [('news', True)]
    >>> src.commit(batch)
    >>> src.read().records
    []
    >>> src.close(); shutil.rmtree(d)
    """

    def __init__(
        self,
        name: str,
        paths: list[str],
        start_at: Literal["end", "beginning"] = "end",
        max_line_bytes: int = 65536,
        labels: Mapping[str, str] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ):
        if start_at not in ("end", "beginning"):
            raise ValueError(f"start_at must be 'end' or 'beginning', not {start_at!r}")
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.name = name
        self.paths = list(paths)
        self.start_at = start_at
        self.max_line_bytes = max_line_bytes
        self.labels = dict(labels or {})
        self._files: dict[FileKey, _TrackedFile] = {}
        self._unreadable: set[str] = set()  # paths whose open failure was logged
        self._reported: set[tuple[FileKey, int]] = set()  # files gone, logged once per (file, offset)
        if checkpoint is not None:
            self._committed = _load(checkpoint)
        elif start_at == "end":
            self._committed = self._skip_history()
        else:
            self._committed = []

    def read(self, limit: int = 10_000) -> LogBatch:
        """Up to `limit` lines past the committed position, oldest file first; the position does not move."""
        matched = self._scan()
        records: list[LogRecord] = []
        positions: list[_Position] = []
        for step in self._plan(matched):
            pos, f = step.pos, step.file
            size = f.stat().st_size
            lines, offset = read_lines(
                f.fd, pos.offset, size, limit - len(records), self.max_line_bytes, step.final
            )
            labels = {**self.labels, "path": pos.path}
            records += (LogRecord(self.name, line, labels=labels) for line in lines)
            positions.append(_advanced(pos, f, offset, size, rotated=f.key not in matched))
        self._close_all_but({p.key for p in self._committed} | {p.key for p in positions})
        return LogBatch(records, _dump(positions))

    def commit(self, batch: LogBatch) -> None:
        """Move past `batch`; descriptors of files it no longer needs (rotated away and drained) close."""
        self._committed = _load(batch.checkpoint)
        self._close_all_but({p.key for p in self._committed})

    def checkpoint(self) -> dict[str, Any]:
        return _dump(self._committed)

    def close(self) -> None:
        """Closes every descriptor; the committed position is kept, a later read reopens what it needs."""
        self._close_all_but(set())

    # -- what to read ----------------------------------------------------------------------------

    def _plan(self, matched: dict[FileKey, str]) -> list[_Step]:
        """The files this read goes through, in order: committed files first (a copy a file was
        truncated into just before it), then files seen for the first time, oldest first."""
        steps: list[_Step] = []
        committed = {p.key for p in self._committed}
        for pos in self._committed:
            planned = {s.file.key for s in steps}
            if pos.key in planned:
                continue
            f = self._reattach(pos, matched)
            if f is None:
                self._report_gone(pos)
                continue
            size = f.stat().st_size
            settled = f.key not in matched and pos.rotated and size == pos.size
            if settled and pos.offset >= size:
                log.debug("log source %s: done with rotated %s (inode %d)", self.name, pos.path, pos.ino)
                continue
            if size < pos.offset or not f.holds(pos):
                copy = self._copy_of(pos, skip=committed | planned)
                if copy is not None:
                    steps.append(copy)
                self._report_truncated(pos, size, copy)
                pos = _Position(pos.path, pos.dev, pos.ino, offset=0)
            steps.append(_Step(pos, f, final=settled))
        known = committed | {s.file.key for s in steps}
        fresh = [f for key, path in matched.items() if key not in known if (f := self._track(path))]
        owed = [f for key, f in self._files.items() if key not in known and f not in fresh]
        for f in sorted(fresh, key=lambda f: (f.stat().st_mtime_ns, f.path)) + owed:
            if f.key not in known:
                known.add(f.key)
                steps.append(_Step(_Position(f.path, *f.key, offset=f.origin), f))
        return steps

    def _skip_history(self) -> list[_Position]:
        """start_at="end": positions just after the last complete line of every file there now."""
        positions = []
        for path in self._scan().values():
            f = self._track(path)
            if f is not None:
                size = f.stat().st_size
                start = last_line_end(f.fd, size, self.max_line_bytes)
                positions.append(_advanced(_Position(path, *f.key, offset=0), f, start, size, rotated=False))
        return positions

    def _scan(self) -> dict[FileKey, str]:
        """Regular files the globs match now, by identity (a file matched twice is one file)."""
        found: dict[FileKey, str] = {}
        for pattern in self.paths:
            for path in sorted(glob.glob(pattern, recursive=True)):
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # gone since the glob listed it, or a dangling symlink
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), path)
        return found

    # -- finding files -----------------------------------------------------------------------------

    def _track(self, path: str, origin: int = 0) -> _TrackedFile | None:
        """The descriptor on the file at `path`, opened unless we hold one on that inode already."""
        try:
            f = _TrackedFile.open(path, origin)
        except FileNotFoundError:
            return None
        except OSError as e:
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning(
                    "log source %s: cannot read %s (%s); skipping it", self.name, path, e.strerror or e
                )
            return None
        self._unreadable.discard(path)
        if f is None:
            return None
        held = self._files.get(f.key)
        if held is not None:
            f.close()
            return held
        self._files[f.key] = f
        return f

    def _reattach(self, pos: _Position, matched: dict[FileKey, str]) -> _TrackedFile | None:
        """The committed file's descriptor: still open, or its inode found by the glob or in its old directory."""
        f = self._files.get(pos.key)
        if f is not None:
            return f
        path = matched.get(pos.key) or _find_inode(os.path.dirname(pos.path), pos.key)
        f = self._track(path) if path else None
        return f if f is not None and f.key == pos.key else None

    def _copy_of(self, pos: _Position, skip: set[FileKey]) -> _Step | None:
        """copytruncate: the newest file beside `pos` that starts with the bytes it fingerprinted and is
        at least as long as its offset. Its bytes past the offset were written after our last read and
        before the truncation; it is read from there, then forgotten like any rotated file."""
        if pos.head_len == 0:
            return None
        for path in _siblings_newest_first(os.path.dirname(pos.path), min_size=max(pos.offset, pos.head_len)):
            try:
                f = _TrackedFile.open(path, origin=pos.offset)
            except OSError:
                continue
            if f is None or f.key in skip or not f.holds(pos):
                if f is not None:
                    f.close()
                continue
            f.close()
            held = self._track(path, origin=pos.offset)
            if held is None or held.key != f.key:
                continue
            held.origin = pos.offset
            return _Step(replace(pos, dev=held.key[0], ino=held.key[1], rotated=True), held)
        return None

    # -- reporting and cleanup ---------------------------------------------------------------------

    def _report_gone(self, pos: _Position) -> None:
        if (pos.key, pos.offset) in self._reported:
            return
        self._reported.add((pos.key, pos.offset))
        if pos.rotated and pos.offset >= pos.size:
            log.info("log source %s: rotated %s (inode %d) is gone", self.name, pos.path, pos.ino)
            return
        log.warning(
            "log source %s: %s (inode %d) disappeared before it was read to its end: at least %d bytes "
            "after offset %d, and anything written to it since, were missed",
            self.name,
            pos.path,
            pos.ino,
            max(pos.size - pos.offset, 0),
            pos.offset,
        )

    def _report_truncated(self, pos: _Position, size: int, copy: _Step | None) -> None:
        if (pos.key, pos.offset) in self._reported:
            return
        self._reported.add((pos.key, pos.offset))
        if copy is not None:
            log.info(
                "log source %s: %s was truncated (copytruncate); reading what it had after offset %d from "
                "%s, then the file from its start",
                self.name,
                pos.path,
                pos.offset,
                copy.file.path,
            )
        else:
            log.info(
                "log source %s: %s was truncated or rewritten (size %d, read to %d); reading it from its start",
                self.name,
                pos.path,
                size,
                pos.offset,
            )

    def _close_all_but(self, keep: set[FileKey]) -> None:
        for key in [k for k in self._files if k not in keep]:
            self._files.pop(key).close()


def _advanced(pos: _Position, f: _TrackedFile, offset: int, size: int, rotated: bool) -> _Position:
    """`pos` moved to `offset`, its fingerprint extended while the file's head is still short."""
    head, head_len = pos.head, pos.head_len
    if head_len < min(size, HEAD_BYTES):
        data = f.head(min(size, HEAD_BYTES))
        head, head_len = _digest(data), len(data)
    return replace(pos, offset=offset, head=head, head_len=head_len, size=size, rotated=rotated)


def _find_inode(directory: str, key: FileKey) -> str | None:
    """The name a file has now in `directory` (a rotation renames it in place: app.log -> app.log.1)."""
    try:
        with os.scandir(directory or ".") as entries:
            for e in entries:
                try:
                    if e.inode() == key[1] and e.is_file():
                        st = e.stat()
                        if (st.st_dev, st.st_ino) == key:
                            return e.path
                except OSError:
                    continue
    except OSError:
        return None
    return None


def _siblings_newest_first(directory: str, min_size: int) -> list[str]:
    found: list[tuple[int, str]] = []
    try:
        with os.scandir(directory or ".") as entries:
            for e in entries:
                try:
                    if e.is_file():
                        st = e.stat()
                        if st.st_size >= min_size:
                            found.append((st.st_mtime_ns, e.path))
                except OSError:
                    continue
    except OSError:
        return []
    return [path for _, path in sorted(found, reverse=True)]


def _dump(positions: list[_Position]) -> dict[str, Any]:
    return {"version": CHECKPOINT_VERSION, "files": [asdict(p) for p in positions]}


def _load(checkpoint: Mapping[str, Any]) -> list[_Position]:
    """Positions from a checkpoint (our own, possibly after a JSON round trip)."""
    try:
        if checkpoint.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"version {checkpoint.get('version')!r}")
        return [
            _Position(
                path=str(p["path"]),
                dev=int(p["dev"]),
                ino=int(p["ino"]),
                offset=int(p["offset"]),
                head=str(p["head"]),
                head_len=int(p["head_len"]),
                size=int(p.get("size", 0)),
                rotated=bool(p.get("rotated", False)),
            )
            for p in checkpoint["files"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"not a file source checkpoint ({type(e).__name__}: {e})") from None
