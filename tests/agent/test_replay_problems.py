"""`aiops replay` over a generated history in a real Prometheus (backfilled with promtool) lists the
problem candidates that history raises: a database whose faults are followed within minutes by the
web tier's is a co-occurrence candidate, with its numbers; a cache faulting as often, independently,
is paired with neither."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from demo.processes import prometheus_binary
from tests.conftest import require
from tests.support.backfill import (
    BackfilledPrometheus,
    Fault,
    SyntheticSeries,
    generate,
    promtool_binary,
    start_prometheus_with_history,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
AIOPS = str(Path(sys.executable).parent / "aiops")
HOURS = 20  # Prometheus here keeps a day: the window is scaled down with the history
STEP = 30.0
SERVICES = ("db", "web", "cache")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackfilledPrometheus, float, float]]:
    """Error ratios of three services: db faults about hourly, web follows most of them 2 to 5 minutes
    later (and faults on its own now and then), cache faults as often as db, at random."""
    require(prometheus_binary() is not None, "prometheus (Debian package)")
    require(promtool_binary() is not None, "promtool (Debian package prometheus)")
    rng = np.random.default_rng(12)
    end = math.floor(time.time() / STEP) * STEP - 10 * STEP
    start = end - HOURS * 3600
    db = [start + 1800 + h * 3600 + rng.uniform(-600, 600) for h in range(HOURS - 1)]
    web = [t + rng.uniform(120, 300) for t in db if rng.random() < 0.85]
    web += rng.uniform(start + 600, end - 1800, 3).tolist()
    cache = rng.uniform(start + 600, end - 1800, len(db)).tolist()
    faults = {"db": db, "web": web, "cache": cache}
    series = [
        SyntheticSeries(
            "errors_ratio",
            {"service": name},
            level=0.01,
            amplitude=0.0,
            phase=0.0,
            noise=0.05,
            faults=tuple(Fault(at=at, size=20.0, kind="spike", duration=180) for at in faults[name]),
        )
        for name in SERVICES
    ]
    prometheus = start_prometheus_with_history(
        tmp_path_factory.mktemp("prometheus"), generate(series, start, end, STEP, seed=12)
    )
    yield prometheus, start, end
    prometheus.stop()


def write_config(directory: Path, prometheus_url: str) -> Path:
    services = [
        {"name": name, "tier": 2, "owner": "team", "selectors": [{"match": {"service": name}}]}
        for name in SERVICES
    ]
    agent: dict[str, Any] = {
        "store": {"url": f"sqlite:///{directory / 'aiops.db'}"},
        "prometheus": {"url": prometheus_url, "poll_interval": "1m", "step": "30s"},
        "queries": [
            {
                "name": "errors_ratio",
                "promql": "errors_ratio",
                "detector": None,
                "thresholds": [{"above": 0.1, "severity": "critical"}],
            }
        ],
        "correlation": {"window": "1m", "quiet_period": "1m", "reopen_window": "5m", "settle_period": "30s"},
        "problems": {"cooccurrence_window": "6m", "cooccurrence_horizon": "1d"},
        "api": {"enabled": False},
        "services_file": "services.yaml",
        "rules_file": "rules.yaml",
        "catalog_file": str(ROOT / "runbooks" / "catalog.yaml"),
    }
    (directory / "services.yaml").write_text(yaml.safe_dump({"services": services}))
    (directory / "rules.yaml").write_text(yaml.safe_dump({"rules": []}))
    (directory / "agent.yaml").write_text(yaml.safe_dump(agent))
    return directory / "agent.yaml"


def test_replay_lists_the_cooccurrence_its_history_raises(
    history: tuple[BackfilledPrometheus, float, float], tmp_path: Path
) -> None:
    prometheus, start, end = history
    cfg = write_config(tmp_path, prometheus.url)
    args = [AIOPS, "replay", "-c", str(cfg), "--since", str(start), "--until", str(end)]
    done = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    opened = {name: sum(1 for i in doc["incidents"] if i["service"] == name) for name in SERVICES}
    assert opened["db"] >= 15 and opened["web"] >= 15 and opened["cache"] >= 15, opened
    [pair] = [p for p in doc["problem_candidates"] if p["kind"] == "cooccurrence"]
    assert pair["services"] == ["db", "web"]
    assert pair["signatures"] == ["db:errors_ratio", "web:errors_ratio"]
    assert pair["count"] >= 12 and pair["p_value"] < 1e-3 and pair["lift"] > 3
    assert pair["expected"] == pytest.approx(pair["count"] / pair["lift"])
    costs = [p["cost"]["total"] for p in doc["problem_candidates"]]
    assert costs == sorted(costs, reverse=True) and pair["cost"]["open_hours"] > 0  # costliest first
    assert pair["trend"]["label"] in ("rising", "steady", "falling")
    assert not (tmp_path / "aiops.db").exists()  # a replay writes nothing to the live store
    text = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False).stdout
    assert "problem candidate (cooccurrence)" in text and "db + web:" in text
