"""The root-cause ranking on a stored incident: views (API), `aiops incidents show`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from agent.cli.main import app
from agent.shell import views
from agent.shell.store import Store
from tests.support.records import T0, incident_state, save_incidents, signal_state


def seed(url: str) -> None:
    """#1 on demo-web (the symptom), #2 on demo-db linked under it, anomalous a minute earlier."""
    store = Store.open(url)
    try:
        web = signal_state("fp-web", at=T0 + timedelta(minutes=1), service="demo-web", peak_score=0.95)
        db = signal_state("fp-db", at=T0, service="demo-db", name="pg_latency", peak_score=0.9)
        save_incidents(
            store,
            incident_state(1, at=T0 + timedelta(minutes=1), signals=[web]),
            incident_state(2, service="demo-db", signals=[db], parent_id=1),
        )
    finally:
        store.close()


def test_incident_detail_ranks_the_callee_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rc.db'}"
    seed(url)
    store = Store.open(url)
    try:
        doc = views.incident_detail(store, 1, [("demo-web", "demo-db")])
        single = views.incident_detail(store, 2, [("demo-web", "demo-db")])
    finally:
        store.close()
    causes = doc["root_causes"]
    assert [c["service"] for c in causes] == ["demo-db", "demo-web"]
    assert "first to turn anomalous" in causes[0]["reasons"]
    assert "no anomalous callee" in causes[0]["reasons"]
    assert [s["service"] for s in doc["signals"]] == ["demo-web"]  # the incident's own signals only
    assert single["root_causes"] == []  # one service: nothing to rank


def test_incidents_show_prints_the_ranking(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rc.db'}"
    seed(url)
    result = CliRunner().invoke(
        app, ["incidents", "show", "1", "--store", url, "-c", str(tmp_path / "none.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "Root-cause candidates (best first):" in result.stdout
    assert "  1. demo-db (score" in result.stdout
