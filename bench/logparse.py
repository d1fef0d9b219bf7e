"""Log template mining quality and speed on the Loghub 2k samples, against plain drain3 in the same run.

For each dataset, the agent's miner (exactly what `aiops logs parse` runs: one configuration for
every log, no per-dataset format or regex) groups the raw lines; `../shared/tools/
log_grouping_accuracy.py` scores the grouping against Loghub's ground truth. The baseline is drain3's
`TemplateMiner` with its untouched defaults on the same raw lines, timed in the same process; a second
drain3 column gives it Loghub's `Content` column instead (each line's message with the header already
cut off by a per-dataset regex: the advantage a per-format configuration buys, which the agent does
without).

    .venv/bin/python -m bench.logparse

Skips cleanly (exit 0) when ../shared/data/loghub is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from detectors.logs.miner import LogMiner

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LOGHUB = SHARED / "data" / "loghub"
SCORER = SHARED / "tools" / "log_grouping_accuracy.py"
PUBLISHED_DRAIN = {  # per-dataset tuned settings, 2k samples, from ../shared/README.md
    "HDFS": 0.9975,
    "Hadoop": 0.9475,
    "Zookeeper": 0.9665,
    "HPC": 0.887,
    "Windows": 0.997,
    "Linux": 0.690,
    "Android": 0.911,
    "HealthApp": 0.780,
    "Apache": 1.0,
    "Proxifier": 0.5265,
    "OpenStack": 0.7325,
    "Mac": 0.7865,
}


def ours(lines: list[str]) -> list[int]:
    return [m.template_id for m in LogMiner().mine_all(lines)]


def drain3_defaults(lines: list[str]) -> list[int]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()  # no config file: drain3's own defaults
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def contents(name: str) -> list[str]:
    """Loghub's own message column: the line without its header, cut by a per-dataset regex."""
    with (LOGHUB / name / f"{name}_2k.log_structured.csv").open(encoding="utf-8", newline="") as f:
        return [row["Content"] for row in csv.DictReader(f)]


def measure(
    name: str, lines: list[str], parse: Callable[[list[str]], list[int]], out: Path
) -> tuple[float, float]:
    started = time.perf_counter()
    ids = parse(lines)
    took = time.perf_counter() - started
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["LineId", "EventId"])
        w.writerows((i, cid) for i, cid in enumerate(ids, start=1))
    truth = LOGHUB / name / f"{name}_2k.log_structured.csv"
    done = subprocess.run(
        [sys.executable, str(SCORER), str(truth), str(out), "--dataset", name],
        capture_output=True,
        text=True,
        check=True,
    )
    ga = float(re.search(r"ga=([\d.]+)", done.stdout.strip().splitlines()[-1]).group(1))  # type: ignore[union-attr]
    return ga, took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not LOGHUB.is_dir() or not SCORER.is_file():
        print(f"skipped: Loghub samples or scorer not found under {SHARED}")
        return 0
    import logging

    logging.getLogger("drain3").setLevel(logging.WARNING)
    names = sorted(d.name for d in LOGHUB.iterdir() if (d / f"{d.name}_2k.log").is_file())
    rows = []
    with tempfile.TemporaryDirectory(prefix="aiops-logparse-") as tmp:
        for name in names:
            raw = (LOGHUB / name / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace")
            lines = raw.splitlines()
            ga, took = measure(name, lines, ours, Path(tmp) / f"ours-{name}.csv")
            base_ga, base_took = measure(name, lines, drain3_defaults, Path(tmp) / f"drain3-{name}.csv")
            content_ga, _ = measure(name, contents(name), drain3_defaults, Path(tmp) / f"content-{name}.csv")
            rows.append(
                {
                    "dataset": name,
                    "lines": len(lines),
                    "ga": ga,
                    "seconds": took,
                    "drain3_ga": base_ga,
                    "drain3_seconds": base_took,
                    "drain3_content_ga": content_ga,
                }
            )
            print(
                f"  {name}: GA {ga:.4f} (drain3 defaults {base_ga:.4f}), {len(lines) / took:,.0f} lines/s",
                flush=True,
            )
    n = len(rows)
    total = sum(r["lines"] for r in rows)
    print(
        "\n| dataset | GA (ours, raw lines) | GA drain3 defaults, raw lines | GA drain3 defaults, Loghub content "
        "| GA Drain published (tuned) | lines/s (ours) | lines/s drain3 |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        pub = PUBLISHED_DRAIN.get(r["dataset"])
        print(
            f"| {r['dataset']} | {r['ga']:.4f} | {r['drain3_ga']:.4f} | {r['drain3_content_ga']:.4f} | "
            f"{pub if pub is not None else '-'} | "
            f"{r['lines'] / r['seconds']:,.0f} | {r['lines'] / r['drain3_seconds']:,.0f} |"
        )
    pub_mean = sum(PUBLISHED_DRAIN[r["dataset"]] for r in rows if r["dataset"] in PUBLISHED_DRAIN) / n
    ours_rate = total / sum(r["seconds"] for r in rows)
    base_rate = total / sum(r["drain3_seconds"] for r in rows)
    print(
        f"| **mean** | **{sum(r['ga'] for r in rows) / n:.4f}** | {sum(r['drain3_ga'] for r in rows) / n:.4f} | "
        f"{sum(r['drain3_content_ga'] for r in rows) / n:.4f} | {pub_mean:.4f} | {ours_rate:,.0f} | {base_rate:,.0f} |"
    )
    print(
        f"\nthroughput over all {total:,} lines: ours {ours_rate:,.0f} lines/s, drain3 defaults {base_rate:,.0f} "
        f"lines/s (ratio {ours_rate / base_rate:.2f})"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
