"""The demo: a faultable service, a real Prometheus and `aiops run`, all on 127.0.0.1.

It waits for the agent's detectors to warm up, injects a fault, lets the agent detect it, open an
incident, run the repair runbook and verify it, then prints the incident and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from demo.processes import (
    ROOT,
    ManagedProcess,
    StartupError,
    free_port,
    start_demo_service,
    start_prometheus,
    wait_until,
)

CONFIG = ROOT / "config" / "demo" / "agent.yaml"


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m" if sys.stdout.isatty() else f"==> {message}", flush=True)


def _stream(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Show the agent's log live in the terminal, and keep a copy."""
    assert proc.stdout is not None
    with log.open("ab") as f:
        for line in proc.stdout:
            f.write(line)
            sys.stdout.write("    agent | " + line.decode(errors="replace"))
            sys.stdout.flush()


def _metric(text: str, name: str, labels: str) -> float | None:
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def _ts(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def run_demo(workdir: Path, timeout: float) -> dict[str, Any]:
    started: list[ManagedProcess] = []
    agent: subprocess.Popen[bytes] | None = None
    try:
        say(f"working directory {workdir} (logs, Prometheus data, the incident store)")
        service, service_url = start_demo_service(workdir, log=workdir / "demo-service.requests.log")
        started.append(service)
        say(f"demo service up at {service_url} (metrics on /metrics, fault switch on POST /fault)")
        api_port = free_port()
        api = f"http://127.0.0.1:{api_port}"
        prom, prom_url = start_prometheus(
            workdir / "prometheus",
            {"demo": [service_url.removeprefix("http://")], "aiops": [f"127.0.0.1:{api_port}"]},
        )
        started.append(prom)
        say(f"Prometheus up at {prom_url}, scraping every second; first samples stored")

        store = workdir / "aiops-demo.db"
        env = {
            **os.environ,
            "AIOPS_PROMETHEUS_URL": prom_url,
            "AIOPS_API_LISTEN": f"127.0.0.1:{api_port}",
            "AIOPS_STORE_URL": f"sqlite:///{store}",
            "AIOPS_STATE_DIR": str(workdir / "state"),
            "AIOPS_DEMO_LOG": str(workdir / "demo-service.requests.log"),
            "LC_ALL": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        aiops = str(Path(sys.executable).parent / "aiops")
        say(f"starting: aiops run -c {CONFIG.relative_to(ROOT)}")
        agent = subprocess.Popen(
            [aiops, "run", "-c", str(CONFIG)],
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=_stream, args=(agent, workdir / "agent.log"), daemon=True).start()

        def warm() -> bool:
            if agent.poll() is not None:
                raise StartupError(
                    f"the agent exited with code {agent.returncode}; see {workdir / 'agent.log'}"
                )
            _no_false_alarm()
            text = requests.get(f"{api}/metrics", timeout=2).text
            ready = _metric(text, "aiops_detector_series", 'state="ready"') or 0
            warming = _metric(text, "aiops_detector_series", 'state="warming"')
            return ready >= 2 and warming == 0

        def _no_false_alarm() -> None:
            """The service is healthy until the fault: an incident now is a false alarm, and the demo
            says so instead of carrying on as if it had not happened."""
            opened = requests.get(f"{api}/api/v1/incidents", timeout=2).json()
            if opened:
                first = opened[-1]
                raise StartupError(
                    f"false alarm: the agent opened incident #{first['id']} ({first['title']}) before any "
                    "fault was injected"
                )

        say("waiting for the agent's detectors to learn the service's normal behaviour")
        wait_until(warm, 90, "detectors to warm up", interval=0.5)
        _no_false_alarm()

        say("injecting a fault: the service's workers get stuck (slow, failing requests)")
        t_fault = time.time()
        requests.post(f"{service_url}/fault", timeout=5).raise_for_status()

        def resolved() -> dict[str, Any] | None:
            if agent.poll() is not None:
                raise StartupError(f"the agent exited with code {agent.returncode}")
            items = requests.get(f"{api}/api/v1/incidents", timeout=2).json()
            done = [i for i in items if i["status"] == "resolved" and _ts(i["opened_at"]) >= t_fault - 1]
            return requests.get(f"{api}/api/v1/incidents/{done[0]['id']}", timeout=2).json() if done else None

        incident = wait_until(resolved, timeout, "the incident to be resolved", interval=0.5)
        state = requests.get(f"{service_url}/state", timeout=2).json()
        if state["fault"]:
            raise StartupError("the incident resolved but the service is still faulted")
        timings = _timings(incident, t_fault)
        say("the agent repaired the service: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
        return {"incident": incident["id"], "store": str(store), "timings": timings}
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            try:
                agent.wait(20)
            except subprocess.TimeoutExpired:
                agent.kill()
        for p in reversed(started):
            p.stop()


def _timings(incident: dict[str, Any], t_fault: float) -> dict[str, float]:
    change = incident["changes"][0]
    run = change["runs"][0]
    return {
        "fault->incident opened": _ts(incident["opened_at"]) - t_fault,
        "incident->runbook started": _ts(run["started_at"]) - _ts(incident["opened_at"]),
        "runbook duration": float(run["duration_s"]),
        "runbook finished->resolved": _ts(incident["resolved_at"]) - _ts(run["finished_at"]),
        "fault->resolved": _ts(incident["resolved_at"]) - t_fault,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--workdir", type=Path, help="keep logs and data here (default: a fresh temporary directory)"
    )
    p.add_argument("--timeout", type=float, default=90, help="seconds to wait for the repair after the fault")
    p.add_argument("--timings-json", type=Path, help="also write the measured timings to this file")
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="aiops-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        result = run_demo(workdir.resolve(), args.timeout)
    except (StartupError, TimeoutError, requests.RequestException) as e:
        say(f"demo failed: {e}")
        say(f"logs are in {workdir}")
        return 1
    if args.timings_json:
        args.timings_json.write_text(json.dumps(result["timings"], indent=2))
    say(
        f"all processes stopped; demo took {time.monotonic() - t0:.0f}s. The incident, as an on-call engineer sees it:"
    )
    print(f"$ aiops incidents show {result['incident']}", flush=True)
    aiops = str(Path(sys.executable).parent / "aiops")
    shown = subprocess.run(
        [aiops, "incidents", "show", str(result["incident"]), "--store", f"sqlite:///{result['store']}"],
        check=False,
    )
    return shown.returncode


if __name__ == "__main__":
    sys.exit(main())
