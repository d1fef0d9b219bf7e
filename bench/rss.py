"""Idle memory of `aiops run` and the start-up cost of the CLI, old release against this tree.

Each side runs `aiops run -c config/agent.yaml` (the shipped config of its own tree, with the store in
SQLite in a temporary directory, the API on a free port and Prometheus on a dead port, through the
config's environment variables), waits for /readyz, lets it idle `--idle` seconds, then reads VmRSS
(and the peak, VmHWM) from /proc/<pid>/status and whether river's or scipy's compiled modules are
mapped (/proc/<pid>/maps). One more start per side under `python -X importtime` gives the import
time of river and scipy, and `aiops --help` is timed (wall, median of `--help-runs`). Runs alternate
old and new; medians are reported.

    .venv/bin/python -m bench.rss
    .venv/bin/python -m bench.rss --repeat 5 --idle 10
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.baseline import stop

AIOPS = "import sys; from agent.cli.main import main; sys.argv[0] = 'aiops'; main()"
HEAVY = ("river", "scipy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def mapped(pid: int) -> dict[str, bool]:
    """Whether a compiled module of each heavy package is mapped into the process."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name: f"/site-packages/{name}/" in maps for name in HEAVY}


def start_agent(tree: Any, d: Path, importtime: bool = False) -> tuple[subprocess.Popen[bytes], str, Path]:
    import requests

    port = free_port()
    env = tree.env(
        {
            "AIOPS_STORE_URL": f"sqlite:///{d}/aiops.db",
            "AIOPS_API_LISTEN": f"127.0.0.1:{port}",
            "AIOPS_STATE_DIR": str(d / "state"),
            "AIOPS_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    log = d / "agent.log"
    flags = ["-X", "importtime"] if importtime else []
    with log.open("w") as out:
        proc = subprocess.Popen(
            tree.argv(*flags, "-c", AIOPS, "run", "-c", str(tree.root / "config" / "agent.yaml")),
            cwd=d,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"aiops run ({tree.name}) exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base, log
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(proc)
    raise TimeoutError(f"aiops run ({tree.name}) not ready after 120 s:\n{log.read_text()[-4000:]}")


def idle_rss(tree: Any, idle: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"aiops-bench-rss-{tree.name}-") as tmp:
        began = time.perf_counter()
        proc, _, _ = start_agent(tree, Path(tmp))
        ready = time.perf_counter() - began
        try:
            time.sleep(idle)
            return {
                "rss_mib": status_kib(proc.pid, "VmRSS") / 1024,
                "peak_mib": status_kib(proc.pid, "VmHWM") / 1024,
                "ready_after_s": ready,
                "mapped": mapped(proc.pid),
            }
        finally:
            stop(proc)


def import_times(tree: Any) -> dict[str, Any]:
    """Import time (s) of each heavy package's modules, and of all modules, in a start of `aiops run`:
    the sum of `-X importtime`'s self column (a package's own line covers only its __init__)."""
    with tempfile.TemporaryDirectory(prefix=f"aiops-bench-imp-{tree.name}-") as tmp:
        proc, _, log = start_agent(tree, Path(tmp), importtime=True)
        stop(proc)
        packages: dict[str, float] = {}
        for line in log.read_text().splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if own.isdigit():
                package = name.split(".", 1)[0]
                packages[package] = packages.get(package, 0.0) + int(own) / 1e6
        heaviest = dict(sorted(packages.items(), key=lambda kv: -kv[1])[:8])
        return {
            **{name: packages.get(name, 0.0) for name in HEAVY},
            "all_imports": sum(packages.values()),
            "heaviest": heaviest,
        }


def help_seconds(tree: Any, runs: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(prefix="aiops-bench-help-") as tmp:
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(
                tree.argv("-c", AIOPS, "--help"), cwd=tmp, env=tree.env(), capture_output=True, check=True
            )
            times.append(time.perf_counter() - t)
    return times


def main() -> None:
    from bench.baseline import alternate, comparison_parser, medians, trees_or_skip

    p = comparison_parser(__doc__)
    p.add_argument("--repeat", type=int, default=3, help="starts of `aiops run` per side")
    p.add_argument("--idle", type=float, default=5.0, help="seconds idle after /readyz before reading RSS")
    p.add_argument("--help-runs", type=int, default=5)
    args = p.parse_args()
    both = trees_or_skip(args)
    if both is None:
        return
    old, new = both
    print(
        f"`aiops run -c config/agent.yaml` (SQLite, dead Prometheus), idle {args.idle:g} s after /readyz; "
        f"old {old.revision} vs new {new.revision}; {args.repeat} start(s) each, alternating",
        flush=True,
    )
    runs = alternate(
        args.repeat,
        [(old, None), (new, None)],
        lambda tree, _, __: idle_rss(tree, args.idle),
        lambda r: (
            f"idle RSS {r['rss_mib']:.1f} MiB (peak {r['peak_mib']:.1f}), ready after "
            f"{r['ready_after_s']:.2f} s; river/scipy mapped: "
            + (", ".join(k for k, v in r["mapped"].items() if v) or "neither")
        ),
    )
    helps: dict[str, list[float]] = {"old": [], "new": []}
    imports = {}
    for tree in (old, new):
        imports[tree.name] = import_times(tree)
        got = imports[tree.name]
        print(
            f"  {tree.name} imports (-X importtime, own time of each package's modules): "
            f"river {got['river']:.2f} s, scipy {got['scipy']:.2f} s, all {got['all_imports']:.2f} s; heaviest: "
            + ", ".join(f"{k} {v:.2f}" for k, v in got["heaviest"].items()),
            flush=True,
        )
    for _ in range(args.help_runs):
        for tree in (old, new):
            helps[tree.name] += help_seconds(tree, 1)
    rss = medians(runs, "rss_mib")
    help_med = {k: statistics.median(v) for k, v in helps.items()}
    print(
        f"\nmedian idle RSS: old {rss['old']:.1f} MiB, new {rss['new']:.1f} MiB, new/old {rss['new'] / rss['old']:.2f} "
        f"(target <= 120 MiB)\nmedian `aiops --help`: old {help_med['old']:.2f} s, new {help_med['new']:.2f} s, "
        f"new/old {help_med['new'] / help_med['old']:.2f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": runs,
                    "median_rss_mib": rss,
                    "imports_s": imports,
                    "help_s": helps,
                    "median_help_s": help_med,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
