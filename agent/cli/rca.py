"""`aiops rca`: offline root-cause ranking over CSV series and a call graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import detectors
from agent.cli.common import fail
from agent.cli.output import emit_json, table
from agent.durations import parse_duration
from agent.offline import CsvFormatError, parse_ts
from agent.offline_rca import Window, rca_series, read_edges, read_series, service_of


def rca(
    series: Annotated[
        Path,
        typer.Option(
            "--series",
            help="Directory of <service>__<metric>.csv files (timestamp,value; history first).",
            exists=True,
            file_okay=False,
        ),
    ],
    graph: Annotated[
        Path, typer.Option("--graph", help="CSV with header caller,callee.", exists=True, dir_okay=False)
    ],
    at: Annotated[str, typer.Option("--at", help="When the symptom showed: unix seconds or ISO 8601.")],
    window: Annotated[str, typer.Option("--window", help="Evidence from T - window to T + window.")] = "10m",
    target: Annotated[
        str | None, typer.Option("--target", help="The service where the symptom shows.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"candidates": [...]} best first.')] = False,
) -> None:
    """Offline: rank root-cause candidates for a symptom at T, with the reasons, best first.

    Series scored with the default detector, or with the `robust` one when no series has the history the
    default needs to calibrate. A metric already anomalous when the window opens has no onset in it;
    latency/duration/errors count when they rise, availability/success when they fall, requests when they rise
    (docs/operations.md)."""
    try:
        when = parse_ts(at)
        span = parse_duration(window).total_seconds()
    except ValueError as e:
        fail(str(e))
    try:
        streams = read_series(series)
        edges = read_edges(graph)
    except CsvFormatError as e:
        fail(str(e))
    known = {s for e in edges for s in e} | {service_of(s.path) for s in streams}
    if target is not None and target not in known:
        fail(f"unknown --target {target!r}: not in the graph nor in the series")
    cands = rca_series(streams, edges, Window(when, span, span), target, detectors.DEFAULT_KIND, {})
    if as_json:
        emit_json({"candidates": [c.as_dict() for c in cands]})
        return
    if not cands:
        typer.echo("no candidates")
        return
    rows = [[i, c.service, f"{c.score:.3f}", "; ".join(c.reasons)] for i, c in enumerate(cands, start=1)]
    typer.echo(table(["#", "service", "score", "reasons"], rows))
