from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from agent.cli.main import app
from agent.core.rca import Evidence
from agent.offline import CsvFormatError
from agent.offline_rca import Window, evidence_from_scores, read_edges, read_series

STEP = 60.0
T0 = 1_700_000_000.0
HISTORY = 400


def write_series(root: Path, service: str, metric: str, onset: int | None, rng: random.Random) -> None:
    """HISTORY quiet points, then 20 more; from `onset` on (an index into the last 20) the level jumps."""
    lines = ["timestamp,value"]
    for i in range(HISTORY + 20):
        v = 10.0 + rng.gauss(0, 0.5)
        if onset is not None and i >= HISTORY + onset:
            v += 40.0
        lines.append(f"{T0 + i * STEP:.0f},{v:.3f}")
    (root / f"{service}__{metric}.csv").write_text("\n".join(lines) + "\n")


def scenario(tmp_path: Path) -> tuple[Path, Path, float]:
    series = tmp_path / "series"
    series.mkdir()
    rng = random.Random(7)
    for service, onset in (("web", 6), ("api", 4), ("db", 2), ("cache", None), ("auth", None)):
        write_series(series, service, "latency", onset, rng)
        write_series(series, service, "errors", onset if service == "db" else None, rng)
    graph = tmp_path / "edges.csv"
    graph.write_text("caller,callee\nweb,api\napi,db\napi,cache\nweb,auth\n")
    return series, graph, T0 + (HISTORY + 6) * STEP


def test_rca_json_ranks_the_deepest_earliest_service_first(tmp_path: Path) -> None:
    series, graph, at = scenario(tmp_path)
    args = [
        "rca",
        "--series",
        str(series),
        "--graph",
        str(graph),
        "--at",
        f"{at:.0f}",
        "--target",
        "web",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    services = [c["service"] for c in doc["candidates"]]
    assert services[:3] == ["db", "api", "web"]
    top = doc["candidates"][0]
    assert set(top) == {"service", "score", "reasons"}
    assert "first to turn anomalous" in top["reasons"]
    assert "2 of 2 metrics anomalous" in top["reasons"]


def test_rca_table_and_iso_time(tmp_path: Path) -> None:
    series, graph, at = scenario(tmp_path)
    from datetime import UTC, datetime

    iso = datetime.fromtimestamp(at, UTC).isoformat()
    result = CliRunner().invoke(app, ["rca", "--series", str(series), "--graph", str(graph), "--at", iso])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split()[1] == "db"


def test_rca_errors_name_the_problem(tmp_path: Path) -> None:
    series, graph, at = scenario(tmp_path)
    base = ["rca", "--series", str(series), "--graph", str(graph)]
    bad = CliRunner().invoke(app, [*base, "--at", "yesterday"])
    assert bad.exit_code == 1 and "error:" in bad.output
    unknown = CliRunner().invoke(app, [*base, "--at", f"{at:.0f}", "--target", "nope"])
    assert unknown.exit_code == 1 and "unknown --target 'nope'" in unknown.output
    graph.write_text("from,to\na,b\n")
    header = CliRunner().invoke(app, [*base, "--at", f"{at:.0f}"])
    assert header.exit_code == 1 and "caller,callee" in header.output


def test_read_helpers_reject_bad_input(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("caller,callee\nweb\n")
    try:
        read_edges(tmp_path / "e.csv")
    except CsvFormatError as e:
        assert ":2:" in str(e)
    else:
        raise AssertionError("no error")
    empty = tmp_path / "empty"
    empty.mkdir()
    try:
        read_series(empty)
    except CsvFormatError as e:
        assert "no `<service>__<metric>.csv` files" in str(e)
    else:
        raise AssertionError("no error")


def test_evidence_uses_only_the_window(tmp_path: Path) -> None:
    import numpy as np

    from agent.offline import Stream

    ts = np.array([0.0, 100.0, 200.0, 300.0])
    s = Stream(tmp_path / "svc__m.csv", [], ts, np.zeros(4))
    (ev,) = evidence_from_scores([s], [np.array([0.99, 0.1, 0.9, 0.95])], Window(200.0, 100.0, 50.0), 0.8)
    assert ev == Evidence("svc", onset=200.0, peak=0.9, anomalous=1, metrics=1)
