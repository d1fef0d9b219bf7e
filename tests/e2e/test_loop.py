"""The whole self-healing loop against real parts: Prometheus, the demo exporter, ansible-runner, SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from agent.config import load_config
from agent.core.domain import ChangeStatus, IncidentStatus
from agent.shell.app import AgentApp
from agent.shell.store import Store
from demo.processes import free_port, wait_until
from tests.conftest import PromStack
from tests.e2e.conftest import ROOT, eventually, write_config
from tests.support.recording_http import RecordingServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AIOPS = str(Path(sys.executable).parent / "aiops")


def _resolved(store: Store):
    done = store.incidents.list(status=IncidentStatus.RESOLVED.value)
    return done[0] if done else None


def _kinds(store: Store, incident_id: int) -> list[str]:
    return [e.kind for e in store.incidents.timeline(incident_id)]


def _escalated(store: Store, incident_id: int):
    incident = store.incidents.get(incident_id)
    return incident if incident.escalated else None


def _in_order(kinds: list[str], expected: list[str]) -> bool:
    it = iter(kinds)
    return all(k in it for k in expected)


def test_shipped_demo_config_repairs_a_fault_end_to_end(private_stack: PromStack, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AIOPS_PROMETHEUS_URL": private_stack.url,
        "AIOPS_STORE_URL": f"sqlite:///{tmp_path / 'aiops.db'}",
        "AIOPS_API_LISTEN": f"127.0.0.1:{port}",
        "AIOPS_DEMO_LOG": str(private_stack.request_log),
        "AIOPS_STATE_DIR": str(tmp_path / "state"),
    }
    app = AgentApp(
        load_config(ROOT / "config" / "demo" / "agent.yaml", env=env), registry=CollectorRegistry()
    )
    app.start()

    def series(state: str) -> float:
        return app.registry.get_sample_value("aiops_detector_series", {"state": state}) or 0.0

    try:
        api = f"http://127.0.0.1:{port}"
        assert requests.get(f"{api}/healthz", timeout=2).json() == {"status": "ok"}
        wait_until(
            lambda: series("ready") >= 2 and series("warming") == 0,
            60,
            "detectors to warm up",
        )
        assert app.store.incidents.list() == [], "no incident may open before the fault"
        private_stack.exporter.service.set_fault(True)

        incident = eventually(app.store, _resolved, 60, "the incident to be resolved")
        assert private_stack.exporter.service.fault is False, "the runbook must have repaired the service"
        assert incident.priority in ("P1", "P2")
        assert incident.resolved_by == "agent" and "verified" in incident.resolution
        kinds = _kinds(app.store, incident.id)
        assert _in_order(
            kinds,
            [
                "opened",
                "rule_matched",
                "change_created",
                "remediating",
                "remediation_started",
                "remediation_finished",
                "verification",
                "verification",
                "resolved",
            ],
        ), kinds

        (change,) = app.store.changes.list(incident_id=incident.id)
        assert change.status == ChangeStatus.SUCCEEDED and change.change_type == "standard"
        assert change.params == {"url": f"http://{private_stack.exporter.address}/admin/recycle"}
        (run,) = app.store.runs.for_change(change.id)
        assert run.status == "successful" and run.rc == 0 and run.duration_s > 0
        events = app.store.runs.events(run.id)
        assert (
            next(e.task for e in events if e.kind == "runner_on_ok")
            == "Ask the service to recycle its workers"
        )

        detail = requests.get(f"{api}/api/v1/incidents/{incident.id}", timeout=2).json()
        assert detail["changes"][0]["runs"][0]["status"] == "successful"
        assert {s["detector"] for s in detail["signals"]} & {"ensemble", "static"}
        # The request log's error burst joined the same incident as the metric signals, with evidence.
        burst = next(s for s in detail["signals"] if s["name"] == "log_error_burst")
        assert burst["evidence"]["count"] >= 10
        assert any("worker pool stuck" in line for line in burst["evidence"]["samples"])
        assert "logs:demo_requests:position" in app.store.sources.all()  # the store holds the position
        metrics = requests.get(f"{api}/metrics", timeout=2).text
        assert 'aiops_changes_total{outcome="succeeded"} 1.0' in metrics
        assert (
            'aiops_runbook_duration_seconds_count{runbook="recycle_workers",status="successful"} 1.0'
            in metrics
        )
        # The realised false-alarm rate, to compare with detection.false_alarm_budget.
        assert (app.registry.get_sample_value("aiops_detector_series_days") or 0.0) > 0
        assert "aiops_detector_alarms_per_series_day " in metrics
        ready = requests.get(f"{api}/readyz", timeout=2)
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
    finally:
        app.stop()


def test_normal_change_waits_for_approval_from_the_cli(private_stack: PromStack, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", private_stack.url, approval="required")
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        private_stack.exporter.service.set_fault(True)
        change = eventually(app.store, lambda s: next(iter(s.changes.list()), None), 30, "a change")
        assert change.status == ChangeStatus.AWAITING_APPROVAL and change.change_type == "normal"
        assert app.store.runs.for_change(change.id) == [], "nothing may run before approval"
        assert private_stack.exporter.service.fault is True

        store_url = load_config(config).agent.store.url
        done = subprocess.run(
            [AIOPS, "changes", "approve", str(change.id), "--store", store_url],
            env={**os.environ, "AIOPS_ACTOR": "alice"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        incident = eventually(app.store, _resolved, 40, "the incident to be resolved after approval")
        approved = app.store.changes.get(change.id)
        assert approved.status == ChangeStatus.SUCCEEDED and approved.decided_by == "cli:alice"
        assert private_stack.exporter.service.fault is False
        assert _in_order(
            _kinds(app.store, incident.id),
            ["change_created", "change_approved", "remediation_started", "resolved"],
        )
        assert [a.action for a in app.store.audit.list()][:1] == ["change.approve"]
    finally:
        app.stop()


def test_failed_verification_rolls_back_and_escalates_to_the_webhook(
    private_stack: PromStack, tmp_path: Path
) -> None:
    marker = tmp_path / "rolled-back"
    (tmp_path / "rollback.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: Undo\n"
        f"      ansible.builtin.copy: {{dest: '{marker}', content: 'undone'}}\n"
    )
    catalog = yaml.safe_load((ROOT / "runbooks" / "catalog.yaml").read_text())
    spec = catalog["runbooks"]["recycle_workers"]
    spec["playbook"] = str(ROOT / "runbooks" / "recycle_workers.yml")
    spec["rollback"] = str(tmp_path / "rollback.yml")
    catalog["runbooks"] = {"recycle_workers": spec}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    hook = RecordingServer().start()
    try:
        config = write_config(
            tmp_path / "cfg",
            private_stack.url,
            verify="vector(0) > 1",
            deadline="3s",
            catalog=tmp_path / "catalog.yaml",
            notifications=[
                {"name": "pager", "url": f"{hook.url}/hooks/secret-token", "events": ["escalation"]}
            ],
        )
        app = AgentApp(load_config(config), registry=CollectorRegistry())
        app.start()
        try:
            private_stack.exporter.service.set_fault(True)
            change = eventually(
                app.store,
                lambda s: next((c for c in s.changes.list() if ChangeStatus(c.status).final), None),
                60,
                "the change to finish",
            )
            assert change.status == ChangeStatus.ROLLED_BACK
            assert "verification failed" in change.outcome and "rolled back" in change.outcome
            assert [r.kind for r in app.store.runs.for_change(change.id)] == ["remediation", "rollback"]
            assert marker.read_text() == "undone"
            # the change's outcome is recorded first, then the incident is escalated: wait for that
            incident = eventually(
                app.store,
                lambda s: _escalated(s, change.incident_id),
                10,
                "the incident to be escalated",
            )
            assert incident.escalated and incident.status == IncidentStatus.OPEN
            (request,) = hook.wait_for(1)
            payload = request.json()
            assert payload["event"] == "escalation" and payload["incident_id"] == incident.id
            assert "verification failed" in payload["reason"]
        finally:
            app.stop()
    finally:
        hook.stop()


def test_dry_run_records_the_plan_and_executes_nothing(private_stack: PromStack, tmp_path: Path) -> None:
    port = free_port()
    token = "oncall-token-0123456789"
    config = write_config(
        tmp_path / "cfg",
        private_stack.url,
        dry_run=True,
        api_listen=f"127.0.0.1:{port}",
        tokens=[{"name": "oncall", "role": "operator", "token": token}],
    )
    app = AgentApp(load_config(config), registry=CollectorRegistry())
    app.start()
    try:
        private_stack.exporter.service.set_fault(True)
        change = eventually(app.store, lambda s: next(iter(s.changes.list()), None), 30, "a change")
        assert change.status == ChangeStatus.DRY_RUN
        # Give the agent several more polls: still no run, the service stays faulted, the incident open.
        wait_until(
            lambda: app.metrics.polls.labels(source="prometheus:demo_error_ratio")._value.get() >= 8,
            20,
            "more polls",
        )
        assert app.store.runs.for_change(change.id) == []
        assert len(app.store.changes.list()) == 1, "the cooldown must stop a dry-run plan from repeating"
        assert private_stack.exporter.service.fault is True
        assert app.store.incidents.get(change.incident_id).status == IncidentStatus.OPEN

        # The on-call engineer takes it over through the API.
        url = f"http://127.0.0.1:{port}/api/v1/incidents/{change.incident_id}/acknowledge"
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.post(url, timeout=5).status_code == 401
        answer = requests.post(url, json={"note": "looking at it"}, headers=auth, timeout=5)
        assert answer.status_code == 200 and answer.json()["status"] == "acknowledged"
        assert requests.post(url, headers=auth, timeout=5).status_code == 409
        missing = url.replace(f"/{change.incident_id}/", "/999/")
        assert requests.post(missing, headers=auth, timeout=5).status_code == 404
        (ack,) = [e for e in app.store.incidents.timeline(change.incident_id) if e.kind == "acknowledged"]
        assert (ack.actor, ack.reason) == ("api:oncall", "looking at it")
        # New signals keep joining the acknowledged incident rather than opening another.
        polls = app.metrics.polls.labels(source="prometheus:demo_error_ratio")
        seen = polls._value.get()
        wait_until(lambda: polls._value.get() >= seen + 3, 10, "more polls")
        (incident,) = app.store.incidents.list()
        assert incident.status == IncidentStatus.ACKNOWLEDGED and incident.acknowledged_at is not None
    finally:
        app.stop()
