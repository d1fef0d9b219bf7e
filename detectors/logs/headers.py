"""Finding where a log line's header ends and its message begins, without a per-format configuration.

Timestamps, levels, PIDs, hosts and thread names vary from line to line while the message stays the
same; left in, they would split one template into many. Each source's header style is learnt from its
first lines: most formats end the header with a `component:` token (syslog, Android, Hadoop, HDFS);
others wrap it in `[...]` groups (Apache, Zookeeper, OpenStack, Proxifier); the rest start with plain
timestamp and level tokens (Windows CBS, HealthApp). The style that fits at least 80% of the first
lines is used for every later line, so one source is always cut the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from detectors.logs.tokens import has_digit, is_level, is_month_or_day

COLON, BRACKET, PLAIN = "colon", "bracket", "plain"


def _timestampish(token: str) -> bool:
    return has_digit(token) or is_month_or_day(token)


def _headerish(word: str) -> bool:
    return _timestampish(word) or is_level(word) or word == "-"


def _bracket_end(tokens: Sequence[str], i: int, longest: int = 12) -> int | None:
    """Index after the `[...]` group starting at token i (groups may hold spaces), or None."""
    for j in range(i, min(len(tokens), i + longest)):
        if tokens[j].endswith("]"):
            return j + 1
    return None


def colon_cut(tokens: Sequence[str], within: int = 10, words: int = 2) -> int | None:
    """After the first `component:` token preceded only by header-ish tokens, `[...]` groups and at most
    `words` other words (a host name, a thread); None when the line has no such header."""
    i = unknown = 0
    while i < len(tokens) and i < within:
        t = tokens[i]
        if t.startswith("[") and not t.endswith(":"):
            end = _bracket_end(tokens, i)
            if end is None:
                return None
            i = end
            continue
        if t.endswith(":") and len(t) > 1 and i > 0:
            return i + 1
        if not (_headerish(t) or ("." in t and "(" not in t)):
            unknown += 1
            if unknown > words:
                return None
        i += 1
    return None


def bracket_cut(tokens: Sequence[str]) -> int | None:
    """After leading timestamp/level tokens and `[...]` groups; None when the line has no `[...]` group."""
    i, seen = 0, False
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("["):
            end = _bracket_end(tokens, i)
            if end is None:
                break
            i, seen = end, True
        elif (
            is_level(t)
            or t == "-"
            or (
                not seen
                and (_timestampish(t) or ("." in t and i + 1 < len(tokens) and tokens[i + 1].startswith("[")))
            )
        ):
            i += 1
        else:
            break
    return i if seen else None


def plain_cut(tokens: Sequence[str]) -> int:
    i = 0
    while i < len(tokens) and _headerish(tokens[i]):
        i += 1
    return i


class HeaderStyle:
    """Learns a source's header style from its first lines, then cuts every line the same way."""

    def __init__(self, style: str | None = None):
        self.style = style

    def learn(self, sample: Sequence[Sequence[str]]) -> str:
        n = max(len(sample), 1)
        if sum(colon_cut(t) is not None for t in sample) >= 0.8 * n:
            self.style = COLON
        elif sum(bracket_cut(t) is not None for t in sample) >= 0.8 * n:
            self.style = BRACKET
        else:
            self.style = PLAIN
        return self.style

    def cut(self, tokens: Sequence[str]) -> int:
        """Index of the first message token (the whole line is the message if no header is found)."""
        k: int | None = None
        if self.style == COLON:
            k = colon_cut(tokens)
        elif self.style == BRACKET:
            k = bracket_cut(tokens)
        if k is None:
            k = plain_cut(tokens)
        return k if k < len(tokens) else 0
