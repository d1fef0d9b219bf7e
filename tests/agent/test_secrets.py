"""Planted secrets never show: a real agent (`AgentApp.start`: API server, scheduler, notifier) whose
config holds an API token, a Prometheus password and header, a webhook URL, a PagerDuty routing key
and a secret runbook parameter is driven through failing polls, an alert, a failing notification and bad requests; then
every log line, API response, /readyz, /metrics, every row of the store and `check-config`'s output
are scanned for each secret."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from agent.cli.main import app as cli
from agent.config import load_config
from agent.shell.app import AgentApp
from demo.processes import free_port, wait_until
from tests.support.recording_http import RecordingServer, Reply, scripted

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "PLANTED-operator-token-7f3a9c"
PROM_PASSWORD = "PLANTED-prom-password-51c2"
PROM_HEADER = "PLANTED-prom-header-e84d"
WEBHOOK_PATH = "/hooks/PLANTED-webhook-path-0b6e"
RUNBOOK_SECRET = "PLANTED-runbook-secret-93d1"
ROUTING_KEY = "PLANTED-pagerduty-routing-key-6a1f"
SECRETS = [OPERATOR, PROM_PASSWORD, PROM_HEADER, WEBHOOK_PATH.rsplit("/", 1)[1], RUNBOOK_SECRET, ROUTING_KEY]

AGENT_YAML = """\
dry_run: true
log_level: debug
store: {{url: "sqlite:///{dir}/aiops.db"}}
prometheus:
  url: "http://reader:{prom_password}@127.0.0.1:{prom_port}"
  headers: {{X-Scope-Token: "{prom_header}"}}
  poll_interval: 1s
  step: 1s
  timeout: 1s
  retries: 0
queries:
  - {{name: demo_latency, promql: "up", detector: null, thresholds: [{{above: 0, severity: critical}}]}}
alertmanager: {{alertnames: [DemoHighLatency]}}
api:
  listen: "127.0.0.1:{api_port}"
  tokens: [{{name: alertmanager, role: operator, token: "{operator}"}}]
notifications:
  - {{name: chat, url: "http://127.0.0.1:{hook_port}{webhook_path}", events: [incident_opened], timeout: 1s}}
  - {{name: pager, type: pagerduty, url: "http://127.0.0.1:{hook_port}/v2/enqueue", routing_key: "{routing_key}",
      events: [incident_opened], timeout: 1s}}
services_file: {root}/config/services.yaml
rules_file: rules.yaml
catalog_file: runbooks/catalog.yaml
"""

RULES_YAML = """\
rules:
  - name: diagnose
    match: {service: demo-web}
    runbook: collect_diagnostics
    params: {incident_id: "{incident.id}", service: "{service}"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    hook = RecordingServer(scripted(Reply(status=500))).start()
    prom = RecordingServer(scripted(Reply(status=503, body=b"overloaded"))).start()
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    catalog = yaml.safe_load((tmp_path / "runbooks/catalog.yaml").read_text())
    catalog["runbooks"]["collect_diagnostics"]["params"]["api_key"] = {
        "type": "string",
        "secret": True,
        "required": False,
        "default": RUNBOOK_SECRET,
    }
    (tmp_path / "runbooks/catalog.yaml").write_text(yaml.safe_dump(catalog))
    (tmp_path / "rules.yaml").write_text(RULES_YAML)
    path = tmp_path / "agent.yaml"
    path.write_text(
        AGENT_YAML.format(
            dir=tmp_path,
            root=ROOT,
            prom_password=PROM_PASSWORD,
            prom_port=prom.url.rsplit(":", 1)[1],
            prom_header=PROM_HEADER,
            api_port=free_port(),
            operator=OPERATOR,
            hook_port=hook.url.rsplit(":", 1)[1],
            webhook_path=WEBHOOK_PATH,
            routing_key=ROUTING_KEY,
        )
    )
    yield path
    hook.stop()
    prom.stop()


def alert() -> dict[str, object]:
    return {
        "status": "firing",
        "labels": {"alertname": "DemoHighLatency", "service": "demo-web", "severity": "critical"},
        "annotations": {"summary": "p99 above 500ms"},
        "startsAt": "2026-03-01T12:00:00Z",
    }


def store_dump(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(f"{t}: {conn.execute(f'SELECT * FROM {t}').fetchall()}" for t in tables)
    finally:
        conn.close()


def test_no_secret_appears_in_logs_responses_metrics_store_or_check_config(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = AgentApp(load_config(config), registry=CollectorRegistry())
    seen: list[str] = []
    agent.start()
    try:
        a = agent.config.agent
        base = f"http://{a.api.listen}"
        wait_until(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, "the API")
        auth = {"Authorization": f"Bearer {OPERATOR}"}
        posted = requests.post(f"{base}/api/v1/alerts", json={"alerts": [alert()]}, headers=auth, timeout=10)
        assert posted.status_code == 200, posted.text
        wait_until(lambda: agent.store.incidents.list(), 20, "the alert's incident")
        wait_until(lambda: agent.store.changes.list(), 20, "the dry-run change with its secret parameter")

        def source_down() -> bool:
            ready = requests.get(f"{base}/readyz", timeout=5).json()
            return "503" in str(ready.get("sources", ""))

        wait_until(source_down, 30, "/readyz to report Prometheus failing")
        wait_until(lambda: "to pager not delivered" in caplog.text, 30, "a failed notification")
        (incident,) = agent.store.incidents.list()
        for path in [
            "/readyz",
            "/metrics",
            "/api/v1/incidents",
            f"/api/v1/incidents/{incident.id}",
            "/api/v1/changes",
            "/api/v1/problems",
            "/api/v1/incidents/999999",
        ]:
            r = requests.get(f"{base}{path}", headers=auth, timeout=10)
            seen.append(f"{path} {r.status_code} {r.text}")
        for headers in ({}, {"Authorization": f"Bearer {OPERATOR}x"}, auth):
            r = requests.post(f"{base}/api/v1/alerts", data=b"{", headers=headers, timeout=10)
            seen.append(f"POST {r.status_code} {r.text}")
        assert agent.store.changes.list()[0].params["api_key"] == "***"  # stored masked, used from config
    finally:
        agent.stop()
    seen.append(caplog.text)
    seen.append(store_dump(config.parent / "aiops.db"))
    runner = CliRunner()
    seen.append(runner.invoke(cli, ["check-config", "-c", str(config)]).output)
    broken = config.read_text().replace('url: "http://reader', 'url: "htp://reader')
    broken_path = config.with_name("broken.yaml")
    broken_path.write_text(broken)
    result = runner.invoke(cli, ["check-config", "-c", str(broken_path)])
    assert result.exit_code == 1 and "prometheus.url" in result.output, result.output
    seen.append(result.output)
    everything = "\n".join(seen)
    assert "reader:***@" in everything  # the URL is shown, its password is not
    leaks = {secret: everything.count(secret) for secret in SECRETS if secret in everything}
    assert leaks == {}, [line for line in everything.splitlines() if any(s in line for s in leaks)][:10]
