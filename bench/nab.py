"""Detection quality on the Numenta Anomaly Benchmark, for every detector, against a naive river baseline.

Every detector streams each file through the same code as `aiops detect` (all files in lockstep, one
bank slot per file: no look-ahead, no per-file settings, no file lengths). Scoring is done by
`../shared/tools/nab_score.py`: the three NAB profiles with the threshold swept over the corpus, as
published scoreboards are. Because the live agent cannot sweep, the table also gives each profile at
the product's fixed default threshold (0.8, chosen without labels: a combined rarity of one point in
about three thousand). The baseline, measured in the same run, is river's `MinMaxScaler |
HalfSpaceTrees` with default settings, scored before learning each point.

    .venv/bin/python -m bench.nab                      # every detector
    .venv/bin/python -m bench.nab --detectors ensemble # just the default

Skips cleanly (exit 0) when ../shared/data/nab is absent.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import detectors
from agent.offline import Stream, read_stream, score_streams, write_scored

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AIOPS_SHARED") or ROOT.parent / "shared")  # beside the project
NAB = SHARED / "data" / "nab"
SCORER = SHARED / "tools" / "nab_score.py"
BASELINE = "river_hst_naive"
DEFAULT_THRESHOLD = 0.8
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PUBLISHED = [  # full NAB corpus (58 files), from ../shared/README.md
    ("ARTime", 74.9, 65.1, 80.4),
    ("Numenta HTM", 70.1, 63.1, 74.3),
    ("CAD OSE", 69.9, 67.0, 73.2),
    ("KNN CAD", 58.0, 43.4, 64.8),
    ("Random Cut Forest", 51.7, 38.4, 59.7),
    ("Windowed Gaussian", 39.6, 20.9, 47.4),
]


def load_streams() -> dict[str, Stream]:
    return {str(p.relative_to(NAB / "data")): read_stream(p) for p in sorted((NAB / "data").glob("*/*.csv"))}


def naive_hst(streams: list[Stream]) -> list[np.ndarray]:
    from river import anomaly, preprocessing

    out = []
    for s in streams:
        model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
        scores = np.zeros(len(s.values))
        for i, v in enumerate(s.values):
            x = {"x": float(v)}
            scores[i] = model.score_one(x)
            model.learn_one(x)
        out.append(scores)
    return out


def run_detector(name: str, results: Path) -> dict[str, Any]:
    streams = load_streams()
    started = time.perf_counter()
    if name == BASELINE:
        scores = naive_hst(list(streams.values()))
    else:
        scores = score_streams(list(streams.values()), name, {})
    took = time.perf_counter() - started
    for (rel, stream), s in zip(streams.items(), scores, strict=True):
        dst = results / name / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_scored(stream, s, dst)
    points = sum(len(s.values) for s in streams.values())
    return {"detector": name, "seconds": took, "points": points, **score(results / name)}


def score(results: Path) -> dict[str, Any]:
    labels = NAB / "labels" / "combined_windows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCORER),
            "--data",
            str(NAB / "data"),
            "--labels",
            str(labels),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    swept = dict(re.findall(r"(\w+)=([-\d.]+)", done.stdout.strip().splitlines()[-1]))
    return {
        "swept": {p: float(swept[p.lower().removesuffix("_rate")]) for p in PROFILES},
        "fixed": fixed_threshold(results, DEFAULT_THRESHOLD),
    }


@functools.cache
def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nab_score", SCORER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


Parts = tuple[float, float, float]  # one file's (raw, null, perfect) NAB score under one profile


def geometries() -> list[Any]:
    """Each file's scoring geometry (probation, windows, sigmoid weights), built by nab_score.py's own
    functions; `.rel` names the file, `.scores` is left for the caller."""
    import pandas as pd  # the scorer's own dependency

    ns = _scorer()
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    geoms = []
    for rel in ns.select_files(str(NAB / "data"), labels, [], []):
        ts = ns._to_ns(pd.read_csv(NAB / "data" / rel)["timestamp"])
        geoms.append(ns.build_geometry(rel, ts, labels[rel], 0.15))
    return geoms


def components(g: Any, scores: np.ndarray, threshold: float) -> dict[str, Parts]:
    """One file's (raw, null, perfect) under each profile with rows flagged at `threshold`; a set of
    files scores `normalized` of their sums, so scores of any subset of files can be pooled."""
    out = {}
    m = g.scorable
    flagged = scores[m] >= threshold
    win = g.window_id[m]
    for name in PROFILES:
        cost = _scorer().DEFAULT_PROFILES[name]["CostMatrix"]
        raw = cost["fpWeight"] * float(g.fp_shape[m][flagged & (win < 0)].sum())
        null = 0.0
        for w in np.unique(win[win >= 0]):
            hit = flagged & (win == w)
            raw += cost["tpWeight"] * float(g.tp_shape[m][hit].max()) if hit.any() else -cost["fnWeight"]
            null -= cost["fnWeight"]
        out[name] = (raw, null, cost["tpWeight"] * g.n_windows)
    return out


def normalized(parts: list[Parts]) -> float | None:
    """100 * (sum raw - sum null) / (sum perfect - sum null): 0 never fires, 100 is perfect; None for
    files without a window (never firing is already perfect there)."""
    raw, null, perfect = (sum(p[i] for p in parts) for i in range(3))
    return None if perfect == null else 100.0 * (raw - null) / (perfect - null)


def fixed_threshold(results: Path, threshold: float) -> dict[str, float]:
    """Normalized NAB score of each profile with rows flagged at `threshold`, no sweep; same geometry
    (probation, windows, sigmoid weights) as nab_score.py, whose functions build it."""
    import pandas as pd

    ns = _scorer()
    per_file = []
    for g in geometries():
        ts = ns._to_ns(pd.read_csv(NAB / "data" / g.rel)["timestamp"])
        per_file.append(components(g, ns.load_scores(str(results / g.rel), ts, g.rel), threshold))
    return {name: normalized([c[name] for c in per_file]) or 0.0 for name in PROFILES}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| detector | standard | low FP | low FN | standard @0.8 | low FP @0.8 | low FN @0.8 | points/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sw, fx = r["swept"], r["fixed"]
        lines.append(
            f"| {r['detector']} | {sw['standard']:.1f} | {sw['reward_low_FP_rate']:.1f} | "
            f"{sw['reward_low_FN_rate']:.1f} | {fx['standard']:.1f} | {fx['reward_low_FP_rate']:.1f} | "
            f"{fx['reward_low_FN_rate']:.1f} | {r['points'] / r['seconds']:,.0f} |"
        )
    for name, std, lfp, lfn in PUBLISHED:
        lines.append(f"| *{name} (published, 58 files)* | {std} | {lfp} | {lfn} | | | | |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", help="comma-separated kinds (default: every registered kind)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--keep", type=Path, help="keep the scored CSVs under this directory")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args()
    if not (NAB / "data").is_dir() or not SCORER.is_file():
        print(
            f"skipped: NAB data or scorer not found under {SHARED} (they live beside the project, not in it)"
        )
        return 0
    names = [BASELINE, *(args.detectors.split(",") if args.detectors else sorted(detectors.REGISTRY))]
    unknown = [n for n in names if n != BASELINE and n not in detectors.REGISTRY]
    if unknown:
        print(f"unknown detector(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="aiops-nab-") as tmp:
        results = args.keep or Path(tmp)
        print(f"scoring {len(names)} detectors over {NAB / 'data'} ({args.jobs} at a time) ...", flush=True)
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {n: pool.submit(run_detector, n, results) for n in names}
            rows = []
            for n, fut in futures.items():
                rows.append(fut.result())
                r = rows[-1]
                print(
                    f"  {n}: standard {r['swept']['standard']:.1f} (swept), "
                    f"{r['fixed']['standard']:.1f} at {DEFAULT_THRESHOLD}; {r['seconds']:.0f}s",
                    flush=True,
                )
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
