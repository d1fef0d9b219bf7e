"""CPU per series per poll: one query answering 50,000 series, through the agent's real poll path.

A canned Prometheus (a separate process, so its CPU is not counted) answers `query_range` in
Prometheus' JSON format: `--series` series (50,000 in the issue, 20,000 by default to stay short;
1,000 jobs x 5 instances x 5 handlers x 2 codes, with namespace and pod labels), a point per step in
the window asked for, values moving from poll to poll. The agent polls with a manual clock 30 s
apart at a 15 s step (2 points per series per poll), the default ensemble detector, no warm-up
history, dry-run, a real SQLite store, the shipped config/services.yaml (`--services 1000`: a
catalog of 1,000 services mapping the jobs by selectors):

- new: `AgentApp(config).lead(inline=True)`, then `leader.metric_pollers[0].poll()` (HTTP, Matrix
  columns, MetricsPolled through the core, the commit), with the garbage collector tuned as
  `AgentApp.start` tunes it;
- old (066d313 from a git worktree): `AgentApp(config).agent.poll_query(query)`.

Each side runs in its own process. The first poll (which creates a detector slot per series) is
reported apart and left out, as is one long poll of `--warm` points per series that takes the
detectors past their warm-up (the steady state of a running agent; `--warm 0` measures them cold).
Process CPU time (`time.process_time`) per series per poll is the median over the remaining polls,
then over `--repeat` runs alternating old and new.

    .venv/bin/python -m bench.poll                        # 20,000 series, 6 polls after the first, 2 runs
    .venv/bin/python -m bench.poll --series 50000 --repeat 3 --profile   # the issue's size, and hotspots
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PROMQL = "sum by (namespace, job, instance, pod, handler, code) (rate(http_requests_total[1m]))"
HANDLERS = ["/api/v1/items", "/api/v1/orders", "/api/v1/users", "/healthz", "/metrics"]


# ---------------------------------------------------------------------------------- canned Prometheus


def serve(series: int, port_file: str) -> None:
    """Answer every query_range with `series` series, one point per step in [start, end]."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    heads = []
    levels = []
    for i in range(series):
        job, rest = divmod(i, 50)
        instance, rest = divmod(rest, 10)
        handler, code = divmod(rest, 2)
        svc = f"svc-{job:04d}"
        metric = {
            "namespace": f"ns-{job % 20}",
            "job": svc,
            "instance": f"10.{job // 250}.{job % 250}.{instance + 1}:8080",
            "pod": f"{svc}-{instance}",
            "handler": HANDLERS[handler],
            "code": "500" if code else "200",
        }
        heads.append('{"metric":' + json.dumps(metric, separators=(",", ":")) + ',"values":[')
        levels.append((0.5 if code else 20.0) * (1 + (i * 7919) % 97 / 10))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._answer(parse_qs(urlparse(self.path).query))

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            self._answer(parse_qs(self.rfile.read(n).decode()))

        def _answer(self, q: dict[str, list[str]]) -> None:
            if not self.path.startswith("/api/v1/query_range"):
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
            else:
                key = tuple(q[k][0] for k in ("start", "end", "step"))
                with lock:
                    body = cache.get(key) or matrix(*(float(v) for v in key))
                    cache[key] = body
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def matrix(start: float, end: float, step: float) -> bytes:
        """Both sides ask for the same windows (a manual clock from the same start): answers are cached."""
        ts = [start + k * step for k in range(round((end - start) / step) + 1)]
        waves = [(t, math.sin(t / 600.0), math.cos(t / 97.0)) for t in ts]
        parts = []
        for i, (head, level) in enumerate(zip(heads, levels, strict=True)):
            pts = ",".join(
                f'[{t:.3f},"{level * (1 + 0.1 * s + 0.02 * c * ((i % 13) - 6) / 6):.6g}"]'
                for t, s, c in waves
            )
            parts.append(f"{head}{pts}]}}")
        return (
            '{"status":"success","data":{"resultType":"matrix","result":[' + ",".join(parts) + "]}}"
        ).encode()

    cache: dict[tuple[str, ...], bytes] = {}
    lock = threading.Lock()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# ---------------------------------------------------------------------------------- workers


