"""Building log sources from config: one small builder per source type, chosen from a registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.models import LogSourceConfig
from agent.logpipeline import position_file, resume_position, unreadable_state
from integrations.logs.files import FileSource
from integrations.logs.journald import JournaldSource
from integrations.logs.loki import LokiSource
from integrations.logs.records import LogSource

Checkpoint = dict[str, Any] | None


def _file(cfg: LogSourceConfig, base: Path, checkpoint: Checkpoint) -> LogSource:
    paths = [str((base / p).resolve()) if not Path(p).is_absolute() else p for p in cfg.paths]
    return FileSource(
        cfg.name,
        paths,
        start_at=cfg.start_at,
        max_line_bytes=cfg.max_line_bytes,
        labels=cfg.labels,
        checkpoint=checkpoint,
    )


def _loki(cfg: LogSourceConfig, base: Path, checkpoint: Checkpoint) -> LogSource:
    assert cfg.url is not None and cfg.query is not None  # the schema requires them for loki
    return LokiSource(
        cfg.name,
        cfg.url,
        cfg.query,
        delay_s=cfg.delay.total_seconds(),
        labels=cfg.labels,
        checkpoint=checkpoint,
    )


def _journald(cfg: LogSourceConfig, base: Path, checkpoint: Checkpoint) -> LogSource:
    directory = str((base / cfg.directory).resolve()) if cfg.directory else None
    return JournaldSource(
        cfg.name,
        units=list(cfg.units),
        matches=list(cfg.matches),
        directory=directory,
        labels=cfg.labels,
        checkpoint=checkpoint,
    )


BUILDERS: dict[str, Callable[[LogSourceConfig, Path, Checkpoint], LogSource]] = {
    "file": _file,
    "loki": _loki,
    "journald": _journald,
}


def build_source(cfg: LogSourceConfig, base: Path, state_dir: Path) -> LogSource:
    """`base` is the config directory: relative paths in the config are relative to agent.yaml. The
    source resumes from its saved position; one it cannot make sense of stops the start-up."""
    checkpoint = resume_position(cfg, state_dir)
    try:
        return BUILDERS[cfg.type](cfg, base, checkpoint)
    except ValueError as e:
        if checkpoint is None:
            raise
        raise unreadable_state(position_file(cfg, state_dir), "position", e) from None
