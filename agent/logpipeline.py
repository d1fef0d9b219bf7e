"""One log source end to end: read lines, mine templates, detect anomalies, turn them into signals.

The source's position and the miner's templates are saved only after a batch has been processed, so a
crash re-reads those lines instead of losing them, and template ids survive restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config.models import LogSourceConfig
from agent.domain import Severity, Signal, SignalClear, fingerprint
from agent.errors import StateError
from agent.topology import UNMAPPED, ServiceMap
from detectors.logs.miner import LogMiner
from detectors.logs.signals import (
    ERROR_BURST,
    NEW_TEMPLATE,
    RATE_SPIKE,
    LogAnomaly,
    LogClear,
    LogSignalDetector,
)
from integrations.logs.checkpoints import load_json, save_json
from integrations.logs.records import LogRecord, LogSource

log = logging.getLogger(__name__)

SIGNAL_NAMES = {
    NEW_TEMPLATE: "log_new_template",
    RATE_SPIKE: "log_rate_spike",
    ERROR_BURST: "log_error_burst",
}
_LEARN_WAIT_POLLS = 10  # polls to wait for enough lines to learn a new source's header style


@dataclass
class LogPoll:
    """What one poll found. Every log anomaly is an event of its own: each signal is also its onset."""

    signals: list[Signal] = field(default_factory=list)
    lines: int = 0
    new_templates: int = 0


class LogPipeline:
    def __init__(self, config: LogSourceConfig, source: LogSource, state_dir: Path, services: ServiceMap):
        self.config = config
        self.source = source
        self.state_dir = state_dir
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
        self.miner = self._load_miner()
        self.labels = {**config.labels, "log_source": config.name}
        self.service = config.service or services.service_for(self.labels) or UNMAPPED
        self._severity = {
            NEW_TEMPLATE: d.new_template_severity,
            RATE_SPIKE: d.rate_spike_severity,
            ERROR_BURST: d.error_burst_severity,
        }
        self._waited = 0

    @property
    def name(self) -> str:
        return self.config.name

    def templates_file(self) -> Path:
        return self.state_dir / f"{self.config.name}.templates.json"

    def position_file(self) -> Path:
        return position_file(self.config, self.state_dir)

    def _load_miner(self) -> LogMiner:
        path = self.templates_file()
        try:
            state = load_json(path)
            if state is None:
                return LogMiner()
            miner = LogMiner.from_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise unreadable_state(path, "templates", e) from None
        log.info("log source %s: %d templates restored", self.config.name, len(miner.drain.id_to_cluster))
        return miner

    def poll(self, now: datetime) -> tuple[LogPoll, Any]:
        """Read and judge new lines; returns the result and a token to pass to `commit` once the
        result is safely recorded."""
        batch = self.source.read(self.config.max_lines_per_poll)
        learning = self.miner.header.style is None
        if learning and len(batch.records) < self.miner.learn_lines and self._waited < _LEARN_WAIT_POLLS:
            self._waited += 1  # not committed: the same lines come back, with more, next time
            return LogPoll(), None
        out = LogPoll(lines=len(batch.records))
        mined: list[tuple[LogRecord, Any]] = []
        for record in batch.records:
            mined += self.miner.add(record.line, record)
        mined += self.miner.flush()
        for record, match in mined:
            ts = record.ts if record.ts is not None else now.timestamp()
            out.new_templates += match.new
            for anomaly in self.detector.observe(ts, record.line, match, record.level):
                out.signals.append(self._signal(anomaly))
        return out, batch

    def commit(self, batch: Any, new_templates: int) -> None:
        """The batch is recorded: move the source past it and save positions (and templates if new ones)."""
        if batch is None:
            return
        if new_templates or not self.templates_file().exists():
            save_json(self.templates_file(), self.miner.state())
        self.source.commit(batch)
        save_json(self.position_file(), self.source.checkpoint())

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


def resume_position(config: LogSourceConfig, state_dir: Path) -> dict[str, Any] | None:
    """The saved position of a source, for its constructor."""
    path = position_file(config, state_dir)
    try:
        data = load_json(path)
    except ValueError as e:
        raise unreadable_state(path, "position", e) from None
    return data if isinstance(data, dict) else None


def position_file(config: LogSourceConfig, state_dir: Path) -> Path:
    return state_dir / f"{config.name}.position.json"


def unreadable_state(path: Path, what: str, error: Exception) -> StateError:
    """Never silently start over: a lost position re-reads or skips lines, lost templates change ids."""
    return StateError(
        f"{path}: cannot read this log source's saved {what} ({type(error).__name__}: {error}); "
        "move the file away to start the source afresh"
    )
