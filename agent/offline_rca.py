"""Offline root-cause ranking: score `DIR/<service>__<metric>.csv` files with the project's detectors, turn the
scores around the symptom into per-service evidence, and rank with the same code the live agent uses."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.core.rca import Candidate, Evidence, Weights, rank
from agent.offline import CsvFormatError, Stream, read_stream, score_streams


@dataclass(frozen=True)
class Window:
    """Evidence comes from [at - before, at + after]; data after `at + after` is never read into a detector."""

    at: float
    before: float = 600.0
    after: float = 600.0


def read_edges(path: Path) -> list[tuple[str, str]]:
    """`caller,callee` rows under that header; errors name the file and line."""
    edges: list[tuple[str, str]] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["caller", "callee"]:
            raise CsvFormatError(f"{path}:1: first line must be the header `caller,callee`")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise CsvFormatError(f"{path}:{lineno}: expected `caller,callee`, got {','.join(row)!r}")
            edges.append((row[0].strip(), row[1].strip()))
    return edges


def service_of(path: Path) -> str:
    """`<service>__<metric>.csv` -> service; a file without `__` is a service with one metric."""
    stem = path.stem
    return stem.rsplit("__", 1)[0] if "__" in stem else stem


def read_series(directory: Path) -> list[Stream]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise CsvFormatError(f"{directory}: no `<service>__<metric>.csv` files")
    return [read_stream(p) for p in files]


def evidence_from_scores(
    streams: list[Stream], scores: list[np.ndarray], window: Window, threshold: float
) -> list[Evidence]:
    """Per service: the first time any metric crossed `threshold` inside the window, the peak score there, and
    how many of its metrics crossed."""
    per: dict[str, list[tuple[float | None, float]]] = {}
    lo, hi = window.at - window.before, window.at + window.after
    for stream, sc in zip(streams, scores, strict=True):
        inside = (stream.ts >= lo) & (stream.ts <= hi)
        ts, s = stream.ts[inside], np.nan_to_num(sc[inside], nan=0.0)
        hits = np.flatnonzero(s >= threshold)
        onset = float(ts[hits[0]]) if hits.size else None
        per.setdefault(service_of(stream.path), []).append((onset, float(s.max()) if s.size else 0.0))
    out = []
    for service, metrics in per.items():
        onsets = [o for o, _ in metrics if o is not None]
        out.append(
            Evidence(
                service,
                onset=min(onsets) if onsets else None,
                peak=max(p for _, p in metrics),
                anomalous=len(onsets),
                metrics=len(metrics),
            )
        )
    return out


def score_until(streams: list[Stream], end: float, kind: str, params: dict[str, object]) -> list[np.ndarray]:
    """Score each stream up to `end` only, so nothing after the window reaches a detector."""
    cut = [Stream(s.path, s.rows, s.ts[s.ts <= end], s.values[s.ts <= end]) for s in streams]
    return score_streams(cut, kind, params) if cut else []


def rca_series(
    streams: list[Stream],
    edges: list[tuple[str, str]],
    window: Window,
    target: str | None,
    kind: str,
    params: dict[str, object],
    weights: Weights | None = None,
) -> list[Candidate]:
    w = weights or Weights()
    scores = score_until(streams, window.at + window.after, kind, params)
    cut = [
        Stream(s.path, s.rows, s.ts[: len(sc)], s.values[: len(sc)])
        for s, sc in zip(streams, scores, strict=True)
    ]
    return rank(evidence_from_scores(cut, scores, window, w.threshold), edges, target=target, weights=w)
