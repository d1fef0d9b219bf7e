"""End-to-end latency of the self-healing loop, measured by running the demo N times.

Reports the median of each phase (fault -> incident opened, incident -> runbook started, runbook
duration, runbook finished -> resolved, fault -> resolved) and, as a same-run baseline, a bare
ansible-runner run of the same playbook against the same kind of service: the ratio shows what the
agent adds on top of Ansible itself.

    .venv/bin/python -m bench.demo_latency --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from demo.processes import ROOT, start_demo_service
from demo.run import run_demo
from integrations.ansible import AnsibleRunner, PlaybookRun


def bare_runbook_seconds(workdir: Path) -> float:
    proc, url = start_demo_service(workdir)
    try:
        t0 = time.perf_counter()
        outcome = AnsibleRunner().run(
            PlaybookRun(
                ROOT / "runbooks" / "recycle_workers.yml", {"url": f"{url}/admin/recycle"}, timeout=60
            )
        )
        took = time.perf_counter() - t0
        assert outcome.ok, outcome.stdout
        return took
    finally:
        proc.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    phases: dict[str, list[float]] = {}
    baseline: list[float] = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
            baseline.append(bare_runbook_seconds(Path(tmp) / "baseline"))
            result = run_demo(Path(tmp) / "demo", timeout=90)
        for k, v in result["timings"].items():
            phases.setdefault(k, []).append(v)
        print(
            f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v:.2f}s" for k, v in result["timings"].items()),
            flush=True,
        )
    base = statistics.median(baseline)
    print(f"\nmedians over {args.runs} runs (seconds)")
    print("| phase | median | min | max |\n|---|---|---|---|")
    for k, vs in phases.items():
        print(f"| {k} | {statistics.median(vs):.2f} | {min(vs):.2f} | {max(vs):.2f} |")
    runbook = statistics.median(phases["runbook duration"])
    print(
        f"\nbaseline: bare ansible-runner run of recycle_workers.yml, median {base:.2f}s; "
        f"runbook as run by the agent / baseline = {runbook / base:.2f}"
    )


if __name__ == "__main__":
    main()
