from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

import detectors
from agent.cli.main import app
from agent.core.rca import Evidence
from agent.offline import CsvFormatError
from agent.offline_rca import (
    SHORT_HISTORY_KIND,
    Window,
    detector_for,
    evidence_from_scores,
    harmful_direction,
    read_edges,
    read_series,
)

STEP = 60.0
T0 = 1_700_000_000.0
HISTORY = 400


def write_series(
    root: Path, service: str, metric: str, onset: int | None, rng: random.Random, history: int = HISTORY
) -> None:
    """`history` quiet points, then 20 more; from `onset` on (an index into the last 20) the level jumps."""
    lines = ["timestamp,value"]
    for i in range(history + 20):
        v = 10.0 + rng.gauss(0, 0.5)
        if onset is not None and i >= history + onset:
            v += 40.0
        lines.append(f"{T0 + i * STEP:.0f},{v:.3f}")
    (root / f"{service}__{metric}.csv").write_text("\n".join(lines) + "\n")


def scenario(tmp_path: Path, history: int = HISTORY) -> tuple[Path, Path, float]:
    series = tmp_path / "series"
    series.mkdir()
    rng = random.Random(7)
    for service, onset in (("web", 6), ("api", 4), ("db", 2), ("cache", None), ("auth", None)):
        write_series(series, service, "latency", onset, rng, history)
        write_series(series, service, "errors", onset if service == "db" else None, rng, history)
    graph = tmp_path / "edges.csv"
    graph.write_text("caller,callee\nweb,api\napi,db\napi,cache\nweb,auth\n")
    return series, graph, T0 + (history + 6) * STEP


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


def test_rca_with_history_too_short_for_the_default_detector(tmp_path: Path) -> None:
    """40 points of history: the calibrated detector would score all 0; the short-history one still ranks."""
    series, graph, at = scenario(tmp_path, history=40)
    streams = read_series(series)
    window = Window(at, 600.0, 600.0)
    assert detector_for(streams, window, detectors.DEFAULT_KIND, {}) == (SHORT_HISTORY_KIND, {})
    args = ["rca", "--series", str(series), "--graph", str(graph), "--at", f"{at:.0f}", "--target", "web"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    services = [c["service"] for c in json.loads(result.stdout)["candidates"]]
    assert services[:3] == ["db", "api", "web"]


def test_rca_keeps_the_default_detector_with_enough_history(tmp_path: Path) -> None:
    series, _, at = scenario(tmp_path)
    streams = read_series(series)
    assert detector_for(streams, Window(at, 600.0, 600.0), detectors.DEFAULT_KIND, {})[0] == (
        detectors.DEFAULT_KIND
    )


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


def test_a_metric_anomalous_when_the_window_opens_has_no_onset(tmp_path: Path) -> None:
    """Already anomalous at the window's first point: a standing condition, not a turn inside the window."""
    import numpy as np

    from agent.offline import Stream

    ts = np.array([0.0, 100.0, 200.0, 300.0])
    standing = Stream(tmp_path / "lb__m.csv", [], ts, np.array([1.0, np.nan, 5.0, 5.0]))
    turning = Stream(tmp_path / "db__m.csv", [], ts, np.zeros(4))
    scores = [np.array([0.0, 0.0, 0.99, 0.95]), np.array([0.0, 0.1, 0.9, 0.95])]
    ev = evidence_from_scores([standing, turning], scores, Window(200.0, 150.0, 150.0), 0.8)
    assert ev == [
        Evidence("lb", onset=None, peak=0.99, anomalous=0, metrics=1),
        Evidence("db", onset=200.0, peak=0.95, anomalous=1, metrics=1),
    ]


def test_only_the_harmful_direction_counts_for_known_metric_kinds(tmp_path: Path) -> None:
    """Latency that falls, or traffic that falls (the callers sent less), is no trouble of the service's own;
    availability that falls is, and a metric of unknown kind counts either way."""
    import numpy as np

    from agent.offline import Stream

    ts = np.arange(6) * 100.0
    scores = np.array([0.0, 0.0, 0.0, 0.0, 0.95, 0.95])

    def evidence(name: str, last: float) -> Evidence:
        values = np.array([5.0, 5.0, 5.0, 5.0, last, last])
        (ev,) = evidence_from_scores(
            [Stream(tmp_path / name, [], ts, values)], [scores], Window(400, 150, 150), 0.8
        )
        return ev

    assert harmful_direction("latency_p99") == 1 and harmful_direction("availability_Average") == -1
    assert harmful_direction("requests_Sum") == 1 and harmful_direction("queue_depth") == 0
    assert evidence("a__latency_p99.csv", 1.0).onset is None
    assert evidence("a__requests_Sum.csv", 1.0).onset is None
    assert evidence("a__requests_Sum.csv", 50.0).onset == 400.0
    assert evidence("a__availability_Average.csv", 1.0).onset == 400.0
    assert evidence("a__availability_Average.csv", 9.0).peak == 0.0
    assert evidence("a__queue_depth.csv", 1.0).onset == 400.0
