"""Alertmanager's webhook end to end: alerts per second from the first POST until the store holds them all.

A real `aiops run` per side (the old release from a git worktree, this tree), dry-run, the API with an
operator token, the workload of bench/workload.py (1,000 services, 61 rules), no Prometheus (a dead
port, no queries), a store in SQLite (and PostgreSQL with `--postgres`: a throwaway server from
tests/support/postgres.py). First one alert per service opens 1,000 incidents (not timed); then the
storm's webhook payloads (version 4, `--batch` alerts each) are POSTed by `--clients` threads, each
with its own `requests.Session`, bodies encoded beforehand. The clock stops when the store holds
every alert: the signals' `count` columns add up to the firing alerts sent, and (new code) the inbox
is empty. The agent process's CPU time over the storm is reported too.

    .venv/bin/python -m bench.alerts                                 # SQLite, 10,000 alerts, 2 runs each
    .venv/bin/python -m bench.alerts --postgres --alerts 20000 --repeat 3
    .venv/bin/python -m bench.alerts --profile --repeat 0            # hotspots of the new agent, per thread
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve()
TOKEN = "bench-operator-token-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------- the agent process
# `bench/alerts.py --agent [--profile-dir DIR] -- run -c FILE` runs `aiops` of whichever tree PYTHONPATH
# names; with a profile directory every thread is profiled (cProfile, thread CPU time) from SIGUSR1 on,
# and dumped when the agent stops.


def agent_main(argv: list[str]) -> None:
    split = argv.index("--")
    opts, rest = argv[:split], argv[split + 1 :]
    profile_dir = opts[opts.index("--profile-dir") + 1] if "--profile-dir" in opts else None
    profiles: list[tuple[str, Any]] = []
    if profile_dir:
        import cProfile

        def start(frame: Any, event: str, arg: Any) -> None:
            sys.setprofile(None)
            prof = cProfile.Profile(time.thread_time_ns, 1e-9)  # CPU time of the thread, not waits
            profiles.append((threading.current_thread().name, prof))
            prof.enable()

        def reset(signum: int, frame: Any) -> None:
            """SIGUSR1: forget what was profiled so far (the GIL keeps other threads' hooks out)."""
            for _, prof in profiles:
                prof.clear()

        threading.setprofile(start)
        signal.signal(signal.SIGUSR1, reset)
    from agent.cli.main import main

    sys.argv = ["aiops", *rest]
    try:
        main()
    finally:
        if profile_dir:
            threading.setprofile(None)  # type: ignore[arg-type]
            for i, (name, prof) in enumerate(profiles):
                prof.disable()
                prof.dump_stats(str(Path(profile_dir) / f"{i:03d}-{name.replace('/', '_')}.prof"))


# ---------------------------------------------------------------------------------- the store, read


class StoreReader:
    """Reads what the agent stored, without the agent's code (sqlite3 or psycopg2 directly)."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            import sqlite3

            path = url.split("///", 1)[1]
            self.conn: Any = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            import psycopg2

            self.conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
            self.conn.autocommit = True
        self.has_inbox = "inbox" in self._tables()

    def _tables(self) -> set[str]:
        if self.url.startswith("sqlite"):
            rows = self._all("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self._all("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}

    def _all(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            return list(cur.fetchall())
        finally:
            cur.close()

    def state(self) -> dict[str, int]:
        ((count, signals),) = self._all("SELECT COALESCE(SUM(count), 0), COUNT(*) FROM signals")
        ((incidents,),) = self._all("SELECT COUNT(*) FROM incidents")
        ((changes,),) = self._all("SELECT COUNT(*) FROM changes")
        inbox = self._all("SELECT COUNT(*) FROM inbox")[0][0] if self.has_inbox else 0
        return {
            "signal_count": int(count),
            "signals": int(signals),
            "incidents": int(incidents),
            "changes": int(changes),
            "inbox": int(inbox),
        }

    def wait(self, firing: int, timeout: float, interval: float = 0.05) -> dict[str, int]:
        """Until the signals' counts add up to `firing` and the inbox is empty (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = self.state()
            except Exception:  # the agent is still creating the schema, or SQLite is busy
                s = {"signal_count": -1, "inbox": -1}
            if s["signal_count"] >= firing and s["inbox"] == 0:
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f"store not caught up after {timeout:g}s: {s}, expected {firing} firing")
            time.sleep(interval)

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------- one side


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_all(url: str, bodies: list[bytes], clients: int) -> dict[str, Any]:
    """POST every body, `clients` threads taking the next one in order; statuses and latencies back."""
    import requests

    lock = threading.Lock()
    todo = iter(range(len(bodies)))
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    def client() -> None:
        with requests.Session() as s:
            s.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    code = s.post(url, data=bodies[i], timeout=600).status_code
                except requests.RequestException:
                    code = -1
                took = time.perf_counter() - t
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                    latencies.append(took)

    threads = [threading.Thread(target=client, name=f"client-{k}") for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "statuses": statuses,
        "post_p50_s": latencies[len(latencies) // 2] if latencies else 0.0,
        "post_p99_s": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
    }


def write_config(d: Path, w: Any, store_url: str, tree: Any) -> int:
    """The workload's services, rules and agent config in `d`; returns the API port it listens on."""
    import yaml

    port = free_port()
    (d / "services.yaml").write_text(yaml.safe_dump({"services": w.services()}, sort_keys=False))
    (d / "rules.yaml").write_text(yaml.safe_dump({"rules": w.rules()}, sort_keys=False))
    (d / "agent.yaml").write_text(
        w.agent_yaml(
            store_url,
            f"127.0.0.1:{port}",
            TOKEN,
            f"http://127.0.0.1:{free_port()}",
            str(tree.root / "runbooks/catalog.yaml"),
        )
    )
    return port


def launch(tree: Any, d: Path, profile_dir: Path | None = None) -> tuple[subprocess.Popen[bytes], IO[str]]:
    """`aiops run -c d/agent.yaml` of `tree`, its output in d/agent.log (returned open: close it)."""
    argv = [str(HERE), "--agent"]
    if profile_dir is not None:
        argv += ["--profile-dir", str(profile_dir)]
    argv += ["--", "run", "-c", str(d / "agent.yaml")]
    log = (d / "agent.log").open("w")
    proc = subprocess.Popen(tree.argv(*argv), cwd=d, env=tree.env(), stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def run_side(
    tree: Any,
    store_url: Callable[[Path], str],
    alerts: int,
    batch: int,
    clients: int,
    profile_dir: Path | None = None,
    timeout: float = 900,
) -> dict[str, Any]:

    from bench.baseline import stop
    from bench.workload import Workload

    with tempfile.TemporaryDirectory(prefix=f"aiops-bench-alerts-{tree.name}-") as tmp:
        d = Path(tmp)
        w = Workload(signals=alerts, batch=batch, t0=datetime.now(UTC))
        url = store_url(d)
        port = write_config(d, w, url, tree)
        opening_batches = w.opening()
        storm_batches = w.storm()
        opening = [json.dumps(b.payload()).encode() for b in opening_batches]
        storm = [json.dumps(b.payload()).encode() for b in storm_batches]
        firing_opening, firing_storm = w.firing(opening_batches), w.firing(storm_batches)
        proc, log = launch(tree, d, profile_dir)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, d / "agent.log")
            reader = StoreReader(url)
            post_all(f"{base}/api/v1/alerts", opening, 1)
            reader.wait(firing_opening, timeout)
            if profile_dir is not None:
                proc.send_signal(signal.SIGUSR1)  # profile the storm only
                time.sleep(1.5)
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            posted = post_all(f"{base}/api/v1/alerts", storm, clients)
            t_posted = time.perf_counter() - t0
            state = reader.wait(firing_opening + firing_storm, timeout, interval=0.02)
            took = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            reader.close()
        finally:
            stop(proc, 120)
            log.close()
        return {
            "side": tree.name,
            "alerts": alerts,
            "seconds": took,
            "alerts_per_s": alerts / took,
            "seconds_until_all_answered": t_posted,
            "agent_cpu_s": cpu,
            "agent_cpu_us_per_alert": cpu / alerts * 1e6,
            **posted,
            "store": state,
        }


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the agent exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the agent was not ready after {timeout:g}s:\n{log.read_text()[-4000:]}")


# ---------------------------------------------------------------------------------- parent


def print_thread_profiles(profile_dir: Path, top: int) -> dict[str, dict[str, list[str]]]:
    import io
    import pstats

    from bench.core import shorten

    groups: dict[str, list[str]] = {}
    for f in sorted(profile_dir.glob("*.prof")):
        name = f.stem.split("-", 1)[1]
        group = "core owner thread (aiops-core)" if name == "aiops-core" else "API and other threads"
        groups.setdefault(group, []).append(str(f))
    out: dict[str, dict[str, list[str]]] = {}
    for group, files in groups.items():
        stats = pstats.Stats(files[0])
        for f in files[1:]:
            stats.add(f)
        out[group] = {}
        for key in ("cumulative", "tottime"):
            buf = io.StringIO()
            stats.stream = buf  # type: ignore[attr-defined]
            stats.sort_stats(key).print_stats(top)
            text = shorten(buf.getvalue())
            start = text.find("   ncalls")
            print(f"\nnew agent, {group}, top {top} by {key}:\n{text[start:].rstrip()}")
            out[group][key] = text[start:].rstrip().splitlines()
    return out


def main() -> None:
    from bench.baseline import alternate, comparison_parser, medians, ratio, trees_or_skip

    p = comparison_parser(__doc__)
    p.add_argument("--alerts", type=int, default=10_000, help="storm alerts")
    p.add_argument("--old-alerts", type=int, help="storm alerts for the old code (default: the same)")
    p.add_argument("--batch", type=int, default=100, help="alerts per POST")
    p.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL server")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument(
        "--profile", action="store_true", help="one more new run (SQLite) under cProfile (thread CPU time)"
    )
    args = p.parse_args()
    args.old_alerts = args.old_alerts or args.alerts
    both = trees_or_skip(args)
    if both is None:
        return
    old, new = both
    stores: list[tuple[str, Callable[[str, int], Callable[[Path], str]]]] = []
    if not args.no_sqlite:
        stores.append(("sqlite", lambda side, i: lambda d: f"sqlite:///{d}/aiops.db"))
    pg = None
    if args.postgres:
        try:
            pg = _start_postgres()
        except Exception as e:
            print(f"PostgreSQL skipped: {e}")
        else:
            stores.append(("postgresql", lambda side, i: lambda d: _pg_database(pg, f"bench_{side}_{i}")))
    result: dict[str, Any] = {}
    try:
        for store, url in stores:
            print(
                f"{store}: 1,000 services, 61 rules, 1,000 incidents opened first; storm of {args.alerts:,} "
                f"alerts (new) / {args.old_alerts:,} (old {old.revision}), {args.batch} per POST, "
                f"{args.clients} clients; {args.repeat} run(s) each, alternating",
                flush=True,
            )
            runs = alternate(
                args.repeat,
                [(old, args.old_alerts), (new, args.alerts)],
                lambda tree, n, i, url=url: run_side(tree, url(tree.name, i), n, args.batch, args.clients),
                lambda r: (
                    f"{r['alerts_per_s']:,.0f} alerts/s ({r['alerts']:,} in {r['seconds']:.1f} s; "
                    f"all answered after {r['seconds_until_all_answered']:.1f} s; agent CPU "
                    f"{r['agent_cpu_us_per_alert']:,.0f} us/alert; POST p50 {r['post_p50_s'] * 1000:.0f} ms; "
                    f"HTTP {r['statuses']}; store {r['store']})"
                ),
            )
            if args.repeat:
                med = medians(runs, "alerts_per_s")
                target = 3000 if store == "sqlite" else 1500
                print(
                    f"  median alerts/s on {store}: old {med['old']:,.0f}, new {med['new']:,.0f}, "
                    f"ratio {ratio(med['new'], med['old']):.1f}x (target >= {target:,})\n",
                    flush=True,
                )
                result[store] = {"runs": runs, "median": med, "ratio": ratio(med["new"], med["old"])}
        if args.profile:
            with tempfile.TemporaryDirectory(prefix="aiops-bench-prof-") as prof:
                r = run_side(
                    new,
                    lambda d: f"sqlite:///{d}/aiops.db",
                    args.alerts,
                    args.batch,
                    args.clients,
                    Path(prof),
                )
                print(f"profiled run (slower under cProfile): {r['alerts_per_s']:,.0f} alerts/s")
                result["profile"] = print_thread_profiles(Path(prof), args.top)
    finally:
        if pg is not None:
            pg.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _start_postgres() -> Any:
    from tests.support.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    return server


def _pg_database(server: Any, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(server.url("postgres").replace("postgresql+psycopg2", "postgresql"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return str(server.url(name))


if __name__ == "__main__":
    if "--agent" in sys.argv:
        agent_main(sys.argv[1:])
    else:
        main()
