"""Log sources inside the agent: generated log files, a real SQLite store, a manual clock.

The whole chain runs as `aiops run` runs it (AgentApp builds the sources from config; each poll reads,
mines, judges, correlates and records), only driven by the test instead of the scheduler, so event
times are exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent.clock import ManualClock
from agent.config import load_config
from agent.core.events import MetricsPolled
from agent.errors import StateError
from agent.shell.app import AgentApp
from integrations.prometheus import Matrix, Series

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLL = timedelta(seconds=5)

AGENT_YAML = """\
dry_run: true
store:
  url: sqlite:///{dir}/aiops.db
prometheus:
  url: http://127.0.0.1:9
queries:
  - name: demo_latency_p99
    promql: demo_latency_p99
    thresholds: [{{above: 1.0, severity: warning}}]
log_sources:
  - name: web_log
    type: file
    paths: ["{dir}/logs/*.log"]
    start_at: beginning
    labels: {{job: demo}}
    detection: {{bucket: 10s, warmup: 30s, warmup_lines: 50}}
state_dir: state
api:
  enabled: false
services_file: {root}/config/services.yaml
rules_file: rules.yaml
catalog_file: {root}/runbooks/catalog.yaml
"""

# The log source has no `service:`: demo-web's selector in services.yaml matches its job=demo label.

RULES_YAML = """\
rules:
  - name: diagnose-log-errors
    match:
      service: demo-web
      signals: [log_error_burst]
    runbook: collect_diagnostics
    params:
      incident_id: "{incident.id}"
      service: "{service}"
