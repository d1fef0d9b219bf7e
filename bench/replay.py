"""Replay speed: a day of 1,000 series at a 15 s step through `aiops replay`, against real time.

Builds the history with promtool (synthetic latency series with a daily cycle and noise, a few injected
step faults), starts a real Prometheus on it, and times the real command line on the whole day with the
default detector (warm-up history included), one rule and its verification evaluated on the history.

    .venv/bin/python -m bench.replay                      # 1,000 series x 24 h at 15 s
    .venv/bin/python -m bench.replay --series 100 --hours 2
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from demo.processes import prometheus_binary
from tests.support.backfill import (
    Fault,
    generate,
    promtool_binary,
    start_prometheus_with_history,
    synthetic_series,
)

ROOT = Path(__file__).resolve().parent.parent
AIOPS = str(Path(sys.executable).parent / "aiops")


def write_config(directory: Path, url: str, step: float) -> Path:
    (directory / "services.yaml").write_text(
        yaml.safe_dump(
            {"services": [{"name": "bench", "tier": 2, "selectors": [{"match": {"job": "bench"}}]}]}
        )
    )
    rules = {
        "rules": [
            {
                "name": "diagnose-latency",
                "match": {"service": "bench", "signals": ["svc_latency"]},
                "runbook": "collect_diagnostics",
                "params": {
                    "incident_id": "{incident.id}",
                    "service": "{service}",
                    "instance": "{labels.instance}",
                },
                "guards": {"cooldown": "30m", "max_attempts": 1},
            }
        ]
    }
    (directory / "rules.yaml").write_text(yaml.safe_dump(rules))
    agent = {
        "store": {"url": f"sqlite:///{directory / 'live.db'}"},
        "prometheus": {"url": url, "step": f"{step:g}s", "poll_interval": f"{2 * step:g}s", "timeout": "60s"},
        "queries": [{"name": "svc_latency", "promql": "svc_latency_seconds", "detector": "default"}],
        "detection": {"warmup_history": "6h"},
        "api": {"enabled": False},
        "services_file": "services.yaml",
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
    }
    (directory / "agent.yaml").write_text(yaml.safe_dump(agent))
    return directory / "agent.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--step", type=float, default=15.0)
    p.add_argument("--faults", type=int, default=5)
    p.add_argument("--json", type=Path, help="write the measurements here")
    args = p.parse_args()
    if prometheus_binary() is None or promtool_binary() is None:
        print("skipped: prometheus and promtool (Debian package prometheus) are needed")
        return
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        end = math.floor(time.time() / args.step) * args.step - 10 * args.step
        since = end - args.hours * 3600
        start = since - 6 * 3600  # the warm-up history before the window
        labels = [{"job": "bench", "instance": f"10.0.{i // 250}.{i % 250}:9100"} for i in range(args.series)]
        spacing = (end - since) / (args.faults + 1)
        faults = {i * 97 % args.series: [Fault(since + (i + 1) * spacing, 3.0)] for i in range(args.faults)}
        series = synthetic_series("svc_latency_seconds", labels, seed=1, faults=faults)
        t0 = time.perf_counter()
        prom = start_prometheus_with_history(
            work / "prometheus", generate(series, start, end, args.step, seed=1)
        )
        built = time.perf_counter() - t0
        try:
            config = write_config(work, prom.url, args.step)
            t1 = time.perf_counter()
            done = subprocess.run(
                [AIOPS, "replay", "-c", str(config), "--since", str(since), "--until", str(end), "--json"],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - t1
        finally:
            prom.stop()
    if done.returncode != 0:
        sys.exit(f"replay failed: {done.stderr[-2000:]}")
    doc = json.loads(done.stdout)
    totals = doc["totals"]
    window = end - since
    found = {s["labels"]["instance"] for i in doc["incidents"] for s in i["signals"]}
    injected = {labels[i]["instance"] for i in faults}
    result = {
        "series": args.series,
        "hours": args.hours,
        "step_s": args.step,
        "history_points": totals["points"],
        "build_history_s": round(built, 1),
        "replay_wall_s": round(wall, 1),
        "replay_core_s": totals["wall_seconds"],
        "speedup": round(window / wall, 1),
        "incidents": totals["incidents"],
        "faulted_series_found": len(found & injected),
        "faults": len(injected),
        "other_series_in_incidents": len(found - injected),
        "changes": totals["changes"],
    }
    print(
        f"{args.series:,} series x {args.hours:g} h at {args.step:g} s ({totals['points']:,} points incl. warm-up)\n"
        f"  history built with promtool in {built:.1f} s\n"
        f"  aiops replay: {wall:.1f} s wall ({totals['wall_seconds']:.1f} s in the replay itself): "
        f"{window / wall:,.0f}x real time\n"
        f"  {totals['incidents']} incidents, {len(found & injected)}/{len(injected)} injected faults found, "
        f"{len(found - injected)} other series in incidents, {totals['changes']} changes planned"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
