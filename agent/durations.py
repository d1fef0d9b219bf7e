"""Durations as operators write them (`30s`, `5m`, `1h30m`), the way Prometheus spells them."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `1h30m`, `250ms`, `45s`; a bare number is seconds. Raises ValueError with the accepted forms."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        return timedelta(seconds=float(text))
    s = str(text).strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h, 1h30m")
    return timedelta(seconds=total)


def format_duration(td: timedelta) -> str:
    """Render a timedelta compactly for humans (`1h2m3s`, `850ms`)."""
    total = td.total_seconds()
    if total < 1:
        return f"{round(total * 1000)}ms"
    secs = round(total)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            n, secs = divmod(secs, size)
            out.append(f"{n}{unit}")
    return "".join(out)
