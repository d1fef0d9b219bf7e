"""Offline root-cause ranking: score `DIR/<service>__<metric>.csv` files with the project's detectors, turn the
scores around the symptom into per-service evidence, and rank with the same code the live agent uses.

The calibrated default detector says nothing until it has seen a few hundred points of a series. When no
series has that much history before the window, every series is scored with `SHORT_HISTORY_KIND` instead
(rolling median / MAD z-score, speaking after 20 points): one detector, so one score scale, per ranking.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import detectors
from agent.core.rca import Candidate, Evidence, Weights, rank
from agent.offline import CsvFormatError, Stream, read_stream, score_streams

SHORT_HISTORY_KIND = "robust"


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


def metric_of(path: Path) -> str:
    """`<service>__<metric>.csv` -> metric; empty for a file without `__`."""
    stem = path.stem
    return stem.rsplit("__", 1)[1] if "__" in stem else ""


HARMFUL = (  # metric-name keyword -> the direction that is trouble; the first keyword found decides
    ("latency", 1),
    ("duration", 1),
    ("error", 1),
    ("availability", -1),
    ("success", -1),
    ("request", 1),
)


def harmful_direction(metric: str) -> int:
    """+1 when only a rise is trouble (latency, duration, errors; requests: an overload; a fall in traffic is
    the callers' doing, not this service's), -1 when only a fall is (availability, success), 0 when unknown."""
    name = metric.lower()
    return next((sign for word, sign in HARMFUL if word in name), 0)


def read_series(directory: Path) -> list[Stream]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise CsvFormatError(f"{directory}: no `<service>__<metric>.csv` files")
    return [read_stream(p) for p in files]


def evidence_from_scores(
    streams: list[Stream], scores: list[np.ndarray], window: Window, threshold: float
) -> list[Evidence]:
    """Per service: the first time any metric crossed `threshold` inside the window, the peak score there, and
    how many of its metrics crossed.

    A metric already anomalous at its first point in the window has no onset there: its trouble began at or
    before the window opened, so it is a standing condition, not a turn for the worse that can explain the
    symptom (its peak still counts as strength). Widen the window when a cause may start that early.
    A metric of a known kind counts only where it moved in its harmful direction (`harmful_direction`)."""
    per: dict[str, list[tuple[float | None, float]]] = {}
    lo, hi = window.at - window.before, window.at + window.after
    for stream, sc in zip(streams, scores, strict=True):
        inside = (stream.ts >= lo) & (stream.ts <= hi) & np.isfinite(stream.values)
        ts, s = stream.ts[inside], np.nan_to_num(sc[inside], nan=0.0)
        harm = harmful_direction(metric_of(stream.path))
        history = stream.values[(stream.ts < lo) & np.isfinite(stream.values)]
        if harm and history.size:
            s = np.where(np.sign(stream.values[inside] - np.median(history)) == harm, s, 0.0)
        hits = np.flatnonzero(s >= threshold)
        onset = float(ts[hits[0]]) if hits.size and hits[0] > 0 else None
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


def detector_for(
    streams: list[Stream], window: Window, kind: str, params: dict[str, object]
) -> tuple[str, dict[str, object]]:
    """`kind` when some series has at least its warm-up of points before the window, else the short-history
    detector: a calibrated detector that never warmed would leave every score at 0."""
    start = window.at - window.before
    history = max((int(np.isfinite(s.values[s.ts < start]).sum()) for s in streams), default=0)
    if history >= detectors.build(kind, params).warmup:
        return kind, params
    return SHORT_HISTORY_KIND, {}


def score_window(
    streams: list[Stream], window: Window, kind: str, params: dict[str, object]
) -> list[np.ndarray]:
    """Scores up to the window's end, by `detector_for`'s choice of detector."""
    return score_until(streams, window.at + window.after, *detector_for(streams, window, kind, params))


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
    scores = score_window(streams, window, kind, params)
    cut = [
        Stream(s.path, s.rows, s.ts[: len(sc)], s.values[: len(sc)])
        for s, sc in zip(streams, scores, strict=True)
    ]
    return rank(evidence_from_scores(cut, scores, window, w.threshold), edges, target=target, weights=w)
