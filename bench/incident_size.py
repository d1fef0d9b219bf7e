"""The cost of one alert against the size of its incident: 5,000 distinct alerts on one service.

A real `aiops run` per side (the old release from a git worktree, this tree), dry-run, SQLite, the
workload's configuration for one service (bench/workload.py). Distinct alerts (a new `instance` each)
are POSTed in batches of `--batch` until the service's incident has been sent `--signals` of them; at
each checkpoint, `--probes` probes of one new distinct alert each are timed from the POST until the
store has taken it in (old: the signal row is there; new: the inbox is empty again), with the agent's
CPU time over the probe. A flat curve means a joining signal costs the same however many the incident
holds; the new code also keeps at most `correlation.max_signals` (default 500) and counts the rest.

    .venv/bin/python -m bench.incident_size                       # 5,000 signals, checkpoints every 1,000
    .venv/bin/python -m bench.incident_size --signals 2000 --every 500
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.alerts import TOKEN, StoreReader, _wait_ready, cpu_seconds, launch, write_config
from bench.workload import Batch, Workload, service_name


def alert(k: int, at: datetime) -> dict[str, Any]:
    service = service_name(0)
    labels = {"alertname": "HighLatency", "service": service, "job": service, "instance": f"i-{k}:9100"}
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"HighLatency on {service}"},
        "startsAt": at.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
    }


def run_side(tree: Any, signals: int, every: int, probes: int, batch: int) -> dict[str, Any]:
    import requests

    from bench.baseline import stop

    with tempfile.TemporaryDirectory(prefix=f"aiops-bench-size-{tree.name}-") as tmp:
        d = Path(tmp)
        t0 = datetime.now(UTC) - timedelta(minutes=1)
        url = f"sqlite:///{d}/aiops.db"
        port = write_config(d, Workload(services=1, signals=0), url, tree)
        proc, log = launch(tree, d)
        base = f"http://127.0.0.1:{port}"
        sent = 0
        checkpoints: list[dict[str, Any]] = []
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {TOKEN}"})

        def post(alerts: list[dict[str, Any]]) -> None:
            nonlocal sent
            r = session.post(f"{base}/api/v1/alerts", json=Batch(t0, alerts).payload(), timeout=600)
            r.raise_for_status()
            sent += len(alerts)

        try:
            _wait_ready(base, proc, d / "agent.log")
            reader = StoreReader(url)

            def taken_in() -> None:
                reader.wait(0 if reader.has_inbox else sent, 600, interval=0.002)

            for target in [1, *range(every, signals + 1, every)]:
                while sent < target - probes:
                    post([alert(sent + k, t0) for k in range(min(batch, target - probes - sent))])
                taken_in()
                took, cpu = [], []
                for _ in range(probes):
                    c0, w0 = cpu_seconds(proc.pid), time.perf_counter()
                    post([alert(sent, t0)])
                    taken_in()
                    took.append(time.perf_counter() - w0)
                    cpu.append(cpu_seconds(proc.pid) - c0)
                point = {
                    "held": sent,
                    "ms": statistics.median(took) * 1000,
                    "cpu_ms": statistics.mean(cpu) * 1000,
                    "rows": reader.state()["signals"],
                }
                checkpoints.append(point)
                print(
                    f"    {tree.name}: {point['held']:>6,} signals sent: {point['ms']:7.1f} ms per joining "
                    f"alert (agent CPU {point['cpu_ms']:.1f} ms); {point['rows']:,} signal rows",
                    flush=True,
                )
            reader.close()
        finally:
            session.close()
            stop(proc, 120)
            log.close()
        return {"side": tree.name, "checkpoints": checkpoints}


def main() -> None:
    from bench.baseline import alternate, comparison_parser, trees_or_skip

    p = comparison_parser(__doc__)
    p.add_argument("--signals", type=int, default=5_000, help="distinct alerts sent to the one service")
    p.add_argument("--every", type=int, default=1_000, help="a checkpoint every this many")
    p.add_argument("--probes", type=int, default=5, help="timed single-alert POSTs per checkpoint")
    p.add_argument("--batch", type=int, default=50, help="alerts per POST while filling")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    both = trees_or_skip(args)
    if both is None:
        return
    old, new = both
    print(
        f"one service, {args.signals:,} distinct alerts, {args.probes} probes every {args.every:,}; "
        f"old {old.revision} vs new {new.revision}",
        flush=True,
    )
    runs = alternate(
        args.repeat,
        [(old, None), (new, None)],
        lambda tree, _, __: run_side(tree, args.signals, args.every, args.probes, args.batch),
        lambda r: " -> ".join(f"{c['ms']:.0f}" for c in r["checkpoints"]) + " ms",
    )
    for side, results in runs.items():
        first, last = results[-1]["checkpoints"][0], results[-1]["checkpoints"][-1]
        print(
            f"  {side}: {first['ms']:.1f} ms at {first['held']:,} -> {last['ms']:.1f} ms at {last['held']:,} "
            f"({last['ms'] / first['ms']:.1f}x)"
        )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
