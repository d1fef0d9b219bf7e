"""Choosing the ensemble's defaults by leave-one-category-out on the shared NAB categories.

A default that scores well on the files it was tuned on says little; one chosen without a category and
then scored on it says how the choice generalises. This runs a declared set of ensemble settings (the
shipped defaults first, then each knob one at a time, one or two values either side) over the 51
shared NAB files at the product's fixed threshold 0.8, keeps each file's NAB components (raw, null,
perfect) per profile and its false alarms on its normal stretches (bench.false_alarms), and then,
for each of the 6 categories: picks, among the candidates that keep the default false-alarm budget
(alarms per series-day) on the other 5 categories, the one with the best standard score pooled over
them, and scores it on the held-out one. (Without that constraint the choice buys NAB points with
alarms the budget forbids: more alarms always pay on NAB's standard profile.) Pairs of the
strongest knobs are formed inside each fold, from that fold's own five categories, so nothing the
held-out category says reaches its fold's choice. The held-out scores say what to expect of the
selection on data it has not seen; the candidate chosen on all 6 categories replaces the shipped default
only when the selection's held-out mean beats the default's on the same folds (otherwise its gain on the
files it saw is fitted, and the default stays).

    .venv/bin/python -m bench.loco                  # the full candidate set, 2 at a time
    .venv/bin/python -m bench.loco --quick --pairs 0
    .venv/bin/python -m bench.loco --params '{"damping": 300}' --json loco.json

Skips cleanly (exit 0) when ../shared/data/nab or the scorer is absent (`AIOPS_SHARED` moves it).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.offline import Stream, score_streams
from bench.false_alarms import alarms_and_days, nab_normals
from bench.nab import (
    DEFAULT_THRESHOLD,
    NAB,
    PROFILES,
    SCORER,
    SHARED,
    Parts,
    components,
    geometries,
    load_streams,
    normalized,
)
from detectors.bank import DEFAULT_BUDGET

STANDARD = PROFILES[0]
FileParts = dict[str, dict[str, Parts]]  # file -> profile -> (raw, null, perfect)
# ... and under FALSE_ALARMS: (alarms, series-days, 0) on the file's normal stretches (bench.false_alarms)
FALSE_ALARMS = "false_alarms"

# knob -> alternatives to the shipped value (see detectors/bank.py and the members' constructors). `scale`
# is not a knob here: at a fixed threshold only floor + 4 * scale matters (0.8 is an excess of 4 *
# scale), so `floor` moves the same thing. `materiality` gives identical NAB scores from 0 to 0.05.
# Members are not a knob: the `ensemble` kind fixes them (bench.nab scores each member alone).
KNOBS: dict[str, list[dict[str, Any]]] = {
    "second_weight": [{"second_weight": 0.0}, {"second_weight": 0.5}],
    "damping": [{"damping": 200}, {"damping": 800}],
    "floor": [{"floor": 1.25}, {"floor": 1.75}],
    "level.alpha": [{"level": {"alpha": 1 / 2048}}, {"level": {"alpha": 1 / 8192}}],
    "level.clip": [{"level": {"clip": 2.5}}, {"level": {"clip": 4.0}}],
    "level.hold": [{"level": {"hold": 4.0}}, {"level": {"hold": 7.0}}],
    "level.adapt": [{"level": {"adapt": 60}}, {"level": {"adapt": 240}}],
    "seasonal.bins": [{"seasonal": {"bins": 24}}, {"seasonal": {"bins": 96}}],
    "seasonal.alpha": [{"seasonal": {"alpha": 1 / 4}}, {"seasonal": {"alpha": 1 / 16}}],
    "seasonal.gate": [{"seasonal": {"gate": 0.6}}, {"seasonal": {"gate": 1.0}}],
    "novelty.window": [{"novelty": {"window": 16}}, {"novelty": {"window": 24}}],
    "novelty.vigilance": [{"novelty": {"vigilance": 0.05}}, {"novelty": {"vigilance": 0.2}}],
    "novelty.rate": [{"novelty": {"rate": 0.02}}, {"novelty": {"rate": 0.1}}],
    "shift.alpha": [{"shift": {"alpha": 0.05}}, {"shift": {"alpha": 0.2}}],
    "shift.clip": [{"shift": {"clip": 4.0}}, {"shift": {"clip": 9.0}}],
    "calibration.horizon": [{"calibration": {"horizon": 3000}}, {"calibration": {"horizon": 12000}}],
    "calibration.min_count": [{"calibration": {"min_count": 50}}, {"calibration": {"min_count": 200}}],
    "calibration.record_gain": [
        {"calibration": {"record_gain": 10.0}},
        {"calibration": {"record_gain": 30.0}},
    ],
    "calibration.record_history": [
        {"calibration": {"record_history": 800}},
        {"calibration": {"record_history": 3000}},
    ],
    "budget_tail": [{"budget_tail": 1.0}, {"budget_tail": 1.6}],
}


@dataclass(frozen=True)
class Candidate:
    """One ensemble setting: DetectorBank kwargs, and the knob(s) it moves away from the defaults."""

    name: str
    params: dict[str, Any]
    knobs: tuple[str, ...] = ()


@dataclass
class Fold:
    held_out: str
    chosen: str
    train: float  # the chosen candidate's standard score on the other categories
    held: float | None  # its score on the held-out category (None: the category has no window)
    default: float | None  # the shipped default's score on the held-out category
    pool: list[str] = field(default_factory=list)
    rate: float = 0.0  # the chosen candidate's false alarms per series-day on the held-out category


def describe(params: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in params.items():
        if isinstance(value, dict):
            parts.extend(describe({f"{key}.{k}": v}) for k, v in value.items())
        else:
            parts.append(f"{key}={value:.4g}" if isinstance(value, int | float) else f"{key}={value}")
    return " ".join(parts) or "default"


def singles(extra: list[dict[str, Any]] | None = None) -> list[Candidate]:
    """The shipped defaults first (so a tie keeps them), each knob's alternatives, then any extras."""
    out = [Candidate("default", {})]
    out += [Candidate(describe(p), p, (knob,)) for knob, alts in KNOBS.items() for p in alts]
    out += [Candidate(describe(p), p, ("extra",)) for p in extra or []]
    return out


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {**a}
    for k, v in b.items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def score_on(
    table: dict[str, FileParts], name: str, files: list[str], profile: str = STANDARD
) -> float | None:
    return normalized([table[name][f][profile] for f in files])


