"""Offline scoring: stream CSVs of `timestamp,value` through the same detector code the live agent runs."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import detectors


class CsvFormatError(ValueError):
    """The input is not a `timestamp,value` CSV (or, when strict, not in time order)."""


def parse_ts(text: str) -> float:
    """ISO-8601 (`2014-04-01 00:00:00`, with or without zone; naive means UTC) or unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@dataclass
class Stream:
    """One input file: its rows as written, their parsed times and values, and the line numbers of rows
    whose timestamp is not after every earlier row's (out of order or repeated)."""

    path: Path
    rows: list[tuple[str, str]]
    ts: np.ndarray
    values: np.ndarray
    disordered: list[int] = field(default_factory=list)


def read_stream(path: Path, strict: bool = False) -> Stream:
    """Parse and check a `timestamp,value` CSV; errors name the file and line. An empty value is a missing
    point. Rows stay in file order: real exports repeat a timestamp or step back (a clock change, a
    merged file), and such rows are scored as they come and listed in `disordered`; `strict` refuses a
    timestamp that goes backwards instead (the live agent never sees time go backwards)."""
    rows: list[tuple[str, str]] = []
    ts: list[float] = []
    values: list[float] = []
    disordered: list[int] = []
    latest = -math.inf
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
            raise CsvFormatError(f"{path}:1: first line must be the header `timestamp,value`")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise CsvFormatError(f"{path}:{lineno}: expected `timestamp,value`, got {','.join(row)!r}")
            try:
                t = parse_ts(row[0])
                v = float(row[1]) if row[1].strip() else math.nan
            except ValueError as e:
                raise CsvFormatError(f"{path}:{lineno}: {e}") from None
            if t <= latest:
                if strict and t < latest:
                    raise CsvFormatError(f"{path}:{lineno}: timestamp goes backwards ({row[0]})")
                disordered.append(lineno)
            latest = max(latest, t)
            rows.append((row[0], row[1]))
            ts.append(t)
            values.append(v)
    return Stream(path, rows, np.array(ts, dtype=np.float64), np.array(values, dtype=np.float64), disordered)


def score_streams(
    streams: list[Stream], kind: str, params: dict[str, object], budget: float | None = None
) -> list[np.ndarray]:
    """Score every stream point by point, all streams in lockstep through one bank (one slot each).

    Slots never share state, so each score uses only its own stream's points before and at it; the
    bank never sees a stream's length ahead of time (exhausted streams are simply missing).
    """
    bank = detectors.build_bank(kind, params, n=len(streams), budget=budget)
    length = max((len(s.values) for s in streams), default=0)
    ts = np.full((length, len(streams)), np.nan)
    values = np.full((length, len(streams)), np.nan)
    for j, s in enumerate(streams):
        ts[: len(s.ts), j] = s.ts
        values[: len(s.values), j] = s.values
    scores = np.zeros((length, len(streams)))
    for i in range(length):
        scores[i] = bank.update(ts[i], values[i])
    return [scores[: len(s.values), j] for j, s in enumerate(streams)]


def write_scored(stream: Stream, scores: np.ndarray, dst: Path) -> None:
    """Write `timestamp,value,anomaly_score`; through a .partial file, so a failure leaves nothing that
    looks finished."""
    partial = dst.with_name(dst.name + ".partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for (t, v), s in zip(stream.rows, scores, strict=True):
                writer.writerow([t, v, f"{s:.6f}"])
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dst)


def detect_files(
    sources: list[Path],
    out_dir: Path,
    kind: str,
    params: dict[str, object],
    strict: bool = False,
    budget: float | None = None,
) -> list[Stream]:
    """Read every file first (a bad file fails before anything is written), score, write OUT/<name>;
    returns the streams read, for the caller's summary and warnings."""
    streams = [read_stream(p, strict) for p in sources]
    out_dir.mkdir(parents=True, exist_ok=True)
    for stream, scores in zip(streams, score_streams(streams, kind, params, budget), strict=True):
        write_scored(stream, scores, out_dir / stream.path.name)
    return streams


def disorder_warning(streams: list[Stream]) -> str | None:
    """One warning for every row, in every file, whose timestamp is out of order or repeated."""
    hit = [s for s in streams if s.disordered]
    if not hit:
        return None
    total = sum(len(s.disordered) for s in hit)
    where = ", ".join(f"{s.path.name}: {len(s.disordered)} (first at line {s.disordered[0]})" for s in hit)
    return (
        f"warning: {total} row(s) out of time order or repeating a timestamp ({where}); "
        "scored in file order (--strict refuses a timestamp that goes backwards)"
    )
