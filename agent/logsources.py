"""Building log sources from config: one small builder per source type, chosen from a registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.config.models import LogSourceConfig
from agent.logpipeline import resume_position
from integrations.logs.files import FileSource
from integrations.logs.journald import JournaldSource
from integrations.logs.loki import LokiSource
from integrations.logs.records import LogSource


def _file(cfg: LogSourceConfig, base: Path, state_dir: Path) -> LogSource:
    paths = [str((base / p).resolve()) if not Path(p).is_absolute() else p for p in cfg.paths]
    return FileSource(
        cfg.name,
        paths,
        start_at=cfg.start_at,
        max_line_bytes=cfg.max_line_bytes,
        labels=cfg.labels,
        checkpoint=resume_position(cfg, state_dir),
    )


def _loki(cfg: LogSourceConfig, base: Path, state_dir: Path) -> LogSource:
    assert cfg.url is not None and cfg.query is not None  # the schema requires them for loki
    return LokiSource(
        cfg.name,
        cfg.url,
        cfg.query,
        delay_s=cfg.delay.total_seconds(),
        labels=cfg.labels,
        checkpoint=resume_position(cfg, state_dir),
    )


def _journald(cfg: LogSourceConfig, base: Path, state_dir: Path) -> LogSource:
    directory = str((base / cfg.directory).resolve()) if cfg.directory else None
    return JournaldSource(
        cfg.name,
        units=list(cfg.units),
        matches=list(cfg.matches),
        directory=directory,
        labels=cfg.labels,
        checkpoint=resume_position(cfg, state_dir),
    )


BUILDERS: dict[str, Callable[[LogSourceConfig, Path, Path], LogSource]] = {
    "file": _file,
    "loki": _loki,
    "journald": _journald,
}


def build_source(cfg: LogSourceConfig, base: Path, state_dir: Path) -> LogSource:
    """`base` is the config directory: relative paths in the config are relative to agent.yaml."""
    return BUILDERS[cfg.type](cfg, base, state_dir)
