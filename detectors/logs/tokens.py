"""Token classes for log lines: what is probably a variable (masked), a unit, a level, a date word."""

from __future__ import annotations

import re

MASK = "<#>"  # a masked variable; drain's own wildcard (a token that differed between lines) is <*>
_PUNCT = "()[]{}<>,;:\"'"
_DATE_WORDS = frozenset(
    [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
    ]
)
_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "v": "debug",
    "d": "debug",
    "info": "info",
    "i": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "w": "warning",
    "error": "error",
    "err": "error",
    "e": "error",
    "severe": "error",
    "crit": "critical",
    "critical": "critical",
    "fatal": "critical",
    "f": "critical",
    "alert": "critical",
    "emerg": "critical",
}
_UNITS = frozenset(
    [
        "b",
        "kb",
        "mb",
        "gb",
        "tb",
        "kib",
        "mib",
        "gib",
        "bytes",
        "byte",
        "ms",
        "msec",
        "s",
        "sec",
        "secs",
        "second",
        "seconds",
        "us",
        "ns",
        "min",
        "mins",
        "minutes",
        "h",
        "hours",
        "hrs",
        "%",
    ]
)
_DIGIT = re.compile(r"\d")
_FILE_OR_HOST = re.compile(r"^[\w.\-]+\.[a-z]{2,4}$")  # app.exe, mirror.example.com
_KEY_VALUE = re.compile(r"^([A-Za-z_][\w.\-]*)=(.+)$")


def has_digit(token: str) -> bool:
    return _DIGIT.search(token) is not None


def is_month_or_day(token: str) -> bool:
    return token.strip(_PUNCT).lower() in _DATE_WORDS


def level_of(token: str) -> str | None:
    """The canonical level a header token names (`W`, `[error]`, `WARN` ...), or None."""
    return _LEVELS.get(token.strip(_PUNCT).lower())


def is_level(token: str) -> bool:
    return level_of(token) is not None


def is_unit(token: str) -> bool:
    return token.strip(_PUNCT).lower() in _UNITS


def normalize(token: str) -> str:
    """A message token as the miner compares it: variables become MASK.

    Variables are what changes between lines of one template: anything with a digit (numbers, ids,
    addresses, times, versions), paths and URLs, file and host names, date words, and the value of
    `key=value` pairs (the key stays: it is part of the template).
    """
    kv = _KEY_VALUE.match(token)
    if kv:
        return f"{kv.group(1)}={MASK}"
    core = token.strip(_PUNCT)
    if not core:
        return MASK if ("(" in token or "[" in token) and len(token) > 1 else token
    if (
        has_digit(core)
        or "/" in core
        or "\\" in core
        or core.lower() in _DATE_WORDS
        or _FILE_OR_HOST.match(core)
    ):
        return MASK
    return token
