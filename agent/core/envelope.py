"""The safety envelope: what may stop the agent from acting, as pure functions of what it knows and `now`.

Silences and maintenance windows mute signals (they still join incidents, but trigger no change and
no notification). The kill switch (`aiops automation pause|resume`) is a log of switches whose
latest entry per scope decides; a circuit breaker is derived from the failed changes the core saw and
the switches (a resume after the failures closes it), so there is no breaker state to lose or race.
The shell reads silences and switches from the store on every housekeeping tick; the CLI reads the
same records to show `aiops automation status`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from agent.config.models import CircuitBreaker, MaintenanceWindow
from agent.durations import format_duration

Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """A label matcher as Alertmanager writes them; a label a signal lacks counts as the empty string,
    and regular expressions match the whole value."""

    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name=value`, `name!=value`, `name=~regex` or `name!~regex`; raises ValueError otherwise."""
        m = _MATCHER.match(text)
        if m is None:
            raise ValueError(
                f"not a matcher: {text!r} (expected NAME=VALUE, NAME!=VALUE, NAME=~RE or NAME!~RE)"
            )
        return cls.of(m.group(1), m.group(2), m.group(3))  # type: ignore[arg-type]

    @classmethod
    def of(cls, name: str, op: Op, value: str) -> Matcher:
        if op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {op!r}")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as e:
                raise ValueError(f"invalid regular expression {value!r}: {e}") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self._regex is not None:
            return (self._regex.fullmatch(have) is not None) == (self.op == "=~")
        return (have == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def describe(self) -> str:
        return f"silence #{self.id} ({', '.join(map(str, self.matchers))}; {self.author}: {self.comment})"


@dataclass(frozen=True)
class Switch:
    """One use of the kill switch: `pause` or `resume` of everything (`service` None) or of one
    service; a resume may name one runbook (it closes only that runbook's circuit breakers)."""

    kind: Literal["pause", "resume"]
    service: str | None
    runbook: str | None
    reason: str
    actor: str
    at: datetime


def window_open(window: MaintenanceWindow, now: datetime) -> bool:
    if window.start is not None and window.end is not None:
        return window.start <= now < window.end
    assert window.cron is not None and window.duration is not None
    local = now.astimezone(ZoneInfo(window.timezone))
    # Open when a start falls in (now - duration, now]: the first start after now - duration is not after now.
    began = next(CronSim(window.cron, local - window.duration))
    return began <= local


def paused(switches: Sequence[Switch], service: str) -> Switch | None:
    """The pause in force for `service` (its own, else the global one), if any."""
    for scope in (service, None):
        latest = next((s for s in reversed(switches) if s.service == scope and s.runbook is None), None)
        if latest is not None and latest.kind == "pause":
            return latest
    return None


def breaker_open(
    failures: Iterable[datetime],
    switches: Sequence[Switch],
    service: str,
    runbook: str,
    config: CircuitBreaker,
    now: datetime,
) -> str | None:
    """Why runbook `runbook` may not run on `service`: `config.failures` of its changes there failed
    within `config.within` of each other, the latest of them before `now`, and nobody resumed since."""
    resumed = max(
        (
            s.at
            for s in switches
            if s.kind == "resume" and s.service in (None, service) and s.runbook in (None, runbook)
        ),
        default=None,
    )
    counted = sorted(t for t in failures if t <= now and (resumed is None or t > resumed))
    k = config.failures
    for i in range(len(counted) - k + 1):
        if counted[i + k - 1] - counted[i] <= config.within:
            return (
                f"circuit breaker open: {k} failed changes of {runbook} on {service} within "
                f"{format_duration(config.within)} (resume with `aiops automation resume --service {service}`)"
            )
    return None


@dataclass
class Envelope:
    """What the core knows of silences, maintenance windows and the kill switch."""

    windows: Mapping[str, Sequence[MaintenanceWindow]] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    switches: tuple[Switch, ...] = ()

    def update(self, silences: Sequence[Silence], switches: Sequence[Switch]) -> bool:
        """Take the store's current silences and switches; True when they differ from what was known."""
        new = (tuple(sorted(silences, key=lambda s: s.id)), tuple(switches))
        if new == (self.silences, self.switches):
            return False
        self.silences, self.switches = new
        return True

    def muted(self, service: str, name: str, labels: Mapping[str, str], now: datetime) -> str:
        """Why a signal of `service` named `name` with `labels` is muted now, or "" if it is not. The
        synthetic labels `service` and `signal` can be matched like any other."""
        for window in self.windows.get(service, ()):
            if window_open(window, now):
                return f"maintenance window {window.name or _window_text(window)} of {service}"
        if not self.silences:
            return ""
        seen = {**labels, "service": service, "signal": name}
        for s in self.silences:
            if s.active(now) and s.matches(seen):
                return s.describe()
        return ""

    def any_muting(self) -> bool:
        return bool(self.silences or self.windows)


def _window_text(w: MaintenanceWindow) -> str:
    if w.cron is not None and w.duration is not None:
        return f"`{w.cron}` for {format_duration(w.duration)} ({w.timezone})"
    return f"{w.start:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M}"
