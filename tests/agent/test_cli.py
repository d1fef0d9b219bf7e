"""The `aiops` command line, in process through typer's CliRunner (separate stdout and stderr) and, where
the process boundary itself matters, as the installed console script."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from agent.cli.main import app
from agent.core.domain import ChangeStatus, IncidentStatus
from agent.shell.store import Store
from tests.support.records import (
    T0,
    add_change,
    commit_link,
    cooccurrence_link,
    incident_state,
    link_problem,
    save_incidents,
    signal_state,
)

ROOT = Path(__file__).resolve().parents[2]
AIOPS = ROOT / ".venv" / "bin" / "aiops"
CONFIG = ROOT / "config" / "agent.yaml"
ISSUE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>[^:\s]+): (?P<message>.+)$")


def aiops(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """Run one command in process; an unexpected exception is a test failure, not an exit code."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def json_out(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """Shadows the two-backend fixture: the CLI only needs a real SQLite file, created as `aiops run` would."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    Store.open(url).close()
    return url


@pytest.fixture
def seeded(store_url: str) -> dict[str, int]:
    """Three incidents, changes in several states and one problem candidate; returns the change ids."""
    store = Store.open(store_url)
    try:
        save_incidents(
            store,
            incident_state(1, signals=[signal_state("fp-a"), signal_state("fp-b", name="demo_error_ratio")]),
            incident_state(2, at=T0 + timedelta(minutes=5), status=IncidentStatus.RESOLVED),
            incident_state(3, at=T0 + timedelta(minutes=10)),
        )
        ids = {
            "awaiting": add_change(store, 1),
            "other": add_change(store, 3),
            "dry_run": add_change(store, 2, ChangeStatus.DRY_RUN),
        }
        run = store.runs.start(ids["dry_run"], "remediation", "recycle_workers.yml", T0)
        store.runs.finish(run, "successful", 0, T0 + timedelta(seconds=3), "ok", [])
        ids["problem"] = link_problem(store, "demo-web:demo_latency_p99", "latency recurring", [1, 2, 3])
        return ids
    finally:
        store.close()


# ---------------------------------------------------------------- check-config


@pytest.mark.parametrize("config", [CONFIG, ROOT / "config" / "demo" / "agent.yaml"])
def test_check_config_accepts_the_shipped_configs(config: Path) -> None:
    result = aiops("check-config", "-c", config)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("config OK")


