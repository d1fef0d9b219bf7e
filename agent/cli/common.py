"""Options and helpers shared by every command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agent.config import Config, load_config
from agent.errors import AiopsError, ConfigError
from agent.shell.store import Store

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Path to agent.yaml.")]
DEFAULT_CONFIG = Path("config/agent.yaml")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL; overrides the config (then the config is not read).")
]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("apscheduler", "urllib3", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load(config: Path) -> Config:
    """Load the config or exit 1 with every problem listed as file:line: field: message."""
    try:
        return load_config(config)
    except ConfigError as e:
        for issue in e.issues:
            typer.echo(str(issue), err=True)
        fail(f"{len(e.issues)} problem(s) in the configuration")


def open_store(config: Path, store: str | None) -> Store:
    """The store a command reviews or decides in: it must exist (only `aiops run` creates one)."""
    url = store or load(config).agent.store.url
    try:
        return Store.open(url, create=False)
    except AiopsError as e:
        fail(str(e))