def rate_on(table: dict[str, FileParts], name: str, files: list[str]) -> float:
    """False alarms per series-day on the normal stretches of `files` (0 where not measured)."""
    parts = [table[name][f].get(FALSE_ALARMS, (0.0, 0.0, 0.0)) for f in files]
    days = sum(p[1] for p in parts)
    return sum(p[0] for p in parts) / days if days else 0.0


def within_budget(table: dict[str, FileParts], files: list[str], pool: list[str]) -> list[str]:
    """The candidates that keep the product's promise on `files`: no more false alarms per series-day
    than the default budget. A setting that buys NAB points with alarms the budget forbids would undo
    the budget; if none keeps it, the one closest to it."""
    kept = [n for n in pool if rate_on(table, n, files) <= DEFAULT_BUDGET]
    return kept or [min(pool, key=lambda n: rate_on(table, n, files))]


def choose(table: dict[str, FileParts], files: list[str], pool: list[str]) -> tuple[str, float]:
    """The candidate in `pool` within the false-alarm budget with the best standard score pooled over
    `files`; a tie keeps the earlier."""
    pool = within_budget(table, files, pool)
    best, best_score = pool[0], -np.inf
    for name in pool:
        s = score_on(table, name, files)
        if s is not None and s > best_score:
            best, best_score = name, s
    return best, float(best_score)


def strongest(
    table: dict[str, FileParts], files: list[str], cands: list[Candidate], k: int
) -> list[Candidate]:
    """Pairs of the `k` knobs whose best single alternative beats the default most on `files`."""
    base = score_on(table, "default", files) or 0.0
    best: dict[str, tuple[float, Candidate]] = {}
    eligible = set(within_budget(table, files, [c.name for c in cands if c.name in table]))
    for c in cands:
        if len(c.knobs) != 1 or c.knobs[0] == "extra" or c.name not in eligible:
            continue
        s = score_on(table, c.name, files)
        if s is not None and s > base and s > best.get(c.knobs[0], (-np.inf, c))[0]:
            best[c.knobs[0]] = (s, c)
    top = [c for _, c in sorted(best.values(), key=lambda sc: -sc[0])[:k]]
    pairs = []
    top.sort(key=cands.index)  # one name per pair, whichever knob ranked first
    for a, b in itertools.combinations(top, 2):
        params = merge(a.params, b.params)
        pairs.append(Candidate(describe(params), params, a.knobs + b.knobs))
    return pairs