def test_check_config_console_script_defaults_to_config_agent_yaml() -> None:
    done = subprocess.run([AIOPS, "check-config"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "config OK" in done.stdout


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> tuple[Path, Path, int]:
    """Copy config/ and runbooks/ into tmp_path, replace `old` by `new` in one file.

    Returns agent.yaml, the edited file and the line of the edit.
    """
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    edited = (tmp_path / file).resolve()
    text = edited.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {file}"
    edited.write_text(text.replace(old, new))
    line = text[: text.index(old)].count("\n") + 1
    return (tmp_path / "config" / "agent.yaml").resolve(), edited, line


@pytest.mark.parametrize(
    ("file", "old", "new", "field"),
    [
        ("config/agent.yaml", "poll_interval: 15s", "poll_interval: soon", "prometheus.poll_interval"),
        ("config/agent.yaml", "dry_run: true", "dry_runn: true", "dry_runn"),
        ("config/services.yaml", "tier: 2", "tier: many", "services[1].tier"),
        ("config/rules.yaml", "runbook: collect_diagnostics", "runbook: no_such_runbook", "rules[1].runbook"),
    ],
)
def test_check_config_reports_file_line_field_message(
    tmp_path: Path, file: str, old: str, new: str, field: str
) -> None:
    agent_yaml, edited, line = broken_copy(tmp_path, file, old, new)
    result = aiops("check-config", "-c", agent_yaml)
    assert result.exit_code == 1
    issues = [ISSUE.match(ln) for ln in result.stdout.splitlines()]
    assert issues and all(issues), result.stdout
    located = {(m["file"], int(m["line"]), m["field"]) for m in issues if m}
    assert (str(edited), line, field) in located, result.stdout
    assert "problem(s) found" in result.stderr


def test_check_config_lists_every_problem_of_a_file(tmp_path: Path) -> None:
    agent_yaml, _, _ = broken_copy(tmp_path, "config/agent.yaml", "poll_interval: 15s", "poll_interval: soon")
    text = agent_yaml.read_text().replace("dry_run: true", "dry_runn: true")
    agent_yaml.write_text(text)
    result = aiops("check-config", "-c", agent_yaml)
    assert result.exit_code == 1
    fields = {m["field"] for m in map(ISSUE.match, result.stdout.splitlines()) if m}
    assert fields == {"prometheus.poll_interval", "dry_runn"}
    assert "did you mean 'dry_run'" in result.stdout


def test_check_config_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = aiops("check-config", "-c", missing)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{missing}: no such file"  # no made-up line or field


# ---------------------------------------------------------------- records as JSON


def test_incidents_list_json(store_url: str, seeded: dict[str, int]) -> None:
    rows = json_out(aiops("incidents", "list", "--json", "--store", store_url))
    assert [r["id"] for r in rows] == [3, 2, 1]
    assert rows[1]["status"] == "resolved"
    only = json_out(aiops("incidents", "list", "--status", "resolved", "--json", "--store", store_url))
    assert [r["id"] for r in only] == [2]


def test_incidents_show_json(store_url: str, seeded: dict[str, int]) -> None:
    doc = json_out(aiops("incidents", "show", "2", "--json", "--store", store_url))
    assert (doc["id"], doc["status"]) == (2, "resolved")
    assert [c["id"] for c in doc["changes"]] == [seeded["dry_run"]]
    assert [r["status"] for r in doc["changes"][0]["runs"]] == ["successful"]
    assert [e["kind"] for e in doc["timeline"]] == ["opened"]
    doc = json_out(aiops("incidents", "show", "1", "--json", "--store", store_url))
    assert len(doc["signals"]) == 2


def test_changes_list_json(store_url: str, seeded: dict[str, int]) -> None:
    rows = json_out(aiops("changes", "list", "--json", "--store", store_url))
    assert [r["id"] for r in rows] == [seeded["dry_run"], seeded["other"], seeded["awaiting"]]
    waiting = json_out(
        aiops("changes", "list", "--status", "awaiting_approval", "--json", "--store", store_url)
    )
    assert {r["status"] for r in waiting} == {"awaiting_approval"}


def test_problems_list_and_show_json(store_url: str, seeded: dict[str, int]) -> None:
    rows = json_out(aiops("problems", "list", "--json", "--store", store_url))
    assert [(r["id"], r["occurrences"], r["status"]) for r in rows] == [(seeded["problem"], 3, "candidate")]
    doc = json_out(aiops("problems", "show", str(seeded["problem"]), "--json", "--store", store_url))
    assert [i["id"] for i in doc["incidents"]] == [1, 2, 3]


def test_problems_show_a_cooccurrence_candidate_with_its_numbers(
    store_url: str, seeded: dict[str, int]
) -> None:
    store = Store.open(store_url)
    try:
        pair = commit_link(store, cooccurrence_link((1, 3), 4, 2.5e-6, T0 + timedelta(hours=1)))
    finally:
        store.close()
    rows = json_out(aiops("problems", "list", "--json", "--store", store_url))
    assert [(r["kind"], r["services"], r["occurrences"]) for r in rows] == [
        ("recurrence", ["demo-web"], 3),  # costlier: the pair's two open incidents and one more
        ("cooccurrence", ["db", "demo-web"], 4),
    ]
    assert (rows[1]["expected"], rows[1]["lift"], rows[1]["p_value"]) == (0.5, 8.0, 2.5e-6)
    listed = aiops("problems", "list", "--store", store_url).stdout
    assert "cooccurrence" in listed and "db, demo-web" in listed
    shown = aiops("problems", "show", str(pair), "--store", store_url).stdout
    assert "0.5 co-occurrences expected by chance, lift 8.0, p-value 2.50e-06" in shown


def test_json_on_an_empty_store(store_url: str) -> None:
    assert json_out(aiops("incidents", "list", "--json", "--store", store_url)) == []
    assert json_out(aiops("changes", "list", "--json", "--store", store_url)) == []
    assert json_out(aiops("problems", "list", "--json", "--store", store_url)) == []


@pytest.mark.parametrize("command", [["incidents", "list"], ["changes", "list"], ["report"]])
def test_a_store_that_does_not_exist_is_an_error_not_an_empty_store(
    tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "typo" / "aiops.db"
    for path in (typo, tmp_path / "aiops.db"):
        result = aiops(*command, "--store", f"sqlite:///{path}")
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"error: no store at {path} (check --store or store.url; `aiops run` creates the store)"
        )
        assert not path.exists()


def test_postgresql_urls_mean_psycopg2() -> None:
    """`postgresql://` (SQLAlchemy would pick psycopg 3, which is not installed) reaches the server."""
    result = aiops("incidents", "list", "--store", "postgresql://aiops:hunter2-secret@127.0.0.1:1/aiops")
    assert result.exit_code == 1
    assert "psycopg2" in result.stderr and "Connection refused" in result.stderr, result.stderr
    assert "hunter2-secret" not in result.stderr


@pytest.mark.parametrize(
    ("command", "good"),
    [("incidents", "resolved"), ("changes", "awaiting_approval"), ("problems", "known_error")],
)
def test_an_unknown_status_is_a_usage_error_naming_the_valid_ones(
    store_url: str, seeded: dict[str, int], command: str, good: str
) -> None:
    result = aiops(command, "list", "--status", "bogus", "--store", store_url)
    assert result.exit_code == 2
    assert "'bogus' is not a status" in result.stderr and good in result.stderr
    assert aiops(command, "list", "--status", good, "--store", store_url).exit_code == 0


def test_json_from_the_console_script_is_pure(store_url: str, seeded: dict[str, int]) -> None:
    done = subprocess.run(
        [AIOPS, "changes", "list", "--json", "--store", store_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 3


def test_tables_for_people(store_url: str, seeded: dict[str, int]) -> None:
    listing = aiops("incidents", "list", "--store", store_url)
    assert listing.exit_code == 0
    assert listing.stdout.splitlines()[0].split() == ["ID", "PRI", "STATUS", "SERVICE", "OPENED", "TITLE"]
    shown = aiops("incidents", "show", "1", "--store", store_url)
    assert shown.exit_code == 0
    assert shown.stdout.startswith("Incident #1: ")
    assert "Timeline:" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["incidents", "show", "999"], "no incident 999"),
        (["problems", "show", "999"], "no problem 999"),
        (["changes", "approve", "999"], "no change 999"),
        (["changes", "reject", "999"], "no change 999"),
    ],
)
def test_unknown_ids_exit_1_with_an_error_on_stderr(store_url: str, args: list[str], message: str) -> None:
    result = aiops(*args, "--json", "--store", store_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {message}"


def test_a_store_from_a_newer_agent_exits_1(store_url: str, seeded: dict[str, int]) -> None:
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO schema_version (version, applied_at) VALUES (999, '2026-01-01')")
    store.close()
    result = aiops("incidents", "list", "--json", "--store", store_url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "newer" in result.stderr


# ---------------------------------------------------------------- approvals


@pytest.mark.parametrize(("verb", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_a_change_is_decided_once(store_url: str, seeded: dict[str, int], verb: str, status: str) -> None:
    cid = str(seeded["awaiting"])
    first = aiops(
        "changes", verb, cid, "--note", "checked", "--store", store_url, env={"AIOPS_ACTOR": "alice"}
    )
    assert first.exit_code == 0, first.stderr
    assert f"change #{cid} {status}" in first.stdout

    again = aiops("changes", verb, cid, "--store", store_url, env={"AIOPS_ACTOR": "bob"})
    assert again.exit_code == 1
    assert f"is {status}" in again.stderr and "awaiting approval" in again.stderr
    other = "reject" if verb == "approve" else "approve"
    assert aiops("changes", other, cid, "--store", store_url).exit_code == 1

    store = Store.open(store_url)
    try:
        change = store.changes.get(seeded["awaiting"])
        assert (change.status, change.decided_by) == (status, "cli:alice")
        [audit] = store.audit.list()
        assert (audit.actor, audit.action, audit.details) == (
            "cli:alice",
            f"change.{verb}",
            {"note": "checked"},
        )
        assert any(
            e.kind == f"change_{status}" and "checked" in e.reason for e in store.incidents.timeline(1)
        )
    finally:
        store.close()


def test_approve_json(store_url: str, seeded: dict[str, int]) -> None:
    doc = json_out(
        aiops(
            "changes",
            "approve",
            str(seeded["other"]),
            "--json",
            "--store",
            store_url,
            env={"AIOPS_ACTOR": "carol"},
        )
    )
    assert (doc["id"], doc["status"], doc["decided_by"]) == (seeded["other"], "approved", "cli:carol")
    refused = aiops("changes", "approve", str(seeded["other"]), "--json", "--store", store_url)
    assert refused.exit_code == 1 and refused.stdout == ""


def test_a_dry_run_change_cannot_be_approved(store_url: str, seeded: dict[str, int]) -> None:
    result = aiops("changes", "approve", str(seeded["dry_run"]), "--store", store_url)
    assert result.exit_code == 1
    assert "dry_run" in result.stderr


# ---------------------------------------------------------------- detect

SPIKE_AT = 300


def write_series(path: Path, n: int = 400, spike_at: int | None = SPIKE_AT, seed: int = 1) -> Path:
    """A noisy seasonal series at one-minute steps, with one planted spike."""
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for i in range(n):
            value = 60.0 if i == spike_at else 10 + math.sin(i / 10) + rng.gauss(0, 0.2)
            w.writerow(
                [
                    (T0.replace(microsecond=0) + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S"),
                    f"{value:.4f}",
                ]
            )
    return path


def read_scores(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.mark.parametrize(
    "detector", [None, "robust", "river_gaussian", "hst", "ensemble", "novelty", "level"]
)
def test_detect_scores_every_row_and_finds_the_spike(tmp_path: Path, detector: str | None) -> None:
    a = write_series(tmp_path / "a.csv")
    b = write_series(tmp_path / "b.csv", n=350, spike_at=None, seed=2)
    out = tmp_path / "out"
    args: list[str | Path] = ["detect", a, b, "--out", out, "-c", CONFIG]
    result = aiops(*args, *(["--detector", detector] if detector else []))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""

    _, source = read_scores(a)
    header, rows = read_scores(out / "a.csv")
    assert header == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == len(source) == 400
    assert [r[:2] for r in rows] == source
    scores = [float(r[2]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == SPIKE_AT
    assert scores[SPIKE_AT] > max(scores[:SPIKE_AT] + scores[SPIKE_AT + 1 :])

    header_b, rows_b = read_scores(out / "b.csv")
    assert header_b == header and len(rows_b) == 350
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows_b)


def test_detect_accepts_unix_seconds_and_skips_empty_values(tmp_path: Path) -> None:
    src = tmp_path / "unix.csv"
    src.write_text(
        "timestamp,value\n" + "".join(f"{1700000000 + 60 * i},{'' if i == 5 else i % 3}\n" for i in range(50))
    )
    result = aiops("detect", src, "--out", tmp_path / "out", "-c", CONFIG)
    assert result.exit_code == 0, result.stderr
    _, rows = read_scores(tmp_path / "out" / "unix.csv")
    assert len(rows) == 50 and rows[5][1:] == ["", "0.000000"]


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("time,val\n2026-03-01 00:00:00,1\n", 1, "header"),
        ("", 1, "header"),
        ("timestamp,value\n2026-03-01 00:01:00,1\nnot-a-time,2\n", 3, "not-a-time"),
        ("timestamp,value\n2026-03-01 00:01:00,1\n2026-03-01 00:02:00,abc\n", 3, "abc"),
        ("timestamp,value\n2026-03-01 00:01:00,1\n2026-03-01 00:02:00\n", 3, "expected"),
    ],
)
def test_detect_rejects_bad_csv_naming_file_and_line(
    tmp_path: Path, content: str, line: int, what: str
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    result = aiops("detect", src, "--out", tmp_path / "out", "-c", CONFIG)
    assert result.exit_code == 1
    assert f"\nerror: {src}:{line}: " in "\n" + result.stderr
    assert what in result.stderr
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == [], "a rejected file must leave no output behind"


def write_repeated_hour(path: Path) -> Path:
    """Five-minute points through a clock change: 01:00-01:55 is written twice (a repeated local hour),
    then a point repeats the timestamp before it; a spike sits at the end."""
    start = datetime(2013, 11, 3)
    minutes = list(range(0, 120, 5)) + list(range(60, 1800, 5))
    rng = random.Random(5)
    lines = [
        f"{start + timedelta(minutes=m):%Y-%m-%d %H:%M:%S},{10 + math.sin(i / 10) + rng.gauss(0, 0.2):.4f}"
        for i, m in enumerate(minutes)
    ]
    lines.insert(40, lines[39])
    lines.append(f"{start + timedelta(minutes=1800):%Y-%m-%d %H:%M:%S},60")
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    return path


def test_detect_scores_rows_in_file_order_and_warns_once_about_disorder(tmp_path: Path) -> None:
    src = write_repeated_hour(tmp_path / "dst.csv")
    other = write_series(tmp_path / "ok.csv", n=100, spike_at=None)
    result = aiops("detect", src, other, "--out", tmp_path / "out", "-c", CONFIG)
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    # 12 points step back into the repeated hour; one more repeats its predecessor's timestamp.
    assert warnings == [
        "warning: 13 row(s) out of time order or repeating a timestamp (dst.csv: 13 (first at line 26)); "
        "scored in file order (--strict refuses a timestamp that goes backwards)"
    ]
    _, source = read_scores(src)
    _, rows = read_scores(tmp_path / "out" / "dst.csv")
    assert [r[:2] for r in rows] == source
    scores = [float(r[2]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == len(scores) - 1


def test_detect_strict_refuses_a_timestamp_that_goes_backwards(tmp_path: Path) -> None:
    src = write_repeated_hour(tmp_path / "dst.csv")
    result = aiops("detect", src, "--out", tmp_path / "out", "--strict", "-c", CONFIG)
    assert result.exit_code == 1
    assert f"error: {src}:26: timestamp goes backwards (2013-11-03 01:00:00)" in result.stderr
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []


NAB_REPEATS = Path("/work/shared/data/nab/data/realAdExchange/exchange-2_cpc_results.csv")


@pytest.mark.skipif(not NAB_REPEATS.exists(), reason="the shared NAB data is not on this machine")
def test_detect_scores_a_real_nab_file_that_repeats_a_timestamp(tmp_path: Path) -> None:
    src = tmp_path / NAB_REPEATS.name
    shutil.copyfile(NAB_REPEATS, src)
    result = aiops("detect", src, "--out", tmp_path / "out", "-c", CONFIG)
    assert result.exit_code == 0, result.stderr
    assert "warning: 1 row(s) out of time order or repeating a timestamp" in result.stderr
    _, rows = read_scores(tmp_path / "out" / src.name)
    assert len(rows) == 1624 and all(0.0 <= float(r[2]) <= 1.0 for r in rows)


def test_detect_with_an_unknown_detector_lists_the_known_ones(tmp_path: Path) -> None:
    src = write_series(tmp_path / "a.csv", n=10, spike_at=None)
    result = aiops("detect", src, "--out", tmp_path / "out", "--detector", "nope", "-c", CONFIG)
    assert result.exit_code == 1
    assert "'nope'" in result.stderr
    for known in ("robust", "river_gaussian", "hst", "default", "ensemble", "shift"):
        assert known in result.stderr
    assert not (tmp_path / "out" / "a.csv").exists()


# ---------------------------------------------------------------- logs parse


def test_logs_parse_groups_lines_into_templates(tmp_path: Path) -> None:
    rng = random.Random(3)
    kinds = [
        lambda i: f"Connection from 10.0.{i % 7}.{i % 250} closed after {rng.randint(1, 900)} ms",
        lambda i: f"Job {rng.randint(1000, 9999)} finished: wrote {rng.randint(1, 50)} MB to /data/part-{i}",
        lambda i: f"User alice{i} logged in",
    ]
    truth = [rng.randrange(3) for _ in range(300)]
    src = tmp_path / "app.log"
    src.write_text(
        "".join(
            f"2026-03-01 12:00:{i % 60:02d} INFO worker-{i % 4}: {kinds[k](i)}\n" for i, k in enumerate(truth)
        )
    )
    out = tmp_path / "parsed" / "app.csv"
    result = aiops("logs", "parse", src, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "300 lines, 3 templates" in result.stderr
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["LineId"]) for r in rows] == list(range(1, 301))
    groups: dict[int, set[str]] = {}
    for k, r in zip(truth, rows, strict=True):
        groups.setdefault(k, set()).add(r["EventId"])
    assert all(len(ids) == 1 for ids in groups.values()) and len(set.union(*groups.values())) == 3
    templates = {r["EventTemplate"] for r in rows}
    assert "Connection from <*> closed after <*>" in templates  # a unit joins the value before it


def test_logs_parse_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = aiops("logs", "parse", tmp_path / "nope.log", "--out", out)
    assert result.exit_code == 2 and "nope.log" in result.stderr
    assert not out.exists()
