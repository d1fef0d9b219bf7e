"""Time to detect at shipped defaults: fault -> first Ansible task, for the agent and for the incumbent
Alertmanager -> Event-Driven Ansible path, in one run against the same Prometheus and the same faults.

One stack for the whole run: the demo exporter (demo/service.py) scraped every 15 s by a real Prometheus
that also evaluates an alerting rule with the agent's threshold (`up{job="demo"} < 1`, `for: 0s`) at
Prometheus' default evaluation interval (1m) and sends to a real Alertmanager with its defaults
(group_wait 30s). Each trial starts a fresh agent (`aiops run` with config/agent.yaml as shipped, only
`dry_run: false`, and rules.yaml holding one rule: target_down -> a trivial playbook) and a fresh
Alertmanager, waits a random 0-15 s (so the fault lands anywhere in the scrape, poll and evaluation
cycles), then takes the exporter down: `target_down` is the shipped query with a static threshold.

Both paths run the same playbook through ansible-runner (integrations.ansible, as the agent runs it);
its first task writes the time it ran, and that is the end of the measurement. Event-Driven Ansible
itself is not installable here: its part is emulated by a webhook receiver in this process that starts
the playbook on the first firing notification (EDA's own rulebook overhead, a few hundred ms to seconds
in practice, is not counted, which favours the incumbent).

    .venv/bin/python -m bench.ttd            # 5 trials (~10 min)
    .venv/bin/python -m bench.ttd --quick    # 2 trials
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from bench.baseline import Tree, worktree
from demo.processes import ManagedProcess, free_port, prometheus_binary, wait_until
from demo.service import DemoService, make_handler
from integrations.ansible import AnsibleRunner, PlaybookRun

SCRAPE = 15.0
OLD_REVISION = (
    "6fa43ca"  # the agent before the time-to-detect change (30 s polls, a range grid on multiples of step)
)
NAMES = {"new": "agent", "old": "agent before", "incumbent": "Prometheus -> Alertmanager -> EDA"}
PLAYBOOK = """\
---
- name: Time-to-detect mark
  hosts: all
  gather_facts: false
  tasks:
    - name: Record when the first task ran
      ansible.builtin.shell: "date +%s.%N > {{ out_file | quote }}"
      changed_when: true
"""
CATALOG = """\
runbooks:
  ttd_mark:
    playbook: ttd_mark.yml
    description: Write the time the first task ran (bench.ttd).
    risk: low
    change_type: standard
    timeout: 1m
    params:
      out_file: {type: string, pattern: '^/[A-Za-z0-9._/\\-]+$', description: Where to write it.}
    verify:
      promql: vector(1)
      deadline: 10s
"""
RULES = """\
rules:
  - name: mark-target-down
    description: bench.ttd - the first remediation step after a target goes down.
    match:
      signals: [target_down]
    runbook: ttd_mark
    params:
      out_file: "{out_file}"
"""
ALERT_RULES = """\
groups:
  - name: ttd
    rules:
      - alert: TargetDown
        expr: up{job="demo"} < 1
        for: 0s
"""


class Exporter:
    """The demo service's exporter on a fixed port; down() closes the port (a target that stopped)."""

    def __init__(self, port: int):
        self.port = port
        self.service = DemoService(rps=20.0, seed=7)
        threading.Thread(target=self.service.simulate, daemon=True).start()
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), make_handler(self.service))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