def folds(
    table: dict[str, FileParts], category: dict[str, str], pools: dict[str, list[str]]
) -> tuple[list[Fold], float | None]:
    """For each category: choose on the others from its pool, score on it. Also the pooled held-out
    score: every file scored by the candidate chosen without its category."""
    cats = sorted(set(category.values()))
    out = []
    for cat in cats:
        train = [f for f, c in category.items() if c != cat]
        held = [f for f, c in category.items() if c == cat]
        chosen, train_score = choose(table, train, pools[cat])
        out.append(
            Fold(
                cat,
                chosen,
                train_score,
                score_on(table, chosen, held),
                score_on(table, "default", held),
                pools[cat],
                rate_on(table, chosen, held),
            )
        )
    by_cat = {f.held_out: f.chosen for f in out}
    pooled = normalized([table[by_cat[c]][f][STANDARD] for f, c in category.items()])
    return out, pooled


def run_candidate(params: dict[str, Any]) -> tuple[FileParts, float]:
    streams, geoms, normal = _corpus()
    started = time.perf_counter()
    scores = dict(zip(streams, score_streams(list(streams.values()), "ensemble", params), strict=True))
    took = time.perf_counter() - started
    # rounded as bench.nab's CSVs are, so a score here is the score there
    parts: FileParts = {}
    for g in geoms:
        rel, scored = g.rel, np.round(scores[g.rel], 6)
        parts[rel] = components(g, scored, DEFAULT_THRESHOLD)
        alarms, days = alarms_and_days(streams[rel].ts, scored, normal[rel])
        parts[rel][FALSE_ALARMS] = (float(alarms), days, 0.0)
    return parts, took


@functools.cache
def _corpus() -> tuple[dict[str, Stream], list[Any], dict[str, np.ndarray]]:
    """Read once per worker process: the files, their scoring geometry, their normal stretches."""
    streams = load_streams()
    return streams, geometries(), nab_normals(streams)


