"""Detector throughput as a poll delivers it: many series in lockstep, one point per series per tick.

Reports points/second of the default detector (one bank, state in arrays) against river's
`MinMaxScaler | HalfSpaceTrees` measured in the same process (per point, as river runs it), and the
bytes of detector state per series. Timings use one process on one core.

    .venv/bin/python -m bench.throughput                   # 10,000 series x 1,000 points
    .venv/bin/python -m bench.throughput --series 1000 --points 500
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time

import numpy as np

import detectors


def synthetic(series: int, points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Minute-resolution series: level + daily cycle + noise, a few spikes, some missing points."""
    rng = np.random.default_rng(seed)
    t = 1_700_000_000 + 60.0 * np.arange(points)
    level = rng.uniform(1, 1000, series)
    phase = rng.uniform(0, 2 * np.pi, series)
    cycle = np.sin(2 * np.pi * t[:, None] / 86400 + phase) * level * 0.2
    values = level + cycle + rng.normal(0, 1, (points, series)) * level * 0.02
    spikes = rng.random((points, series)) < 0.001
    values[spikes] *= 3
    values[rng.random((points, series)) < 0.01] = np.nan
    return t, values


def bank_rate(kind: str, t: np.ndarray, values: np.ndarray) -> tuple[float, int]:
    bank = detectors.build_bank(kind, {}, n=values.shape[1])
    ts = np.empty(values.shape[1])
    started = time.process_time()
    for i in range(len(t)):
        ts.fill(t[i])
        bank.update(ts, values[i])
    took = time.process_time() - started
    per_series = bank.nbytes_per_series() if isinstance(bank, detectors.DetectorBank) else 0
    return np.isfinite(values).sum() / took, per_series


def river_rate(t: np.ndarray, values: np.ndarray) -> tuple[float, int]:
    from river import anomaly, preprocessing

    models = [preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42) for _ in range(values.shape[1])]
    n = 0
    started = time.process_time()
    for i in range(len(t)):
        for j, model in enumerate(models):
            v = values[i, j]
            if v == v:
                x = {"x": float(v)}
                model.score_one(x)
                model.learn_one(x)
                n += 1
    took = time.process_time() - started
    return n / took, len(pickle.dumps(models[0]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--points", type=int, default=1_000)
    p.add_argument("--river-series", type=int, default=100, help="series for the (slow) river baseline")
    p.add_argument("--repeat", type=int, default=3, help="alternating runs of each; the median ratio")
    args = p.parse_args()
    t, values = synthetic(args.series, args.points)
    print(f"{args.series:,} series x {args.points:,} points (about {np.isfinite(values).sum():,} samples)")
    ratios = []
    for r in range(args.repeat):  # alternating, so a busy spell on a shared machine hurts both sides
        ours, state = bank_rate(detectors.DEFAULT_KIND, t, values)
        theirs, their_state = river_rate(t, values[:, : args.river_series])
        ratios.append(ours / theirs)
        print(
            f"  run {r + 1}: {detectors.DEFAULT_KIND} {ours:,.0f} points/CPU-s ({state:,} bytes of state per "
            f"series); river MinMaxScaler|HalfSpaceTrees ({args.river_series} series) {theirs:,.0f} "
            f"points/CPU-s ({their_state:,} bytes per series, pickled); ratio {ours / theirs:.1f}x",
            flush=True,
        )
    print(f"  ratio: {statistics.median(ratios):.1f}x river's throughput (median of {len(ratios)})")


if __name__ == "__main__":
    main()