class Receiver:
    """The EDA emulation: on the first firing TargetDown notification after arm(), run the playbook."""

    def __init__(self, playbook: Path):
        self.playbook = playbook
        self.lock = threading.Lock()
        self.out_file: Path | None = None
        self.notified_at: float | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.notified(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def arm(self, out_file: Path) -> None:
        with self.lock:
            self.out_file, self.notified_at = out_file, None

    def notified(self, body: dict[str, Any]) -> None:
        firing = [
            a
            for a in body.get("alerts", [])
            if a.get("status") == "firing" and a.get("labels", {}).get("alertname") == "TargetDown"
        ]
        with self.lock:
            out, self.out_file = (self.out_file, None) if firing else (None, self.out_file)
            if out is not None:
                self.notified_at = time.time()
        if out is not None:
            run = PlaybookRun(self.playbook, {"out_file": str(out)}, timeout=60)
            threading.Thread(target=AnsibleRunner().run, args=(run,), daemon=True).start()


def start_prometheus(work: Path, exporter_port: int, am_port: int) -> tuple[ManagedProcess, str]:
    binary = prometheus_binary()
    if binary is None:
        sys.exit("prometheus is not installed (Debian: apt-get install prometheus)")
    (work / "alerts.yml").write_text(ALERT_RULES)
    # evaluation_interval is not set: Prometheus' default (1m) applies, as in a stock installation
    (work / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE:g}s\n"
        "rule_files: [alerts.yml]\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
        f"scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    port = free_port()
    proc = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={work / 'data'}",
            "--log.level=warn",
        ],
        work / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _query(url, 'up{job="demo"} == 1'), 60, "Prometheus' first scrape", interval=0.5)
    return proc, url


def start_alertmanager(work: Path, port: int, receiver: Receiver) -> ManagedProcess:
    work.mkdir(parents=True)
    # route and receiver only: group_wait (30s), group_interval, repeat_interval at their defaults
    (work / "alertmanager.yml").write_text(
        f"route:\n  receiver: eda\nreceivers:\n  - name: eda\n    webhook_configs:\n      - url: {receiver.url}\n"
    )
    proc = ManagedProcess(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        work / "alertmanager.log",
    )
    wait_until(lambda: _ok(f"http://127.0.0.1:{port}/-/ready"), 30, "Alertmanager ready", interval=0.2)
    return proc


def agent_config(work: Path, out_file: Path, root: Path) -> Path:
    """config/ as shipped (in `root`), with dry_run off and the one rule; the catalog holds the trivial
    playbook."""
    conf = work / "config"
    conf.mkdir(parents=True)
    shipped = (root / "config" / "agent.yaml").read_text()
    assert "\ndry_run: true\n" in shipped
    (conf / "agent.yaml").write_text(shipped.replace("\ndry_run: true\n", "\ndry_run: false\n"))
    (conf / "services.yaml").write_text((root / "config" / "services.yaml").read_text())
    (conf / "rules.yaml").write_text(RULES.format(out_file=out_file))
    books = work / "runbooks"
    books.mkdir()
    (books / "catalog.yaml").write_text(CATALOG)
    (books / "ttd_mark.yml").write_text(PLAYBOOK)
    return conf / "agent.yaml"


def start_agent(work: Path, prom_url: str, out_file: Path, tree: Tree) -> tuple[ManagedProcess, str]:
    """`aiops run` of `tree`'s code with `tree`'s shipped config."""
    cfg = agent_config(work, out_file, tree.root)
    port = free_port()
    env = {
        **tree.env(),
        "AIOPS_PROMETHEUS_URL": prom_url,
        "AIOPS_API_LISTEN": f"127.0.0.1:{port}",
        "AIOPS_STORE_URL": f"sqlite:///{work / 'aiops.db'}",
        "AIOPS_STATE_DIR": str(work / "state"),
        "LC_ALL": "C.UTF-8",
    }
    argv = tree.argv("-c", "from agent.cli.main import main; raise SystemExit(main())", "run", "-c", str(cfg))
    proc = ManagedProcess("aiops", argv, work / "agent.log", env=env, cwd=work)
    api = f"http://127.0.0.1:{port}"

    def polled() -> bool:
        if not proc.alive():
            raise RuntimeError(f"the agent exited:\n{proc.tail()}")
        try:
            text = requests.get(f"{api}/metrics", timeout=2).text
        except requests.RequestException:
            return False
        return 'aiops_polls_total{source="prometheus:target_down"}' in text

    wait_until(polled, 60, "the agent's first poll", interval=0.2)
    return proc, api


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _query(url: str, promql: str) -> bool:
    try:
        r = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=2)
        return bool(r.json()["data"]["result"])
    except (requests.RequestException, ValueError, KeyError):
        return False


