"""When a log line says it happened: the timestamp at (or near) its start, in the formats most logs use.

Live, a file line's time is when it was read; replaying a file needs the time the line itself gives.
Recognised: ISO 8601 / RFC 3339 and its common variants (`2026-03-01 12:00:01,123`, `...T...Z`,
offsets), syslog (`Mar  1 12:00:01`, year taken from the caller's hint), and the common/combined log
format (`[01/Mar/2026:12:00:01 +0000]`). A time without a zone is local time, as loggers write it.

>>> from datetime import datetime, timezone
>>> line_time("2026-03-01T12:00:01.5Z GET /") == datetime(2026, 3, 1, 12, 0, 1, 500000, timezone.utc).timestamp()
True
>>> line_time('10.0.0.1 - - [01/Mar/2026:12:00:01 +0100] "GET / HTTP/1.1" 200') == datetime(2026, 3, 1, 11, 0, 1, tzinfo=timezone.utc).timestamp()
True
>>> line_time("no time here") is None
True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_ISO = re.compile(
    r"^\[?(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}:?\d{2})?"
)
_SYSLOG = re.compile(r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})")
_CLF = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\]")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}


def line_time(line: str, year: int | None = None) -> float | None:
    """Unix seconds of the line's own timestamp, or None when it has none this recognises. `year` is
    for syslog lines, which omit it (default: the current year)."""
    try:
        if m := _ISO.match(line):
            y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
            micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
            return _stamp(datetime(y, mo, d, h, mi, s, micro), m.group(8))
        if m := _SYSLOG.match(line):
            month = _MONTHS.get(m.group(1))
            if month is not None:
                h, mi, s = int(m.group(3)), int(m.group(4)), int(m.group(5))
                when = datetime(year or datetime.now(UTC).year, month, int(m.group(2)), h, mi, s)
                return _stamp(when, None)
        if m := _CLF.search(line, 0, 200):
            month = _MONTHS.get(m.group(2))
            if month is not None:
                d, y, h, mi, s = (int(m.group(i)) for i in (1, 3, 4, 5, 6))
                return _stamp(datetime(y, month, d, h, mi, s), m.group(7))
    except ValueError:  # a date that does not exist (31 Feb): not a timestamp after all
        return None
    return None


def _stamp(naive: datetime, zone: str | None) -> float:
    if zone is None:
        return naive.astimezone().timestamp()  # local time
    if zone == "Z":
        return naive.replace(tzinfo=UTC).timestamp()
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return naive.replace(tzinfo=timezone(sign * offset)).timestamp()
