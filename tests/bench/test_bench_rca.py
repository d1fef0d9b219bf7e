"""bench.rca end to end on a tiny PetShop-shaped dataset, and its skip without data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench import rca

NODES = ["PetSite", "db/main", "cache"]
T0 = 1_681_000_000


def wide(path: Path, start: int, rows: int, jumps: dict[str, int], rng: random.Random) -> None:
    cols = [(n, m) for n in NODES for m in ("latency", "requests")]
    lines = [
        ",".join(["microservice", *(n for n, _ in cols)]),
        ",".join(["metric", *(m for _, m in cols)]),
        ",".join(["statistic", *("Average" for _ in cols)]),
        "unix_timestamp" + "," * len(cols),
    ]
    for i in range(rows):
        cells = [f"{start + i * 300}.0"]
        for n, m in cols:
            v = 5.0 + rng.gauss(0, 0.2)
            if m == "latency" and n in jumps and i >= jumps[n]:
                v += 50.0
            cells.append(f"{v:.4f}")
        lines.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def dataset(root: Path) -> Path:
    rng = random.Random(3)
    for s in rca.SCENARIOS:
        d = root / s
        d.mkdir(parents=True)
        header = ",".join(["", *NODES])
        rows = ["PetSite,0,1,1", "db/main,0,0,0", "cache,0,0,0"]
        (d / "graph.csv").write_text("\n".join([header, *rows]) + "\n")
        if not s.startswith("temporal"):
            wide(d / "noissue" / "metrics.csv", T0 - 400 * 300, 300, {}, rng)
        for k, split in enumerate(("train", "test")):
            start = T0 + k * 3600
            wide(d / split / "issue_0" / "metrics.csv", start, 5, {"db/main": 2, "PetSite": 3}, rng)
            target = {
                "target": {"node": "PetSite", "metric": "latency", "agg": "Average", "timestamp": start + 610}
            }
            target["root_cause"] = {"node": "db/main", "metric": None}  # type: ignore[assignment]
            (d / split / "issue_0" / "target.json").write_text(json.dumps(target))
    return root


def test_bench_runs_and_reports_every_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rca.main(["--data", str(dataset(tmp_path))]) == 0
    out = capsys.readouterr().out
    low = next(line for line in out.splitlines() if line.startswith("low_traffic"))
    assert low.split()[2] == "100%"  # rca held-out top-1: db%2Fmain, the earliest deepest anomalous callee
    assert "all (pooled)" in out and "picked Weights(" in out


def test_bench_skips_cleanly_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rca.main(["--data", str(tmp_path / "absent")]) == 0
    assert capsys.readouterr().out.startswith("skipped: PetShop data not found")
