"""Options and helpers shared by every command."""

from __future__ import annotations

import getpass
import hmac
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agent.config import Config, load_config
from agent.config.models import ROLE_RANK
from agent.durations import parse_duration
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


def acting_user(config: Path, store: str | None, role: str = "operator") -> str:
    """Who a CLI write is recorded as: the API token in `AIOPS_TOKEN` names an operator (its role must
    allow the write), else `AIOPS_ACTOR`, else the login name; there is no free `--as`."""
    token = os.environ.get("AIOPS_TOKEN", "").strip()
    if token:
        if store is not None and not config.exists():
            fail("AIOPS_TOKEN is checked against api.tokens of the config; give -c CONFIG")
        for t in load(config).agent.api.tokens:
            if hmac.compare_digest(t.token.get_secret_value().encode(), token.encode()):
                if ROLE_RANK[t.role] < ROLE_RANK[role]:
                    fail(f"the token in AIOPS_TOKEN ({t.name}) has role {t.role}; this needs {role}")
                return f"cli:{t.name}"
        fail("AIOPS_TOKEN matches no token in api.tokens")
    name = os.environ.get("AIOPS_ACTOR", "").strip() or getpass.getuser()
    return f"cli:{name}"


def since_option(since: str) -> timedelta:
    """A positive `--since` duration, or exit 1 saying what is wrong with it."""
    try:
        span = parse_duration(since)
    except ValueError as e:
        fail(f"--since: {e}")
    if span <= timedelta(0):
        fail("--since: must be a positive duration")
    return span
