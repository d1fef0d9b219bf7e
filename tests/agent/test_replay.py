"""`aiops replay` on real history: a real Prometheus that scraped a real service through a fault (and
its request log), replayed by the real command line. Nothing runs, the live store is never written,
and a second rule set is compared with the first over the same history."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlmodel import Session

from agent.config import load_config
from agent.core.envelope import Matcher, Switch
from agent.shell.store import Store
from agent.shell.store.tables import KnownError
from demo.processes import prometheus_binary, start_prometheus, wait_until
from tests.conftest import DemoExporter, require, start_exporter
from tests.e2e.conftest import HEALTHY, write_config
from tests.support.prom_history import wait_for_history

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")


@dataclass
class Recorded:
    """A service's history in a Prometheus that is still up: calm, a fault from `fault_at` to
    `fixed_at` (fixed by hand, not by the agent), calm again."""

    url: str
    exporter: DemoExporter
    request_log: Path
    since: float
    fault_at: float
    fixed_at: float
    until: float


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    work = tmp_path_factory.mktemp("replay")
    request_log = work / "requests.log"
    exporter = start_exporter(log_file=request_log)
    proc, url = start_prometheus(work / "prometheus", {"demo": [exporter.address]})
    try:
        wait_for_history(url, ('up{job="demo"}',), 3)
        since = time.time()
        time.sleep(12)  # calm history to begin with; the static threshold needs no warm-up
        exporter.service.set_fault(True)
        fault_at = time.time()
        time.sleep(10)
        exporter.service.set_fault(False)  # a person fixed it: the replayed change finds it verified
        fixed_at = time.time()
        wait_until(lambda: _healthy_in_prometheus(url), 30, "the recovery to show in Prometheus")
        time.sleep(3)
        yield Recorded(url, exporter, request_log, since, fault_at, fixed_at, time.time())
    finally:
        proc.stop()
        exporter.stop()


def _healthy_in_prometheus(url: str) -> bool:
    r = requests.get(f"{url}/api/v1/query", params={"query": HEALTHY}, timeout=2)
    return bool(r.json()["data"]["result"])


def config_dir(tmp_path: Path, rec: Recorded, **kw: Any) -> Path:
    cfg = write_config(tmp_path, rec.url, **kw)
    doc = yaml.safe_load(cfg.read_text())
    doc["log_sources"] = [
        {
            "name": "requests",
            "type": "file",
            "paths": [str(rec.request_log)],
            "service": "demo-web",
            "detection": {"bucket": "2s", "warmup": "6s", "warmup_lines": 100},
        }
    ]
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


def replay(cfg: Path, rec: Recorded, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [AIOPS, "replay", "-c", str(cfg), "--since", str(rec.since), "--until", str(rec.until), *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def replay_json(cfg: Path, rec: Recorded) -> dict[str, Any]:
    done = replay(cfg, rec, "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def baseline(recorded: Recorded, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = config_dir(tmp_path_factory.mktemp("cfg"), recorded)
    done = replay(cfg, recorded, "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)  # stdout is one JSON document, progress went to stderr
    doc["_config"] = str(cfg)
    assert "replayed" in done.stderr
    return doc


def test_replay_finds_the_fault_and_plans_the_remediation(
    baseline: dict[str, Any], recorded: Recorded
) -> None:
    [incident] = baseline["incidents"]
    assert incident["service"] == "demo-web" and incident["priority"] == "P1"
    opened = at(incident["opened_at"])
    assert recorded.fault_at <= opened <= recorded.fault_at + 8  # scraped every 1 s, polled every 1 s
    assert {s["name"] for s in incident["signals"]} >= {"demo_error_ratio"}
    [change] = incident["changes"]
    assert change["runbook"] == "recycle_workers" and change["approval"] == "auto"
    assert change["params"] == {"url": f"http://{recorded.exporter.address}/admin/recycle"}
    # its verification was evaluated on the history that followed: it held once the fault was fixed
    assert change["status"] == "succeeded" and "condition held in the history" in change["outcome"]
    assert at(incident["resolved_at"]) >= recorded.fixed_at
    assert incident["rules_matched"] == ["fix-demo"]


def test_replay_reads_file_logs_by_their_own_timestamps(baseline: dict[str, Any], recorded: Recorded) -> None:
    lines = [ln for ln in recorded.request_log.read_text().splitlines() if ln]
    assert 0 < baseline["totals"]["log_lines"] <= len(lines)
    [incident] = baseline["incidents"]
    burst = [s for s in incident["signals"] if s["name"] == "log_error_burst"]
    assert burst and recorded.fault_at - 1 <= at(burst[0]["first_at"]) <= recorded.fixed_at


def test_replay_runs_nothing_and_writes_nothing(baseline: dict[str, Any], recorded: Recorded) -> None:
    live_store = Path(baseline["_config"]).parent / "aiops.db"
    assert not live_store.exists(), "the live store must not even be created"
    recycles = recorded.exporter.service.recycles._value.get()
    assert recycles == 1, "the fix by hand recycled once; a runbook that ran would have recycled again"


def test_the_document_has_the_shape_the_spec_gives(baseline: dict[str, Any]) -> None:
    assert set(baseline) >= {"incidents", "problem_candidates", "totals"}
    for incident in baseline["incidents"]:
        assert set(incident) >= {"service", "priority", "opened_at", "resolved_at", "signals", "changes"}
        assert all("runbook" in c for c in incident["changes"])
    assert baseline["totals"]["incidents"] == len(baseline["incidents"])
    assert baseline["totals"]["series"] == 1 and baseline["totals"]["speedup"] > 1


def test_replaying_again_gives_the_same_answer(baseline: dict[str, Any], recorded: Recorded) -> None:
    again = json.loads(replay(Path(baseline["_config"]), recorded, "--json").stdout)
    strip = ("wall_seconds", "speedup")
    assert again["incidents"] == baseline["incidents"]
    assert {k: v for k, v in again["totals"].items() if k not in strip} == {
        k: v for k, v in baseline["totals"].items() if k not in strip
    }


def test_shadow_mode_shows_what_another_rule_set_would_change(
    baseline: dict[str, Any], recorded: Recorded, tmp_path: Path
) -> None:
    rules = yaml.safe_load((Path(baseline["_config"]).parent / "rules.yaml").read_text())
    rules["rules"][0]["guards"]["approval"] = "required"
    candidate = tmp_path / "stricter.yaml"
    candidate.write_text(yaml.safe_dump(rules))
    done = replay(Path(baseline["_config"]), recorded, "--json", "--rules", str(candidate))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    [change] = doc["incidents"][0]["changes"]
    assert (change["approval"], change["status"]) == ("required", "awaiting_approval")
    [difference] = doc["shadow"]["differences"]
    assert difference["baseline"] == ["recycle_workers (fix-demo, auto)"]
    assert difference["candidate"] == ["recycle_workers (fix-demo, required)"]
    assert doc["shadow"]["baseline_totals"]["would_run"] == 1 and doc["totals"]["would_run"] == 0
    text = replay(Path(baseline["_config"]), recorded, "--rules", str(candidate)).stdout
    assert "shadow: 1 incident(s) planned differently" in text


def test_a_broken_rule_set_is_refused_naming_file_and_line(
    baseline: dict[str, Any], recorded: Recorded, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    runbook: no_such_runbook\n")
    done = replay(Path(baseline["_config"]), recorded, "--rules", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert f"{bad}:3: " in done.stderr and "no_such_runbook" in done.stderr


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [("soon", "0s", "neither a duration"), ("1h", "2h", "--until must be after --since")],
)
def test_bad_windows_are_refused(baseline: dict[str, Any], since: str, until: str, message: str) -> None:
    args = [AIOPS, "replay", "-c", baseline["_config"], "--since", since, "--until", until]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and message in done.stderr


def test_an_unreachable_prometheus_is_a_clear_error(tmp_path: Path, recorded: Recorded) -> None:
    cfg = write_config(tmp_path, "http://127.0.0.1:9")
    done = replay(cfg, recorded)
    assert done.returncode == 1 and "cannot read history" in done.stderr


@pytest.mark.parametrize("hold", ["silence", "pause"])
def test_silences_and_pauses_recorded_then_are_applied(recorded: Recorded, tmp_path: Path, hold: str) -> None:
    cfg = config_dir(tmp_path, recorded)
    live = Store.open(load_config(cfg).agent.store.url)
    before = datetime.fromtimestamp(recorded.since - 60, UTC)
    try:
        if hold == "silence":
            live.silences.add(
                [Matcher.parse("service=demo-web")],
                before,
                before + timedelta(hours=1),
                "cli:bob",
                "drill",
                before,
            )
        else:
            live.switches.add(Switch("pause", None, None, "freeze", "cli:bob", before))
        audit_before = len(live.audit.list())
    finally:
        live.close()
    doc = replay_json(cfg, recorded)
    [incident] = doc["incidents"]
    assert incident["changes"] == [], f"the {hold} recorded in the live store holds the plan back"
    if hold == "silence":
        assert incident["muted"] and incident["muted"][0].endswith(
            "muted by silence #1 (service=demo-web; cli:bob: drill)"
        )
        assert doc["totals"]["silences_applied"] == 1
    else:
        assert any("automation paused everywhere by cli:bob: freeze" in h for h in incident["held_back"])
        assert doc["totals"]["switches_applied"] == 1
    live = Store.open(load_config(cfg).agent.store.url)
    try:
        assert len(live.audit.list()) == audit_before and live.incidents.list() == []  # read, never written
    finally:
        live.close()


def test_known_errors_recorded_then_link_incidents_and_run_their_workaround(
    recorded: Recorded, tmp_path: Path
) -> None:
    params = {"incident_id": "{incident.id}", "service": "{service}"}
    cfg = config_dir(tmp_path, recorded, runbook="known_error_workaround", params=params)
    live = Store.open(load_config(cfg).agent.store.url)
    before = datetime.fromtimestamp(recorded.since - 60, UTC)
    signatures = ["demo-web:demo_error_ratio", "demo-web:log_error_burst", "demo-web:log_new_template"]
    try:
        with Session(live.engine) as s:
            s.add(
                KnownError(
                    signature=signatures[0],
                    signatures=signatures,
                    title="error burst",
                    workaround="collect diagnostics and recycle",
                    workaround_runbook="collect_diagnostics",
                    created_at=before,
                )
            )
            s.commit()
    finally:
        live.close()
    doc = replay_json(cfg, recorded)
    [incident] = doc["incidents"]
    [change] = incident["changes"]
    assert change["runbook"] == "collect_diagnostics"  # the known error's workaround, not the rule's name
    assert doc["totals"]["known_errors_applied"] == 1
