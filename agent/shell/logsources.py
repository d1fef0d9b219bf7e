"""Building log sources from config: one small builder per source type, chosen from a registry, resumed
from the position saved in the store (or, once, from the state files an older agent kept)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.models import LogSourceConfig
from agent.core.logs import unreadable_state
from agent.errors import StateError
from detectors.logs.miner import LogMiner
from integrations.logs.checkpoints import load_json
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


def build_source(cfg: LogSourceConfig, base: Path, saved: Checkpoint) -> LogSource:
    """`base` is the config directory: relative paths in the config are relative to agent.yaml. The
    source resumes from `saved`, its position in the store; one it cannot make sense of stops the start."""
    try:
        return BUILDERS[cfg.type](cfg, base, saved)
    except ValueError as e:
        if saved is None:
            raise
        raise unreadable_state(cfg.name, "position", e) from None


LEGACY_FILES = {"position": "{name}.position.json", "templates": "{name}.templates.json"}


def legacy_state(cfg: LogSourceConfig, state_dir: Path, base: Path) -> dict[str, dict[str, Any]]:
    """What an agent before schema 3 saved in `state_dir` for this source, checked (a file it cannot
    use stops the start, naming the file) and ready to import into the store once, so an upgrade
    keeps positions and template ids."""
    out: dict[str, dict[str, Any]] = {}
    for part, pattern in LEGACY_FILES.items():
        path = state_dir / pattern.format(name=cfg.name)
        try:
            data = load_json(path)
            if data is None:
                continue
            if part == "templates":
                LogMiner.from_state(data)
            else:
                build_source(cfg, base, data).close()
        except (ValueError, KeyError, TypeError, StateError) as e:
            raise StateError(
                f"{path}: cannot read this log source's saved {part} ({type(e).__name__}: {e}); "
                "move the file away to start the source afresh"
            ) from None
        out[f"logs:{cfg.name}:{part}"] = data
    return out