def run_all(
    cands: list[Candidate], jobs: int, table: dict[str, FileParts], seconds: dict[str, float]
) -> None:
    todo = [c for c in cands if c.name not in table]
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(run_candidate, c.params): c for c in todo}
        for i, fut in enumerate(as_completed(futures), start=1):
            c = futures[fut]
            try:
                table[c.name], seconds[c.name] = fut.result()
            except ValueError as e:  # a bad candidate costs its row, not the run
                print(f"  candidate {i}/{len(todo)} {c.name}: skipped ({e})", flush=True)
                continue
            full = score_on(table, c.name, list(table[c.name]))
            print(
                f"  candidate {i}/{len(todo)} {c.name}: standard {full:.1f} at {DEFAULT_THRESHOLD} "
                f"({seconds[c.name]:.0f}s; {time.perf_counter() - started:.0f}s elapsed)",
                flush=True,
            )


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def report(
    table: dict[str, FileParts],
    category: dict[str, str],
    fold_list: list[Fold],
    pooled: float | None,
    chosen: str,
) -> str:
    files = list(category)
    cats = sorted(set(category.values()))
    lines = [
        "| held-out category | files | windows | chosen on the other five | its score there | "
        "held-out score | default held-out | held-out false alarms / series-day |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in fold_list:
        held = [x for x, c in category.items() if c == f.held_out]
        windows = sum(int(table["default"][x][STANDARD][2]) for x in held)
        cost = sum(table[f.chosen][x][STANDARD][0] for x in held)
        note = f" (no windows: false-alarm cost {cost:.2f})" if f.held is None else ""
        lines.append(
            f"| {f.held_out} | {len(held)} | {windows} | {f.chosen} | {f.train:.1f} | "
            f"{fmt(f.held)}{note} | {fmt(f.default)} | {f.rate:.3f} |"
        )
    defined = [f.held for f in fold_list if f.held is not None]
    defaults = [f.default for f in fold_list if f.default is not None]
    lines.append(
        f"| **mean of the {len(defined)} scorable folds** | | | | | **{np.mean(defined):.1f}** | "
        f"{np.mean(defaults):.1f} | |"
    )
    default_full = score_on(table, "default", files)
    lines.append(
        f"| **pooled held-out (all 51 files)** | | | | | **{fmt(pooled)}** | {fmt(default_full)} | |"
    )
    lines += [
        "",
        "| candidate | false alarms / series-day | standard | low FP | low FN | " + " | ".join(cats) + " |",
    ]
    lines.append("|---" * (5 + len(cats)) + "|")
    for name in dict.fromkeys(["default", chosen]):
        full = [f"{rate_on(table, name, files):.3f}"] + [
            fmt(score_on(table, name, files, p)) for p in PROFILES
        ]
        per = [fmt(score_on(table, name, [f for f in files if category[f] == c])) for c in cats]
        label = "shipped default" if name == "default" else f"chosen on all six: {name}"
        lines.append(f"| {label} | " + " | ".join(full + per) + " |")
    held, kept = float(np.mean(defined)), float(np.mean(defaults))
    verdict = f"ship `{chosen}`" if chosen != "default" and held > kept else "keep the shipped default"
    lines += [
        "",
        f"Verdict: {verdict} (held-out mean {held:.1f} for the selection, {kept:.1f} for the default).",
    ]
    return "\n".join(lines)


def ranking(table: dict[str, FileParts], category: dict[str, str]) -> str:
    files = list(category)
    cats = sorted(set(category.values()))
    lines = [
        "| candidate | false alarms / series-day | standard | low FP | low FN | " + " | ".join(cats) + " |",
        "|---" * (5 + len(cats)) + "|",
    ]
    for name in sorted(table, key=lambda n: -(score_on(table, n, files) or 0.0)):
        full = [f"{rate_on(table, name, files):.3f}"] + [
            fmt(score_on(table, name, files, p)) for p in PROFILES
        ]
        per = [fmt(score_on(table, name, [f for f in files if category[f] == c])) for c in cats]
        lines.append(f"| {name} | " + " | ".join(full + per) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument(
        "--candidates", type=int, help="only the first N single-knob candidates (the default first)"
    )
    p.add_argument("--quick", action="store_true", help="same as --candidates 7")
    p.add_argument(
        "--pairs", type=int, default=3, help="pair the K strongest knobs in each fold (0: no pairs)"
    )
    p.add_argument("--params", action="append", default=[], help="JSON object (or list) of extra candidates")
    p.add_argument("--json", type=str, help="also write every per-file component and fold as JSON")
    args = p.parse_args(argv)
    if not (NAB / "data").is_dir() or not SCORER.is_file():
        print(
            f"skipped: NAB data or scorer not found under {SHARED} (they live beside the project, not in it)"
        )
        return 0
    extra: list[dict[str, Any]] = []
    for text in args.params:
        value = json.loads(text)
        extra += value if isinstance(value, list) else [value]
    cands = singles(extra)
    limit = 7 if args.quick else args.candidates
    if limit:
        cands = cands[:limit] + [c for c in cands if c.knobs == ("extra",) and c not in cands[:limit]]
    category = {str(g.rel): str(g.rel).split("/")[0] for g in _corpus()[1]}
    cats = sorted(set(category.values()))
    table: dict[str, FileParts] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    print(f"{len(cands)} single-knob candidates over {NAB / 'data'} ({args.jobs} at a time) ...", flush=True)
    run_all(cands, args.jobs, table, seconds)
    cands = [c for c in cands if c.name in table]
    pools: dict[str, list[str]] = {}
    pairs: dict[str, Candidate] = {}
    for cat in [*cats, "all"]:
        train = [f for f, c in category.items() if c != cat]
        found = strongest(table, train, cands, args.pairs) if args.pairs > 1 else []
        pairs.update({c.name: c for c in found})
        pools[cat] = [c.name for c in cands] + [
            c.name for c in found if c.name not in {x.name for x in cands}
        ]
    if pairs:
        print(f"{len(pairs)} pairs of the strongest knobs, formed inside each fold ...", flush=True)
        run_all(list(pairs.values()), args.jobs, table, seconds)
        pools = {cat: [n for n in pool if n in table] for cat, pool in pools.items()}
    fold_list, pooled = folds(table, {f: c for f, c in category.items()}, {c: pools[c] for c in cats})
    chosen, _ = choose(table, list(category), pools["all"])
    print(
        f"\n{len(table)} candidates in {time.perf_counter() - started:.0f}s; threshold {DEFAULT_THRESHOLD}\n"
    )
    print(report(table, category, fold_list, pooled, chosen))
    print("\nEvery candidate on all 51 files (standard per category):\n")
    print(ranking(table, category))
    if args.json:
        every = {c.name: c for c in cands} | pairs
        out = {
            "threshold": DEFAULT_THRESHOLD,
            "candidates": [
                {
                    "name": n,
                    "params": every[n].params,
                    "knobs": every[n].knobs,
                    "seconds": seconds[n],
                    "files": table[n],
                }
                for n in table
            ],
            "folds": [f.__dict__ for f in fold_list],
            "pooled_held_out": pooled,
            "chosen_on_all": chosen,
            "chosen_full": {pr: score_on(table, chosen, list(category), pr) for pr in PROFILES},
            "default_full": {pr: score_on(table, "default", list(category), pr) for pr in PROFILES},
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
