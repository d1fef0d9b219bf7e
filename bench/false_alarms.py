"""Realised false-alarm rate of the default detector against `detection.false_alarm_budget`.

Long stretches of data with nothing labelled in them, scored as `aiops detect` scores them (all series in
lockstep through one bank, one point at a time):

- NAB: every shared file outside its labelled anomaly windows, after the scorer's probation (the first
  15% of each file, where detectors are still learning);
- PetShop: every column of the two `noissue` runs (5-minute CloudWatch metrics of a healthy system),
  after the detector's own warm-up.

An alarm is a point whose score rises through the alert threshold (0.8) from below: what opens an
anomalous episode in the agent. The rate is alarms per series-day of judged data, for the shipped
budget and, to show the line follows the budget, a fifth of it and four times it.

    .venv/bin/python -m bench.false_alarms [--budgets 0.01,0.05,0.2] [--json FILE]

Skips cleanly (exit 0) when the shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import detectors
from agent.offline import Stream, parse_ts, score_streams
from bench.nab import NAB, load_streams
from bench.rca import DEFAULT_DATA as PETSHOP
from bench.rca import read_wide
from detectors.bank import ALARM_SCORE, DEFAULT_BUDGET

PROBATION = 0.15  # NAB's scorer ignores this share of each file
MAX_GAP = 3600.0  # a gap in a series counts as at most an hour of exposure


@dataclass(frozen=True)
class Corpus:
    name: str
    streams: list[Stream]
    normal: list[np.ndarray]  # per stream: which points are normal and judged


def nab_corpus() -> Corpus:
    streams = load_streams()
    normal = nab_normals(streams)
    return Corpus("NAB (outside labelled windows)", list(streams.values()), list(normal.values()))


def nab_normals(streams: dict[str, Stream]) -> dict[str, np.ndarray]:
    """Each NAB file's normal stretches (see `nab_normal`), by its path under the data directory."""
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    return {rel: nab_normal(s, labels[rel]) for rel, s in streams.items()}


def nab_normal(s: Stream, windows: list[list[str]]) -> np.ndarray:
    """The points of a NAB file outside its labelled windows and after the scorer's probation."""
    ok = np.ones(len(s.ts), dtype=bool)
    for start, end in windows:
        ok &= ~((s.ts >= parse_ts(start)) & (s.ts <= parse_ts(end)))
    ok[: int(PROBATION * len(s.ts))] = False
    return ok


def alarms_and_days(ts: np.ndarray, scores: np.ndarray, normal: np.ndarray) -> tuple[int, float]:
    """Alarms (scores rising through the alarm score) among the `normal` points, and the series-days
    those points cover (a gap counts for at most MAX_GAP)."""
    flagged = scores >= ALARM_SCORE
    onset = flagged & ~np.r_[False, flagged[:-1]]
    gaps = np.minimum(np.diff(ts, prepend=ts[0]), MAX_GAP)
    return int((onset & normal).sum()), float(gaps[normal].sum()) / 86400.0


def petshop_corpus() -> Corpus:
    warmup = detectors.DetectorBank(1).warmup
    streams, normal = [], []
    for path in sorted(PETSHOP.glob("*/noissue/metrics.csv")):
        for key, cells in read_wide(path).items():
            ts = np.array([t for t, _ in cells])
            values = np.array([float(c) if c.strip() else np.nan for _, c in cells])
            if np.isfinite(values).sum() <= warmup:
                continue
            ok = np.isfinite(values)
            ok[: int(np.flatnonzero(ok)[warmup])] = False  # the detector's warm-up, in its own points
            rows = [(f"{t:.0f}", c) for t, c in cells]
            streams.append(Stream(path.parent / "__".join(key), rows, ts, values))
            normal.append(ok)
    return Corpus("PetShop noissue", streams, normal)


def realised(corpus: Corpus, budget: float) -> dict[str, Any]:
    started = time.perf_counter()
    scores = score_streams(corpus.streams, "ensemble", {}, budget)
    alarms, seconds = 0, 0.0
    per_series = []
    for s, ok, sc in zip(corpus.streams, corpus.normal, scores, strict=True):
        n, days = alarms_and_days(s.ts, sc, ok)
        alarms, seconds = alarms + n, seconds + days * 86400.0
        per_series.append(n)
    days = seconds / 86400.0
    return {
        "corpus": corpus.name,
        "budget": budget,
        "series": len(corpus.streams),
        "series_days": days,
        "alarms": alarms,
        "rate": alarms / days if days else math.nan,
        "silent_share": float(np.mean([n == 0 for n in per_series])),
        "seconds": time.perf_counter() - started,
    }


def _run(which: str, budget: float) -> dict[str, Any]:
    return realised(nab_corpus() if which == "nab" else petshop_corpus(), budget)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", default=f"{DEFAULT_BUDGET / 5:g},{DEFAULT_BUDGET:g},{DEFAULT_BUDGET * 4:g}")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    corpora = [c for c, ok in (("nab", (NAB / "data").is_dir()), ("petshop", PETSHOP.is_dir())) if ok]
    if not corpora:
        print(f"skipped: neither {NAB} nor {PETSHOP} is present")
        return 0
    jobs = [(c, b) for c in corpora for b in budgets]
    print(f"scoring {len(jobs)} corpus x budget runs ({args.jobs} at a time) ...", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(_run, *zip(*jobs, strict=True)))
    print()
    print(
        "| data | series | series-days | budget (alarms/series-day) | realised | realised / budget | series with no alarm |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['series']} | {r['series_days']:,.0f} | {r['budget']:g} | "
            f"{r['rate']:.3f} | {r['rate'] / r['budget']:.2f} | {100 * r['silent_share']:.0f}% |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