def _config_files(d: Path, side: str, url: str, services: int) -> Path:
    import yaml

    import agent

    root = Path(agent.__file__).resolve().parent.parent
    if services:
        svcs = [
            {
                "name": f"svc-{i:04d}",
                "tier": 1 + (i * 7) % 3,
                "selectors": [{"match": {"job": f"svc-{i:04d}"}}],
            }
            for i in range(services)
        ]
        (d / "services.yaml").write_text(yaml.safe_dump({"services": svcs}, sort_keys=False))
    else:
        (d / "services.yaml").write_text((root / "config" / "services.yaml").read_text())
    (d / "rules.yaml").write_text("rules: []\n")
    agent_yaml = {
        "dry_run": True,
        "log_level": "warning",
        "store": {"url": f"sqlite:///{d}/aiops.db"},
        "prometheus": {"url": url, "poll_interval": "30s", "step": "15s", "retries": 0, "timeout": "120s"},
        "queries": [{"name": "http_request_rate", "promql": PROMQL, "detector": "default"}],
        "api": {"enabled": False},
        "services_file": "services.yaml",
        "rules_file": "rules.yaml",
        "catalog_file": str(root / "runbooks" / "catalog.yaml"),
    }
    if side == "new":
        agent_yaml["detection"] = {"warmup_history": "0s"}
    path = d / "agent.yaml"
    path.write_text(yaml.safe_dump(agent_yaml, sort_keys=False))
    return path


def worker(side: str, url: str, polls: int, services: int, warm: int, profile: str | None) -> dict[str, Any]:
    import gc
    import importlib.util

    from agent.clock import ManualClock
    from agent.config import load_config

    # the tree's own poll path (a revision after 066d313 has the new one even on the "old" side)
    code = "new" if importlib.util.find_spec("agent.shell.app") is not None else "old"

    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory(prefix=f"aiops-bench-poll-{side}-") as tmp:
        config = load_config(_config_files(Path(tmp), code, url, services))
        if code == "new":
            from agent.shell.app import AgentApp

            app: Any = AgentApp(config, clock=clock)
            leader = app.lead(inline=True)
            client = app.prometheus
            poll = leader.metric_pollers[0].poll
            gc.freeze()  # as AgentApp.start does once the agent is built
            gc.set_threshold(100_000, 50, 1000)
        else:
            from agent.app import AgentApp  # type: ignore[no-redef]

            app = AgentApp(config, clock=clock)
            client = app.prometheus
            query = config.agent.queries[0]

            def poll() -> None:
                app.agent.poll_query(query)

        fetch_cpu = [0.0]
        fetched: list[int] = []
        query_range = client.query_range

        def timed_query_range(*a: Any, **kw: Any) -> Any:
            t = time.process_time()
            got = query_range(*a, **kw)
            fetch_cpu[0] += time.process_time() - t
            fetched.append(len(got))
            return got

        client.query_range = timed_query_range
        profiler = None
        cpu: list[float] = []
        fetch: list[float] = []
        warm_cpu = 0.0
        for i in range(polls + 1):
            clock.advance(timedelta(seconds=30))
            if i == 1 and warm:
                clock.advance(timedelta(seconds=15 * warm))  # one long window: detectors past warm-up
                t = time.process_time()
                poll()
                warm_cpu = time.process_time() - t
                clock.advance(timedelta(seconds=30))
            if i == 1 and profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            fetch_cpu[0] = 0.0
            t = time.process_time()
            poll()
            cpu.append(time.process_time() - t)
            fetch.append(fetch_cpu[0])
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        series = fetched[-1] if fetched else 0
        stored = _stored_end(Path(tmp) / "aiops.db") if code == "new" else None
        if code == "new":
            app.stop()
        else:
            app.store.close()
    steady = cpu[1:]
    per = statistics.median(steady) / series * 1e6 if series and steady else float("nan")
    return {
        "side": side,
        "series": series,
        "polls": len(steady),
        "first_poll_cpu_s": cpu[0],
        "warm_poll_cpu_s": warm_cpu,
        "poll_cpu_s": steady,
        "us_per_series_per_poll": per,
        "fetch_us_per_series_per_poll": statistics.median(fetch[1:]) / series * 1e6
        if series
        else float("nan"),
        "saved_cursor": stored,
    }