"""


def normal(i: int) -> str:
    return f"2026-03-01 12:00:{i % 60:02d},123 INFO [worker-{i % 8}] demo.web: GET /api/items 200 {40 + i % 30}ms"


def failing(i: int) -> str:
    return (
        f"2026-03-01 12:01:{i % 60:02d},456 ERROR [worker-{i % 8}] demo.web: request /api/cart failed: "
        f"upstream timeout after {3000 + i}ms"
    )


class Rig:
    """The agent app on a config directory, a log file to append to, and a clock to move."""

    def __init__(self, directory: Path, clock: ManualClock):
        self.directory = directory
        self.clock = clock
        self.log = directory / "logs" / "web.log"
        self.registry = CollectorRegistry()
        self.app = AgentApp(load_config(directory / "agent.yaml"), clock=clock, registry=self.registry)
        try:
            self.leader = self.app.lead(inline=True)
        except BaseException:
            self.app.stop()  # as `aiops run` does when it cannot start
            raise
        (self.poller,) = self.leader.log_pollers

    def append(self, *lines: str) -> None:
        with self.log.open("a", encoding="utf-8") as f:
            f.writelines(f"{line}\n" for line in lines)

    def poll(self) -> None:
        self.clock.advance(POLL)
        self.poller.poll()
        self.leader.housekeeping()

    def counted(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def close(self) -> None:
        self.app.stop()  # never started: closes the log source and the store


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / "agent.yaml").write_text(AGENT_YAML.format(dir=tmp_path, root=ROOT))
    (tmp_path / "rules.yaml").write_text(RULES_YAML)
    return tmp_path


@pytest.fixture
def rig(config_dir: Path) -> Iterator[Rig]:
    r = Rig(config_dir, ManualClock(T0))
    yield r
    r.close()


def warm_up(rig: Rig, polls: int = 14, per_poll: int = 20) -> int:
    """Calm traffic for `polls` polls; returns the number of lines written."""
    for p in range(polls):
        rig.append(*(normal(p * per_poll + i) for i in range(per_poll)))
        rig.poll()
    return polls * per_poll


def test_calm_logs_raise_nothing(rig: Rig) -> None:
    lines = warm_up(rig, polls=30)
    assert rig.counted("aiops_samples_processed_total", source="logs:web_log") == lines
    assert rig.app.store.incidents.list() == []
    assert rig.app.health.snapshot()["logs:web_log"]["up"] is True


def test_an_error_burst_opens_an_incident_with_its_evidence_and_matches_a_rule(rig: Rig) -> None:
    warm_up(rig)
    rig.append(*(failing(i) for i in range(25)))
    rig.poll()

    (incident,) = rig.app.store.incidents.list()
    assert incident.service == "demo-web"
    signals = {s.name: s for s in rig.app.store.incidents.signals(incident.id)}
    assert {"log_error_burst", "log_new_template"} <= set(signals)
    burst = signals["log_error_burst"]
    # reported the moment the bucket's count crossed the bar (spike_min, 10 lines), not when it closed
    assert burst.last_value == 10 and burst.severity == "critical"
    assert burst.evidence is not None and burst.evidence["count"] == 10
    assert len(burst.evidence["samples"]) == 3 and "upstream timeout" in burst.evidence["samples"][-1]
    new = signals["log_new_template"].evidence
    assert new is not None and new["template"] == "request <*> failed: upstream timeout after <*>"

    (change,) = rig.app.store.changes.list(incident_id=incident.id)
    assert change.runbook == "collect_diagnostics" and change.rule == "diagnose-log-errors"
    assert change.params["incident_id"] == incident.id


def test_a_log_burst_and_a_latency_anomaly_of_one_service_join_one_incident(rig: Rig) -> None:
    warm_up(rig)
    rig.append(*(failing(i) for i in range(25)))
    rig.poll()
    now = rig.clock.now().timestamp()
    p99 = Series({"job": "demo", "instance": "127.0.0.1:8000"}, [(now, 2.4)])  # above its static limit
    rig.leader.runtime.submit(MetricsPolled("demo_latency_p99", Matrix.of([p99]), now)).result()
    (incident,) = rig.app.store.incidents.list()
    names = {s.name for s in rig.app.store.incidents.signals(incident.id)}
    assert {"log_error_burst", "demo_latency_p99"} <= names


def test_a_new_template_is_reported_exactly_once(rig: Rig) -> None:
    warm_up(rig)
    for burst in range(4):  # the same new kind of line keeps coming, over several polls and buckets
        rig.append(*(failing(burst * 10 + i) for i in range(3)))
        rig.poll()
    assert rig.counted("aiops_signals_total", source="logs", severity="info") == 1
    (incident,) = rig.app.store.incidents.list()
    assert [s.name for s in rig.app.store.incidents.signals(incident.id)] == ["log_new_template"]


def test_templates_are_not_new_before_warm_up(rig: Rig) -> None:
    rig.append(*(normal(i) for i in range(60)), *(failing(i) for i in range(2)))
    rig.poll()
    assert rig.counted("aiops_signals_total", source="logs", severity="info") == 0


def test_restart_keeps_template_ids_and_position(config_dir: Path) -> None:
    clock = ManualClock(T0)
    first = Rig(config_dir, clock)
    warm_up(first)
    first.append(*(failing(i) for i in range(3)))
    first.poll()
    (incident,) = first.app.store.incidents.list()
    (new,) = [s for s in first.app.store.incidents.signals(incident.id) if s.name == "log_new_template"]
    first.close()

    second = Rig(config_dir, clock)
    try:
        second.append(*(failing(100 + i) for i in range(3)), normal(999))
        second.poll()
        # only the lines written after the restart are read, and the error template is not new again
        assert second.counted("aiops_samples_processed_total", source="logs:web_log") == 4
        assert second.counted("aiops_signals_total", source="logs", severity="info") == 0
        (match,) = second.leader.core.logs["web_log"].miner.mine_all([failing(7)])
        assert match.template_id == int(new.labels["template_id"]) and not match.new
    finally:
        second.close()


def test_garbage_and_huge_lines_do_not_stop_the_source(rig: Rig) -> None:
    warm_up(rig, polls=3)
    with rig.log.open("ab") as f:
        f.write(b"\x00\xff\xfe\x80 not text at all\n" + b"A" * 200_000 + b"\n" + b"\n\n")
    rig.append(normal(1))
    rig.poll()
    assert rig.counted("aiops_poll_errors_total", source="logs:web_log") == 0
    assert (
        rig.counted("aiops_samples_processed_total", source="logs:web_log") == 3 * 20 + 5
    )  # garbage, huge, two empty, one normal


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("web_log.templates.json", "{not json"),
        ("web_log.templates.json", '{"version": 7}'),
        ("web_log.position.json", "[truncated"),
        ("web_log.position.json", '{"version": 1, "files": [{"path": "x"}]}'),
    ],
)
def test_unreadable_saved_state_stops_the_start_naming_the_file(
    config_dir: Path, file: str, content: str
) -> None:
    """Starting over silently would re-read or skip lines and renumber templates: refuse, and say how."""
    state = config_dir / "state"
    state.mkdir()
    (state / file).write_text(content)
    with pytest.raises(StateError, match=f"{state / file}: cannot read .* move the file away"):
        Rig(config_dir, ManualClock(T0))
