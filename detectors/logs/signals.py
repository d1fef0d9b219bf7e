"""Log anomalies: a template never seen before, a template whose rate spikes, a burst of error lines.

Counts are kept per time bucket. A template's baseline is the exponentially weighted mean of its
per-bucket counts (empty buckets included), learnt only from normal buckets; a bucket is a spike when
its count is at least `spike_min`, `spike_ratio` times the baseline, and `spike_z` Poisson standard
deviations above it. A spike is reported as soon as the running count of the current bucket crosses
that bar, not only when the bucket closes, and cleared by the first normal bucket after it. A new
template is a point event: reported once, cleared when its bucket closes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from detectors.calibration import z_to_score
from detectors.logs.miner import Match

NEW_TEMPLATE, RATE_SPIKE, ERROR_BURST = "new_template", "rate_spike", "error_burst"
_ERROR_LEVELS = frozenset({"error", "critical"})
_ERRORS = -1  # the pseudo-template under which error-level lines are counted
_GAP_CAP = 64  # beyond this many empty buckets, decay baselines in closed form


@dataclass(frozen=True)
class LogAnomaly:
    """What was seen, with the evidence an on-call engineer needs to judge it."""

    kind: str
    at: float
    template_id: int | None
    template: str
    count: int
    expected: float
    score: float
    samples: tuple[str, ...]


@dataclass(frozen=True)
class LogClear:
    """Positive evidence that the anomaly `kind` of `template_id` (None: error lines) is over."""

    kind: str
    at: float
    template_id: int | None


@dataclass
class _Counter:
    template: str
    baseline: float = 0.0
    age: int = 0  # closed buckets since first seen
    count: int = 0  # lines in the open bucket
    samples: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    spiking: bool = False  # already reported in the open bucket
    open: set[str] = field(default_factory=set)  # anomaly kinds awaiting their clear


class LogSignalDetector:
    """One per log source: feed every mined line to `observe`, call `tick` to close buckets on time.

    >>> from detectors.logs.miner import Match
    >>> d = LogSignalDetector(bucket=10, warmup=0, warmup_lines=0, min_age=2, spike_min=5)
    >>> quiet = Match(1, "ok", "info", False)
    >>> for t in range(0, 60, 5):
    ...     _ = d.observe(float(t), "ok", quiet)
    >>> [a.kind for t in range(60, 70) for a in d.observe(60 + t / 10, "boom", Match(2, "boom", "error", t == 60))]
    ['new_template', 'error_burst']
    """

    def __init__(
        self,
        bucket: float = 60.0,
        warmup: float = 600.0,
        warmup_lines: int = 200,
        spike_z: float = 5.0,
        spike_min: int = 10,
        spike_ratio: float = 3.0,
        alpha: float = 0.1,
        min_age: int = 5,
        new_templates_per_hour: int = 20,
    ):
        self.bucket, self.warmup, self.warmup_lines = bucket, warmup, warmup_lines
        self.spike_z, self.spike_min, self.spike_ratio = spike_z, spike_min, spike_ratio
        self.alpha, self.min_age, self.new_templates_per_hour = alpha, min_age, new_templates_per_hour
        # error lines are counted from the start, so a burst has a baseline even when errors were rare
        self._counters: dict[int, _Counter] = {_ERRORS: _Counter("error-level lines")}
        self._bucket: int | None = None  # index of the open bucket
        self._first: float | None = None
        self._last: float = -math.inf
        self._lines = 0
        self._new_recent: deque[float] = deque()
        self._pending: list[LogClear] = []

    @property
    def warm(self) -> bool:
        return (
            self._lines >= self.warmup_lines
            and self._first is not None
            and self._last - self._first >= self.warmup
        )

    def observe(self, ts: float, line: str, match: Match, level: str | None = None) -> list[LogAnomaly]:
        """Count one line; return the anomalies it reveals right away."""
        self._pending.extend(self._advance(ts))  # clears surface through tick()
        if self._first is None:
            self._first = ts
        self._last = max(self._last, ts)
        self._lines += 1
        out: list[LogAnomaly] = []
        if match.new and self.warm and self._allow_new(ts):
            self._counter(match.template_id, match.template).open.add(NEW_TEMPLATE)
            out.append(LogAnomaly(NEW_TEMPLATE, ts, match.template_id, match.template, 1, 0.0, 1.0, (line,)))
        out += self._count(match.template_id, match.template, line, ts, RATE_SPIKE)
        if (level or match.level) in _ERROR_LEVELS:
            out += self._count(_ERRORS, "error-level lines", line, ts, ERROR_BURST)
        return out

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state (baselines, the open bucket, pending clears), so a restarted or
        standby agent resumes with its baselines instead of warming up again."""
        return {
            "version": 1,
            "counters": [
                [tid, c.template, c.baseline, c.age, c.count, list(c.samples), c.spiking, sorted(c.open)]
                for tid, c in self._counters.items()
            ],
            "bucket": self._bucket,
            "first": self._first,
            "last": self._last if math.isfinite(self._last) else None,
            "lines": self._lines,
            "new_recent": list(self._new_recent),
            "pending": [[c.kind, c.at, c.template_id] for c in self._pending],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Adopt a `state()`; raises ValueError (naming what is wrong) on anything else."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("unsupported log detector state")
        try:
            counters = {}
            for tid, template, baseline, age, count, samples, spiking, open_ in state["counters"]:
                c = _Counter(str(template), float(baseline), int(age), int(count))
                c.samples.extend(str(x) for x in samples)
                c.spiking, c.open = bool(spiking), {str(k) for k in open_}
                counters[int(tid)] = c
            bucket = state["bucket"]
            first = state["first"]
            last = state["last"]
            self._counters = counters
            self._bucket = None if bucket is None else int(bucket)
            self._first = None if first is None else float(first)
            self._last = -math.inf if last is None else float(last)
            self._lines = int(state["lines"])
            self._new_recent = deque(float(t) for t in state["new_recent"])
            self._pending = [
                LogClear(str(k), float(at), None if t is None else int(t)) for k, at, t in state["pending"]
            ]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed log detector state: {e}") from None

    def tick(self, now: float) -> list[LogClear]:
        """Close the buckets that ended before `now`; return the anomalies that are over."""
        clears, self._pending = self._pending + self._advance(now), []
        return clears

    def _advance(self, ts: float) -> list[LogClear]:
        index = math.floor(ts / self.bucket)
        if self._bucket is None:
            self._bucket = index
            return []
        if index <= self._bucket:
            return []
        clears = self._close(self._bucket)
        empty = index - self._bucket - 1
        if empty:
            clears += self._close_empty(self._bucket + 1, empty)
        self._bucket = index
        return clears

    def _allow_new(self, ts: float) -> bool:
        """At most `new_templates_per_hour` reports: a source that keeps inventing templates is noisy."""
        while self._new_recent and ts - self._new_recent[0] > 3600:
            self._new_recent.popleft()
        if len(self._new_recent) >= self.new_templates_per_hour:
            return False
        self._new_recent.append(ts)
        return True

    def _counter(self, tid: int, template: str) -> _Counter:
        c = self._counters.get(tid)
        if c is None:
            c = self._counters[tid] = _Counter(template)
        c.template = template
        return c

    def _count(self, tid: int, template: str, line: str, ts: float, kind: str) -> list[LogAnomaly]:
        c = self._counter(tid, template)
        c.count += 1
        c.samples.append(line)
        if c.spiking or not self.warm or c.age < self.min_age or not self._is_spike(c):
            return []
        c.spiking = True
        c.open.add(kind)
        z = (c.count - c.baseline) / math.sqrt(c.baseline + 1.0)
        return [
            LogAnomaly(
                kind,
                ts,
                None if tid == _ERRORS else tid,
                c.template,
                c.count,
                c.baseline,
                z_to_score(z),
                tuple(c.samples),
            )
        ]

    def _is_spike(self, c: _Counter) -> bool:
        return (
            c.count >= self.spike_min
            and c.count >= self.spike_ratio * c.baseline
            and (c.count - c.baseline) / math.sqrt(c.baseline + 1.0) >= self.spike_z
        )

    def _close(self, index: int) -> list[LogClear]:
        at = (index + 1) * self.bucket
        clears = []
        for tid, c in self._counters.items():
            spiked = c.age >= self.min_age and self._is_spike(c)
            if not spiked:
                c.baseline = c.count if c.age == 0 else c.baseline + self.alpha * (c.count - c.baseline)
                clears += [LogClear(k, at, None if tid == _ERRORS else tid) for k in sorted(c.open)]
                c.open.clear()
            c.age += 1
            c.count = 0
            c.spiking = False
            c.samples.clear()
        return clears

    def _close_empty(self, first: int, n: int) -> list[LogClear]:
        """`n` empty buckets from `first`: one normal bucket clears everything; baselines decay."""
        clears = self._close(first)
        rest = n - 1
        if rest:
            keep = (1.0 - self.alpha) ** min(rest, 10 * _GAP_CAP)
            for c in self._counters.values():
                c.baseline *= keep
                c.age += rest
        return clears
