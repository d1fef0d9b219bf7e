"""Alertmanager's webhook into the agent: the real agent (not started), its API app, a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock
from agent.config import load_config
from agent.config.models import Service, ServicesFile
from agent.core.alerts import severity_of, to_signals
from agent.core.domain import Severity, fingerprint
from agent.core.topology import ServiceMap
from agent.shell.api import create_app
from agent.shell.app import AgentApp
from integrations.alertmanager import ExternalAlert

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPERATOR = "operator-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"

AGENT_YAML = f"""\
dry_run: true
store:
  url: sqlite:///{{dir}}/aiops.db
prometheus:
  url: http://127.0.0.1:9
alertmanager:
  alertnames: [DemoHighLatency]
api:
  tokens:
    - {{{{name: alertmanager, role: operator, token: {OPERATOR}}}}}
    - {{{{name: dashboard, role: viewer, token: {VIEWER}}}}}
services_file: {ROOT}/config/services.yaml
rules_file: rules.yaml
catalog_file: {ROOT}/runbooks/catalog.yaml
"""

RULES_YAML = """\
rules:
  - name: diagnose-latency-alert
    match: {service: demo-web, signals: [DemoHighLatency]}
    runbook: collect_diagnostics
    params: {incident_id: "{incident.id}", service: "{service}", summary: "{labels.alertname}"}