def _stored_end(db: Path) -> Any:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT data FROM source_state WHERE name = 'prometheus:http_request_rate'"
        ).fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["old", "new"], required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--polls", type=int, required=True)
    p.add_argument("--services", type=int, required=True)
    p.add_argument("--warm", type=int, required=True)
    p.add_argument("--profile")
    args = p.parse_args(argv)
    print(json.dumps(worker(args.worker, args.url, args.polls, args.services, args.warm, args.profile)))


# ---------------------------------------------------------------------------------- parent


def start_server(series: int) -> tuple[subprocess.Popen[bytes], str]:
    port_file = Path(tempfile.mkstemp(prefix="aiops-bench-prom-")[1])
    port_file.write_text("")
    proc = subprocess.Popen([sys.executable, str(HERE), "--serve", str(series), str(port_file)])
    deadline = time.monotonic() + 120
    while not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the canned Prometheus did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port_file.read_text()}"
    port_file.unlink()
    return proc, url


def main() -> None:
    from bench.baseline import alternate, comparison_parser, medians, ratio, run_worker, trees_or_skip

    p = comparison_parser(__doc__)
    p.add_argument("--series", type=int, default=20_000, help="series per poll (the issue: 50,000)")
    p.add_argument("--polls", type=int, default=6, help="polls measured after the first")
    p.add_argument(
        "--services",
        type=int,
        default=0,
        help="a catalog of N services with a `job` selector each (default: the shipped config/services.yaml)",
    )
    p.add_argument(
        "--warm",
        type=int,
        default=120,
        help="before the measured polls, one poll of this many points per series (detectors past warm-up)",
    )
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument(
        "--profile", nargs="?", const="-", help="cProfile the new code's polls (FILE.prof to keep)"
    )
    args = p.parse_args()

    from bench.core import print_profile

    both = trees_or_skip(args)
    if both is None:
        return
    old, new = both
    server, url = start_server(args.series)
    result: dict[str, Any] = {}
    try:
        print(
            f"{args.series:,} series, 2 points per series per poll, {args.polls} polls measured after the first, "
            f"{f'{args.services:,} services' if args.services else 'the shipped services.yaml'}; "
            f"old {old.revision} vs new; {args.repeat} run(s) each, alternating",
            flush=True,
        )
        common = [
            "--url",
            url,
            "--polls",
            str(args.polls),
            "--services",
            str(args.services),
            "--warm",
            str(args.warm),
        ]
        runs = alternate(
            args.repeat,
            [(old, None), (new, None)],
            lambda tree, _, __: run_worker(tree, HERE, ["--worker", tree.name, *common]),
            lambda r: (
                f"{r['us_per_series_per_poll']:.2f} us CPU per series per poll (of which fetch + JSON "
                f"{r['fetch_us_per_series_per_poll']:.2f}); {r['series']:,} series; "
                f"first poll {r['first_poll_cpu_s']:.1f} s CPU"
            ),
        )
        if args.repeat:
            med = medians(runs, "us_per_series_per_poll")
            print(
                f"\nmedian CPU per series per poll: old {med['old']:.2f} us, new {med['new']:.2f} us, "
                f"old/new {ratio(med['old'], med['new']):.1f}x (target <= 8 us)"
            )
            result = {"runs": runs, "median_us": med, "speedup": ratio(med["old"], med["new"])}
        if args.profile:
            with tempfile.TemporaryDirectory(prefix="aiops-bench-poll-prof-") as tmp:
                prof = str(Path(tmp) / "poll.prof") if args.profile == "-" else args.profile
                run_worker(new, HERE, ["--worker", "new", *common, "--profile", prof])
                result["profile"] = print_profile(prof, args.top)
    finally:
        server.terminate()
        server.wait()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve(int(sys.argv[2]), sys.argv[3])
    elif "--worker" in sys.argv:
        worker_main(sys.argv[1:])
    else:
        main()
