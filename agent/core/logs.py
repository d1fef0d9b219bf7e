"""One log stream inside the core: lines in, templates mined, anomalies judged, signals out.

Reading the lines is the shell's job; this is the pure part. Its state (templates, the detector's
baselines) is saved to the store with the source's position, in the transaction that records what the
lines caused, so a restarted or standby agent resumes exactly where the last commit left off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.config.models import LogSourceConfig
from agent.core.domain import Severity, Signal, SignalClear, fingerprint
from agent.core.topology import UNMAPPED, ServiceMap
from agent.errors import StateError
from detectors.logs.miner import LogMiner
from detectors.logs.signals import (
    ERROR_BURST,
    NEW_TEMPLATE,
    RATE_SPIKE,
    LogAnomaly,
    LogClear,
    LogSignalDetector,
)
from integrations.logs.records import LogRecord

SIGNAL_NAMES = {
    NEW_TEMPLATE: "log_new_template",
    RATE_SPIKE: "log_rate_spike",
    ERROR_BURST: "log_error_burst",
}
LEARN_WAIT_POLLS = 10  # polls to wait for enough lines to learn a new source's header style
SNAPSHOT_EVERY = timedelta(minutes=1)  # how often the detector's baselines are saved


@dataclass
class LogPoll:
    """What one read found. Every log anomaly is an event of its own: each signal is also its onset."""

    signals: list[Signal] = field(default_factory=list)
    lines: int = 0
    new_templates: int = 0


class LogStream:
    """The miner and detector of one log source, and the service its lines belong to."""

    def __init__(self, config: LogSourceConfig, services: ServiceMap):
        self.config = config
        d = config.detection
        self.detector = LogSignalDetector(
            bucket=d.bucket.total_seconds(),
            warmup=d.warmup.total_seconds(),
            warmup_lines=d.warmup_lines,
            spike_z=d.spike_z,
            spike_min=d.spike_min,
            spike_ratio=d.spike_ratio,
            new_templates_per_hour=d.new_templates_per_hour,
        )
        self.miner = LogMiner()
        self.labels = {**config.labels, "log_source": config.name}
        self.service = config.service or services.service_for(self.labels) or UNMAPPED
        self._severity = {
            NEW_TEMPLATE: d.new_template_severity,
            RATE_SPIKE: d.rate_spike_severity,
            ERROR_BURST: d.error_burst_severity,
        }
        self._waited = 0
        self._snapshot_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def restore(self, state: Mapping[str, Any]) -> None:
        """Adopt saved templates and baselines; an unreadable part stops the start, naming it."""
        templates = state.get("templates")
        if templates is not None:
            try:
                self.miner = LogMiner.from_state(dict(templates))
            except (ValueError, KeyError, TypeError) as e:
                raise unreadable_state(self.name, "templates", e) from None
        baselines = state.get("detector")
        if baselines is not None:
            try:
                self.detector.restore(dict(baselines))
            except ValueError as e:
                raise unreadable_state(self.name, "detector", e) from None

    def read(self, records: Sequence[LogRecord], now: datetime) -> LogPoll | None:
        """Mine and judge lines; None when they were not used (the source keeps them for next time)."""
        learning = self.miner.header.style is None
        if learning and len(records) < self.miner.learn_lines and self._waited < LEARN_WAIT_POLLS:
            self._waited += 1  # not committed: the same lines come back, with more, next time
            return None
        out = LogPoll(lines=len(records))
        mined: list[tuple[LogRecord, Any]] = []
        for record in records:
            mined += self.miner.add(record.line, record)
        mined += self.miner.flush()
        for record, match in mined:
            ts = record.ts if record.ts is not None else now.timestamp()
            out.new_templates += match.new
            for anomaly in self.detector.observe(ts, record.line, match, record.level):
                out.signals.append(self._signal(anomaly))
        return out

    def saved(self, checkpoint: Mapping[str, Any], new_templates: bool, now: datetime) -> dict[str, Any]:
        """What to store with a read: the position always, templates when new ones appeared (or none
        were ever saved), baselines every SNAPSHOT_EVERY."""
        out: dict[str, Any] = {"position": dict(checkpoint)}
        if new_templates or self._snapshot_at is None:
            out["templates"] = self.miner.state()
        if self._snapshot_at is None or now - self._snapshot_at >= SNAPSHOT_EVERY:
            out["detector"] = self.detector.state()
            self._snapshot_at = now
        return out

    def tick(self, now: datetime) -> list[SignalClear]:
        return [self._clear(c) for c in self.detector.tick(now.timestamp())]

    def _labels(self, template_id: int | None) -> dict[str, str]:
        return (
            {**self.labels, "template_id": str(template_id)} if template_id is not None else dict(self.labels)
        )

    def _signal(self, a: LogAnomaly) -> Signal:
        return Signal(
            name=SIGNAL_NAMES[a.kind],
            service=self.service,
            source="logs",
            labels=self._labels(a.template_id),
            at=datetime.fromtimestamp(a.at, UTC),
            value=float(a.count),
            score=a.score,
            detector="logs",
            severity=Severity(self._severity[a.kind]),
            expected=a.expected,
            details={"template": a.template, "samples": list(a.samples), "count": a.count},
        )

    def _clear(self, c: LogClear) -> SignalClear:
        return SignalClear(
            fingerprint(SIGNAL_NAMES[c.kind], self._labels(c.template_id)), datetime.fromtimestamp(c.at, UTC)
        )


def unreadable_state(source: str, part: str, error: Exception) -> StateError:
    """Never silently start over: lost templates change ids, a lost position re-reads or skips lines."""
    return StateError(
        f"log source {source}: cannot read its saved {part} ({type(error).__name__}: {error}); it is the "
        f"row 'logs:{source}:{part}' of the store's source_state table: delete it to start the source afresh"
    )