"""


def alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "DemoHighLatency", "job": "demo", "severity": "critical", **labels},
        "annotations": {"summary": "p99 above 500ms for 5m"},
        "startsAt": (T0 - timedelta(minutes=5)).isoformat(),
        "endsAt": T0.isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": "0123456789abcdef",
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DemoHighLatency"}',
        "status": alerts[0]["status"] if alerts else "firing",
        "receiver": "aiops",
        "groupLabels": {"alertname": "DemoHighLatency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts),
    }


@dataclass
class Rig:
    app: AgentApp
    client: TestClient

    def post(self, body: Any, token: str | None = OPERATOR) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            return self.client.post("/api/v1/alerts", content=body, headers=headers)
        return self.client.post("/api/v1/alerts", json=body, headers=headers)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    (tmp_path / "agent.yaml").write_text(AGENT_YAML.format(dir=tmp_path))
    (tmp_path / "rules.yaml").write_text(RULES_YAML)
    clock = ManualClock(T0)
    app = AgentApp(load_config(tmp_path / "agent.yaml"), clock=clock, registry=CollectorRegistry())
    leader = app.lead(inline=True)
    api = create_app(
        app.store,
        app.registry,
        app.config.agent.api,
        clock,
        lambda: {"ready": True},
        wake=leader.runtime.wake,
        alerts=app.config.agent.alerts,
    )
    with TestClient(api, raise_server_exceptions=False) as client:
        yield Rig(app, client)
    app.stop()


def test_a_firing_alert_opens_an_incident_and_matches_a_rule(rig: Rig) -> None:
    r = rig.post(payload(alert()))
    assert (r.status_code, r.json()) == (200, {"firing": 1, "resolved": 0})
    (incident,) = rig.app.store.incidents.list()
    assert incident.service == "demo-web" and incident.priority == "P1"  # tier 1, critical
    (sig,) = rig.app.store.incidents.signals(incident.id)
    assert (sig.name, sig.source, sig.severity) == ("DemoHighLatency", "alertmanager", "critical")
    assert sig.first_at == T0 - timedelta(minutes=5)
    assert sig.evidence == {
        "summary": "p99 above 500ms for 5m",
        "generator_url": "http://prometheus:9090/graph?g0.expr=...",
    }
    (change,) = rig.app.store.changes.list(incident_id=incident.id)
    assert change.rule == "diagnose-latency-alert" and change.params["summary"] == "DemoHighLatency"


def test_redelivery_is_deduplicated_and_resolution_clears(rig: Rig) -> None:
    rig.post(payload(alert()))
    rig.post(payload(alert()))  # Alertmanager repeats firing alerts every group_interval
    (incident,) = rig.app.store.incidents.list()
    (sig,) = rig.app.store.incidents.signals(incident.id)
    assert sig.count == 2 and sig.cleared_at is None
    r = rig.post(payload(alert("resolved")))
    assert r.json() == {"firing": 0, "resolved": 1}
    (sig,) = rig.app.store.incidents.signals(incident.id)
    assert sig.cleared_at == T0
    assert len(rig.app.store.incidents.list()) == 1


def test_alerts_of_one_service_join_one_incident(rig: Rig) -> None:
    rig.post(
        payload(alert(instance="a:80"), alert(alertname="DemoErrors", instance="a:80", severity="warning"))
    )
    (incident,) = rig.app.store.incidents.list()
    names = sorted(s.name for s in rig.app.store.incidents.signals(incident.id))
    assert names == ["DemoErrors", "DemoHighLatency"]


@pytest.mark.parametrize(("token", "status"), [(None, 401), (VIEWER, 403), ("not-a-token-0123456789", 401)])
def test_posting_alerts_needs_an_operator_token(rig: Rig, token: str | None, status: int) -> None:
    assert rig.post(payload(alert()), token=token).status_code == status
    assert rig.app.store.incidents.list() == []


def _many() -> dict[str, Any]:
    return payload(*[alert(instance=f"i{n}") for n in range(1001)])


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        payload(),
        payload({**alert(), "labels": {"job": "demo"}}),
        payload({**alert(), "startsAt": "2026-03-01T12:00:00"}),
        payload({**alert(), "status": "pending"}),
        payload(alert(big="x" * 5000)),
        _many(),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-alerts",
        "no-alertname",
        "naive-time",
        "bad-status",
        "huge",
        "many",
    ],
)
def test_malformed_payloads_are_422_and_change_nothing(rig: Rig, body: Any) -> None:
    r = rig.post(body)
    assert r.status_code == 422, r.text
    assert rig.app.store.incidents.list() == []


# ---------------------------------------------------------------- timestamps from senders


def test_an_alert_from_the_far_future_is_refused_and_cannot_absorb_later_ones(rig: Rig) -> None:
    r = rig.post(payload({**alert(instance="a:80"), "startsAt": "9999-01-01T00:00:00Z"}))
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "alerts", 0, "startsAt"]
    assert "clock skew" in error["msg"]
    assert rig.post(payload(alert(instance="b:80"))).status_code == 200
    (incident,) = rig.app.store.incidents.list()
    assert incident.started_at == T0 - timedelta(minutes=5)
    assert [s.labels["instance"] for s in rig.app.store.incidents.signals(incident.id)] == ["b:80"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startsAt", 1772366400),  # read as Unix time by a lax parser; 0 was read as 1970
        ("startsAt", "1772366400"),
        ("startsAt", "2026-03-01"),
        ("startsAt", "9999-12-31T23:59:59Z"),
        ("startsAt", "9999-12-31T23:59:59-01:00"),  # past year 9999 once in UTC
        ("startsAt", "0001-01-01T00:00:00+01:00"),  # before year 1 once in UTC
        ("endsAt", "9999-12-31T23:59:59Z"),
        ("endsAt", 0),
    ],
)
def test_a_bad_timestamp_is_422_naming_the_alert_and_field(rig: Rig, field: str, value: Any) -> None:
    r = rig.post(payload(alert(instance="a:80"), {**alert("resolved", instance="b:80"), field: value}))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "alerts", 1, field]]
    assert rig.app.store.inbox.pending() == [] and rig.app.store.incidents.list() == []


@pytest.mark.parametrize(("ahead", "status"), [(timedelta(minutes=4), 200), (timedelta(minutes=6), 422)])
def test_clock_skew_up_to_the_configured_limit_is_accepted(rig: Rig, ahead: timedelta, status: int) -> None:
    assert rig.app.config.agent.alerts.max_clock_skew == timedelta(minutes=5)
    r = rig.post(payload({**alert(), "startsAt": (T0 + ahead).isoformat()}))
    assert r.status_code == status, r.text


def test_alertmanagers_zero_end_time_means_still_firing(rig: Rig) -> None:
    assert alert()["endsAt"] == "0001-01-01T00:00:00Z"
    assert rig.post(payload(alert())).status_code == 200
    (incident,) = rig.app.store.incidents.list()
    (sig,) = rig.app.store.incidents.signals(incident.id)
    assert sig.cleared_at is None


# ---------------------------------------------------------------- mapping, without the API


def external(**labels: str) -> ExternalAlert:
    return ExternalAlert("A", "firing", {"alertname": "A", **labels}, {}, T0, None, "")


def test_service_comes_from_the_service_label_else_the_selectors() -> None:
    services = ServiceMap(
        ServicesFile.model_validate(
            {
                "services": [
                    {"name": "web", "tier": 1, "selectors": [{"match": {"job": "nginx"}}]},
                    Service(name="db", tier=2).model_dump(),
                ]
            }
        )
    )
    named, selected, unknown, nothing = to_signals(
        [
            external(service="db", job="nginx"),
            external(job="nginx"),
            external(service="nope", job="nginx"),
            external(),
        ],
        services,
    )[0]
    assert [s.service for s in (named, selected, unknown, nothing)] == ["db", "web", "web", "unmapped"]


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", Severity.CRITICAL),
        ("PAGE", Severity.CRITICAL),
        ("warning", Severity.WARNING),
        ("info", Severity.INFO),
        ("", Severity.WARNING),
        ("whatever", Severity.WARNING),
    ],
)
def test_severity_label(label: str, severity: Severity) -> None:
    assert severity_of(external(severity=label)) == severity


def test_label_values_stay_data() -> None:
    hostile = "$(touch /tmp/pwned); {{ lookup('pipe', 'id') }}"
    ((sig,), _) = to_signals([external(instance=hostile)], ServiceMap(ServicesFile(services=[])))
    assert sig.labels["instance"] == hostile
    json.dumps(dict(sig.labels))


def test_the_agents_own_incident_alerts_are_not_signals() -> None:
    """Alertmanager may route the alerts the agent's sink posted back to the agent: no incident about
    an incident, firing or resolved."""
    services = ServiceMap(ServicesFile(services=[]))
    own = external(aiops_incident="7", service="web")
    resolved = ExternalAlert("A", "resolved", dict(own.labels), {}, T0, T0, "")
    assert to_signals([own, resolved], services) == ([], [])


# ---------------------------------------------------------------- identity of a label set

# Label sets that a separator-joined identity text (name, NUL, key, \x01, value, ...) cannot tell apart.
COLLIDING = [
    ({"instance": "a", "x": "1"}, {"instance": "a\x00x\x011"}),
    ({"instance": "a\x01b"}, {"instance\x01a": "b"}),
    ({"k": "\ud800"}, {"k": "\udc00"}),  # lone surrogates: not even encodable as UTF-8
]


@pytest.mark.parametrize(("one", "other"), COLLIDING)
def test_label_identity_is_unambiguous(one: dict[str, str], other: dict[str, str]) -> None:
    assert fingerprint("A", one) != fingerprint("A", other)
    assert fingerprint("A", dict(reversed(one.items()))) == fingerprint("A", one)  # order is no part of it


_TEXT = st.text(alphabet=st.sampled_from("a:1\x00\x01\ud800é"), max_size=4)  # separators, digits, odd text


@settings(max_examples=2000, deadline=None)
@given(_TEXT, st.dictionaries(_TEXT, _TEXT, max_size=3), _TEXT, st.dictionaries(_TEXT, _TEXT, max_size=3))
def test_different_label_sets_never_share_an_identity(
    name: str, labels: dict[str, str], other_name: str, other: dict[str, str]
) -> None:
    if (name, labels) != (other_name, other):
        assert fingerprint(name, labels) != fingerprint(other_name, other)


def test_resolving_one_label_set_leaves_another_that_once_collided_firing(rig: Rig) -> None:
    """Labels with control characters are data: the alert that resolves is the one that said so."""
    rig.post(payload(alert(zone="a", zz="1"), alert(zone="a\x00zz\x011")))  # keys sort after the rest
    (incident,) = rig.app.store.incidents.list()
    assert len(rig.app.store.incidents.signals(incident.id)) == 2
    rig.post(payload(alert("resolved", zone="a\x00zz\x011")))
    still = {s.labels["zone"]: s.cleared_at for s in rig.app.store.incidents.signals(incident.id)}
    assert still == {"a": None, "a\x00zz\x011": T0}
