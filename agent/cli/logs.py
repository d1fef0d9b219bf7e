"""`aiops logs parse`: mine the templates of a log file offline, with the live agent's miner."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Annotated

import typer

from detectors.logs.miner import LogMiner

logs = typer.Typer(help="Log template mining.", no_args_is_help=True)


@logs.command("parse")
def parse(
    file: Annotated[
        Path,
        typer.Argument(help="A log file (any format; one message per line).", exists=True, dir_okay=False),
    ],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: LineId,EventId,EventTemplate.")],
) -> None:
    """Group the lines of FILE into templates; write each line's template id and final template."""
    started = time.perf_counter()
    miner = LogMiner()
    with file.open(encoding="utf-8", errors="replace", newline="") as f:
        matches = miner.mine_all(line.rstrip("\r\n") for line in f)
    took = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["LineId", "EventId", "EventTemplate"])
        for i, m in enumerate(matches, start=1):
            writer.writerow([i, m.template_id, miner.template(m.template_id)])
    partial.replace(out)
    templates = len({m.template_id for m in matches})
    rate = len(matches) / took if took > 0 else float("inf")
    typer.echo(
        f"{len(matches)} lines, {templates} templates, header style {miner.header.style}, "
        f"{took:.2f}s ({rate:,.0f} lines/s) -> {out}",
        err=True,
    )
