"""Offline scoring: stream a CSV of `timestamp,value` through the same detector code the live agent runs."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from detectors import Detector


class CsvFormatError(ValueError):
    """The input is not a `timestamp,value` CSV in time order."""


def parse_ts(text: str) -> float:
    """ISO-8601 (`2014-04-01 00:00:00`, with or without zone; naive means UTC) or unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def detect_file(src: Path, dst: Path, make_detector: Callable[[], Detector]) -> int:
    """Score every row of `src` in order and write `timestamp,value,anomaly_score` to `dst`; returns rows.

    Each score uses only the rows before and at it: the detector is fed one point at a time and never
    sees the file's length. Rows must be in time order (the live agent never sees time go backwards).
    """
    partial = dst.with_name(dst.name + ".partial")
    try:
        rows = _score(src, partial, make_detector())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dst)
    return rows


def _score(src: Path, dst: Path, detector: Detector) -> int:
    """Write the scored copy; a file that fails half-way is removed by the caller, never left looking done."""
    rows = 0
    last = -math.inf
    with src.open(newline="", encoding="utf-8") as fin, dst.open("w", newline="", encoding="utf-8") as fout:
        reader = csv.reader(fin)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
            raise CsvFormatError(f"{src}:1: first line must be the header `timestamp,value`")
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise CsvFormatError(f"{src}:{lineno}: expected `timestamp,value`, got {','.join(row)!r}")
            try:
                ts = parse_ts(row[0])
                value = float(row[1]) if row[1].strip() else math.nan
            except ValueError as e:
                raise CsvFormatError(f"{src}:{lineno}: {e}") from None
            if ts < last:
                raise CsvFormatError(f"{src}:{lineno}: timestamp goes backwards ({row[0]})")
            last = ts
            score = detector.update(ts, value)
            writer.writerow([row[0], row[1], f"{score:.6f}"])
            rows += 1
    return rows
