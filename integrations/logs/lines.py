"""Complete lines from a byte range of an open file, read in chunks so a huge line never sits in memory."""

from __future__ import annotations

import os

CHUNK_BYTES = 64 * 1024


def read_lines(
    fd: int, start: int, end: int, limit: int, max_line_bytes: int, final: bool = False
) -> tuple[list[str], int]:
    """Up to `limit` lines in [start, end) of `fd`, and the offset just after the last one returned.

    A last line without its newline is not returned and the offset stays at its start, so it comes
    back whole once the writer finishes it; `final` says the writer has moved on (the file was rotated
    away and stopped growing), and then it is returned as it is. A line keeps its first
    `max_line_bytes` bytes; the rest are counted while scanning for the newline, never held.
    """
    lines: list[str] = []
    kept = bytearray()
    dropped = 0
    cr = False  # the current line's last byte so far is b"\r"
    done = start  # just after the last complete line
    cur = start
    while cur < end and len(lines) < limit:
        chunk = os.pread(fd, min(CHUNK_BYTES, end - cur), cur)
        if not chunk:
            break  # the file shrank under us; the next read sees the truncation
        i = 0
        while i < len(chunk) and len(lines) < limit:
            nl = chunk.find(b"\n", i)
            stop = len(chunk) if nl < 0 else nl
            if stop > i:
                take = max(0, min(stop - i, max_line_bytes - len(kept)))
                kept += chunk[i : i + take]
                dropped += stop - i - take
                cr = chunk[stop - 1] == 0x0D
            if nl < 0:
                break
            lines.append(_text(kept, dropped, cr))
            kept.clear()
            dropped, cr = 0, False
            i = nl + 1
            done = cur + i
        cur += len(chunk)
    if final and cur >= end and len(lines) < limit and (kept or dropped):
        lines.append(_text(kept, dropped, cr))
        done = cur
    return lines, done


def last_line_end(fd: int, size: int, window: int) -> int:
    """Where to start reading to skip what a file already holds: just after its last newline, so a line
    being written right now is not cut in half. Looks back at most `window` bytes."""
    if size == 0:
        return 0
    start = max(0, size - window)
    i = os.pread(fd, size - start, start).rfind(b"\n")
    if i >= 0:
        return start + i + 1
    return 0 if start == 0 else size


def _text(kept: bytearray, dropped: int, cr: bool) -> str:
    if cr:  # a CRLF terminator: the b"\r" is the line's last byte, kept or dropped
        if dropped:
            dropped -= 1
        else:
            del kept[-1]
    if not dropped:
        return kept.decode("utf-8", "replace")
    cut = _utf8_boundary(kept)
    dropped += len(kept) - cut
    return f"{kept[:cut].decode('utf-8', 'replace')} …[truncated {dropped} bytes]"


def _utf8_boundary(data: bytes | bytearray) -> int:
    """Length of `data` without a multi-byte UTF-8 character that the byte limit cut in two."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        if byte >= 0xF0:
            need = 4
        elif byte >= 0xE0:
            need = 3
        elif byte >= 0xC0:
            need = 2
        else:
            need = 1
        return n - back if need > back else n
    return n