def _mark(path: Path) -> float | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return float(text) if text else None


def trial(
    n: int, work: Path, prom_url: str, exporter: Exporter, am_port: int, receiver: Receiver, trees: list[Tree]
) -> dict[str, float]:
    """One fault, seen by every path at once: {path: seconds from the fault to its first Ansible task}."""
    here = work / f"trial-{n}"
    here.mkdir()
    # no down sample left within reach of a first poll (the agent before judged a point up to a step back)
    calm = (
        f'min_over_time(up{{job="demo"}}[{2 * SCRAPE:g}s]) == 1 unless on() ALERTS{{alertname="TargetDown"}}'
    )
    wait_until(lambda: _query(prom_url, calm), 200, "the target up for two scrapes, the alert resolved", 1)
    marks = {"incumbent": here / "incumbent.mark"}
    started = [start_alertmanager(here / "alertmanager", am_port, receiver)]
    try:
        for tree in trees:
            marks[tree.name] = here / f"{tree.name}.mark"
            started.append(start_agent(here / tree.name, prom_url, marks[tree.name], tree)[0])
        receiver.arm(marks["incumbent"])
        time.sleep(random.uniform(0, SCRAPE))  # the fault lands anywhere in the scrape/poll/evaluation cycles
        exporter.down()
        t0 = time.time()
        wait_until(lambda: all(_mark(m) for m in marks.values()), 300, "every path's first Ansible task", 0.2)
        took = {name: (_mark(m) or math.nan) - t0 for name, m in marks.items()}
        return {**took, "notified": (receiver.notified_at or math.nan) - t0}
    finally:
        exporter.up()
        for proc in reversed(started):
            proc.stop()
        # the next trial starts with the target up and the alert resolved in Prometheus
        healthy = 'up{job="demo"} == 1 unless on() ALERTS{alertname="TargetDown"}'
        wait_until(lambda: _query(prom_url, healthy), 200, "the target up and the alert resolved", 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 trials")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--old",
        default=OLD_REVISION,
        metavar="REV",
        help=f"also run this revision's agent with its shipped config (default {OLD_REVISION}; 'none' to skip)",
    )
    args = p.parse_args()
    trees = [Tree.current()]
    if args.old != "none":
        trees.append(worktree(args.old))
    trials = 2 if args.quick else args.trials
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="aiops-ttd-"))
    print(f"working directory {work}", flush=True)
    exporter = Exporter(free_port())
    receiver = Receiver(work / "ttd_mark.yml")
    (work / "ttd_mark.yml").write_text(PLAYBOOK)
    am_port = free_port()
    prom, prom_url = start_prometheus(work, exporter.port, am_port)
    results = []
    try:
        for n in range(trials):
            r = trial(n, work, prom_url, exporter, am_port, receiver, trees)
            results.append(r)
            paths = ", ".join(f"{NAMES[t.name]} {r[t.name]:.1f}s" for t in trees)
            print(
                f"trial {n + 1}/{trials}: {paths}, incumbent {r['incumbent']:.1f}s (webhook at {r['notified']:.1f}s)",
                flush=True,
            )
    finally:
        prom.stop()
        exporter.service.stop.set()
    print(f"\nfault -> first Ansible task, {trials} trials (median, range):")
    for key in [t.name for t in trees] + ["incumbent"]:
        name = NAMES[key] + "".join(f" ({t.revision})" for t in trees if t.name == key)
        xs = [r[key] for r in results]
        print(f"  {name:36} {statistics.median(xs):6.1f}s  [{min(xs):.1f}-{max(xs):.1f}]")


if __name__ == "__main__":
    main()
