"""Configuration loading: the two validation stages and the `file:line: field: message` issues
that `aiops check-config` prints."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from agent.config import Config, load_config
from agent.durations import format_duration, parse_duration
from agent.errors import ConfigError, ConfigIssue

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ConfigDir:
    """A private copy of the shipped config/ and runbooks/, laid out as in the repository."""

    root: Path

    @property
    def agent(self) -> Path:
        return self.root / "config" / "agent.yaml"

    @property
    def services(self) -> Path:
        return self.root / "config" / "services.yaml"

    @property
    def rules(self) -> Path:
        return self.root / "config" / "rules.yaml"

    @property
    def catalog(self) -> Path:
        return self.root / "runbooks" / "catalog.yaml"

    def edit(self, path: Path, old: str, new: str) -> None:
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} must occur exactly once in {path.name}"
        path.write_text(text.replace(old, new))

    def load(self, env: dict[str, str] | None = None) -> Config:
        return load_config(self.agent, env={} if env is None else env)

    def issues(self, env: dict[str, str] | None = None) -> list[ConfigIssue]:
        with pytest.raises(ConfigError) as caught:
            self.load(env)
        assert caught.value.issues, "a ConfigError must list its issues"
        return caught.value.issues


@pytest.fixture
def cfg(tmp_path: Path) -> ConfigDir:
    (tmp_path / "config").mkdir()
    for f in (ROOT / "config").glob("*.yaml"):
        shutil.copy(f, tmp_path / "config")
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    return ConfigDir(tmp_path)


def line_of(path: Path, text: str) -> int:
    """1-based line of the only line of `path` containing `text`."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(hits) == 1, f"{text!r} is on lines {hits} of {path.name}"
    return hits[0]


def only(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def find(issues: list[ConfigIssue], field: str) -> ConfigIssue:
    hits = [i for i in issues if i.field == field]
    assert hits, f"no issue for {field!r} in:\n" + "\n".join(map(str, issues))
    return hits[0]


# ---------------------------------------------------------------- shipped configs


def test_shipped_config_loads_cleanly() -> None:
    config = load_config(ROOT / "config" / "agent.yaml", env={})
    assert config.dry_run is True
    assert [q.name for q in config.agent.queries] == ["demo_latency_p99", "demo_error_ratio", "target_down"]
    assert {s.name for s in config.services.services} == {"demo-web", "monitoring"}
    assert [r.name for r in config.rules] == ["recycle-demo-workers", "diagnose-target-down"]
    assert config.playbook_path(config.runbook("recycle_workers").playbook).is_file()
    assert all(p.is_absolute() and p.is_file() for p in config.files.values())


def test_shipped_demo_config_loads_cleanly() -> None:
    config = load_config(ROOT / "config" / "demo" / "agent.yaml", env={})
    assert config.dry_run is False
    assert config.agent.prometheus.poll_interval == timedelta(seconds=2)
    assert config.files["services"] == (ROOT / "config" / "services.yaml").resolve()


def test_issue_prints_as_file_line_field_message() -> None:
    issue = ConfigIssue("/etc/aiops/agent.yaml", 7, "prometheus.url", "must be an http(s) URL")
    assert str(issue) == "/etc/aiops/agent.yaml:7: prometheus.url: must be an http(s) URL"
    assert str(ConfigError([issue, issue])).splitlines() == [str(issue), str(issue)]


# ---------------------------------------------------------------- schema stage


def test_unknown_key_names_file_line_field_and_a_fix(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "  poll_interval: 15s", "  pol_interval: 15s")
    issue = only(cfg.issues())
    assert issue.file == str(cfg.agent)
    assert issue.line == line_of(cfg.agent, "pol_interval:")
    assert issue.field == "prometheus.pol_interval"
    assert "unknown key" in issue.message
    assert "did you mean 'poll_interval'?" in issue.message


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "hint"),
    [
        ("rules", "cooldown: 15m", "cooldwn: 15m", "rules[0].guards.cooldwn", "cooldown"),
        ("agent", "    promql: up", "    promq: up", "queries[2].promq", "promql"),
        ("agent", "default: {kind: ensemble}", "default: {knd: ensemble}", "detectors.default.knd", "kind"),
        ("catalog", "    risk: medium", "    riks: medium", "runbooks.restart_systemd_unit.riks", "risk"),
    ],
)
def test_unknown_nested_keys_are_located(
    cfg: ConfigDir, file: str, old: str, new: str, field: str, hint: str
) -> None:
    path = getattr(cfg, file)
    cfg.edit(path, old, new)
    issue = find(cfg.issues(), field)  # renaming a required key also reports it missing
    assert (issue.file, issue.line, issue.field) == (str(path), line_of(path, new.strip()), field)
    assert f"did you mean {hint!r}?" in issue.message


def test_bad_duration_names_the_field(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "poll_interval: 15s", "poll_interval: 15x")
    issue = only(cfg.issues())
    assert issue.field == "prometheus.poll_interval"
    assert issue.line == line_of(cfg.agent, "poll_interval: 15x")
    assert "invalid duration '15x'" in issue.message


def test_yaml_syntax_error_gives_its_line(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "detectors:\n  default:", "detectors:\n\tdefault:")
    issue = only(cfg.issues())
    assert issue.field == "(syntax)"
    assert issue.line == line_of(cfg.agent, "\tdefault:")
    assert issue.message.startswith("invalid YAML")


def test_unclosed_bracket_names_where_it_started(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "  timeout: 10s\n", "  timeout: 10s\n  headers: [1, 2\n")
    issue = only(cfg.issues())
    assert issue.field == "(syntax)"
    assert issue.line == line_of(cfg.agent, "retries: 3")  # where the parser noticed
    assert f"started on line {line_of(cfg.agent, 'headers: [1, 2')}" in issue.message


def test_duplicate_keys_are_errors(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "dry_run: true\n", "dry_run: true\ndry_run: false\n")
    issue = only(cfg.issues())
    assert (issue.field, issue.line) == ("dry_run", line_of(cfg.agent, "dry_run: false"))
    assert "duplicate key" in issue.message


def test_duplicate_keys_in_nested_mappings(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, "      max_attempts: 2\n", "      max_attempts: 2\n      max_attempts: 5\n")
    issue = only(cfg.issues())
    assert (issue.file, issue.field) == (str(cfg.rules), "rules[0].guards.max_attempts")
    assert issue.line == line_of(cfg.rules, "max_attempts: 5")


def test_schema_issues_of_every_referenced_file_are_reported_together(cfg: ConfigDir) -> None:
    cfg.edit(cfg.services, "tier: 1", "tier: 0")
    cfg.edit(cfg.rules, "max_attempts: 2", "max_attempts: 0")
    cfg.edit(cfg.catalog, "    risk: medium", "    risk: tiny")
    issues = cfg.issues()
    assert {(i.file, i.field) for i in issues} == {
        (str(cfg.services), "services[0].tier"),
        (str(cfg.rules), "rules[0].guards.max_attempts"),
        (str(cfg.catalog), "runbooks.restart_systemd_unit.risk"),
    }
    assert "(got 'tiny')" in find(issues, "runbooks.restart_systemd_unit.risk").message


def test_missing_referenced_file_is_an_issue(cfg: ConfigDir) -> None:
    cfg.rules.unlink()
    issue = only(cfg.issues())
    assert issue.file == str(cfg.rules)
    assert (issue.line, issue.message) == (0, "no such file")  # about the file, not a line of it


# ---------------------------------------------------------------- environment variables


def test_env_vars_expand_from_the_env_argument(cfg: ConfigDir) -> None:
    env = {"AIOPS_STORE_URL": "sqlite:////var/lib/aiops/aiops.db", "AIOPS_PROMETHEUS_URL": "http://prom:9090"}
    config = cfg.load(env)
    assert config.agent.store.url == "sqlite:////var/lib/aiops/aiops.db"
    assert config.agent.prometheus.url == "http://prom:9090"


def test_env_defaults_apply_when_unset_or_empty(cfg: ConfigDir) -> None:
    assert cfg.load({}).agent.store.url == "sqlite:///aiops.db"
    assert cfg.load({"AIOPS_STORE_URL": ""}).agent.store.url == "sqlite:///aiops.db"


def test_env_expansion_inside_a_longer_string(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.agent,
        "url: ${AIOPS_PROMETHEUS_URL:-http://127.0.0.1:9090}",
        "url: http://${PROM_HOST}:${PROM_PORT:-9090}",
    )
    assert cfg.load({"PROM_HOST": "prom.internal"}).agent.prometheus.url == "http://prom.internal:9090"


def test_unset_env_var_without_default_is_an_error(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "notifications: []", "notifications:\n  - name: hook\n    url: ${AIOPS_HOOK_URL}")
    issue = only(cfg.issues(env={"UNRELATED": "x"}))
    assert issue.field == "notifications[0].url"
    assert issue.line == line_of(cfg.agent, "url: ${AIOPS_HOOK_URL}")
    assert "AIOPS_HOOK_URL is not set" in issue.message
    assert cfg.load({"AIOPS_HOOK_URL": "https://hooks.example/x"}).agent.notifications[0].name == "hook"


# ---------------------------------------------------------------- semantic stage


def test_rule_naming_an_unknown_runbook(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, "runbook: recycle_workers", "runbook: recycle_workerz")
    issue = only(cfg.issues())
    assert (issue.file, issue.field) == (str(cfg.rules), "rules[0].runbook")
    assert issue.line == line_of(cfg.rules, "runbook: recycle_workerz")
    assert "unknown runbook 'recycle_workerz'" in issue.message
    assert "recycle_workers" in issue.message  # the fix: the names the catalog does have


def test_unknown_service_in_depends_on(cfg: ConfigDir) -> None:
    cfg.edit(cfg.services, "depends_on: []", "depends_on: [database]")
    issue = only(cfg.issues())
    assert (issue.file, issue.field) == (str(cfg.services), "services[0].depends_on[0]")
    assert issue.line == line_of(cfg.services, "depends_on: [database]")
    assert "unknown service 'database'" in issue.message


def test_dependency_cycle(cfg: ConfigDir) -> None:
    cfg.edit(cfg.services, "depends_on: []", "depends_on: [monitoring]")
    cfg.edit(cfg.services, "    owner: sre\n", "    owner: sre\n    depends_on: [demo-web]\n")
    issue = only(cfg.issues())
    assert issue.field == "services[0].depends_on"
    assert "dependency cycle: demo-web -> monitoring -> demo-web" in issue.message


def test_self_dependency(cfg: ConfigDir) -> None:
    cfg.edit(cfg.services, "depends_on: []", "depends_on: [demo-web]")
    issues = cfg.issues()
    assert "cannot depend on itself" in find(issues, "services[0].depends_on[0]").message


def test_unknown_query_in_rule_signals(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.rules, "signals: [demo_latency_p99, demo_error_ratio]", "signals: [demo_latency_p99, demo_eror]"
    )
    issue = only(cfg.issues())
    assert issue.field == "rules[0].match.signals[1]"
    assert issue.line == line_of(cfg.rules, "demo_eror")
    assert "no signal named 'demo_eror'" in issue.message


def test_rule_missing_a_required_runbook_param(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, '    params:\n      url: "http://{labels.instance}/admin/recycle"\n', "")
    issue = only(cfg.issues())
    assert issue.field == "rules[0].params"
    assert "needs parameter 'url'" in issue.message


def test_rule_giving_an_unknown_runbook_param(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, '/admin/recycle"\n', '/admin/recycle"\n      urll: x\n')
    issue = only(cfg.issues())
    assert (issue.field, issue.line) == ("rules[0].params.urll", line_of(cfg.rules, "urll: x"))
    assert "takes no such parameter" in issue.message


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            'summary: "target down: {labels.job}"',
            'summary: "target down: {labels.job}"\n      out_dir: relative/dir',
            "rules[1].params.out_dir",
            "does not match the catalog pattern",
        ),
        (
            'url: "http://{labels.instance}/admin/recycle"',
            'url: "ftp://host/x"',
            "rules[0].params.url",
            "pattern",
        ),
        ('incident_id: "{incident.id}"', 'incident_id: "abc"', "rules[1].params.incident_id", "type integer"),
        ("{labels.instance}/admin", "{label.instance}/admin", "rules[0].params.url", "unknown placeholder"),
    ],
)
def test_rule_param_values_are_checked_against_the_catalog(
    cfg: ConfigDir, old: str, new: str, field: str, message: str
) -> None:
    cfg.edit(cfg.rules, old, new)
    issue = only(cfg.issues())
    assert issue.field == field
    assert message in issue.message


def test_catalog_param_default_failing_its_pattern(cfg: ConfigDir) -> None:
    cfg.edit(cfg.catalog, "default: /tmp/aiops-diagnostics", "default: tmp/relative")
    issue = only(cfg.issues())
    assert (issue.file, issue.field) == (
        str(cfg.catalog),
        "runbooks.collect_diagnostics.params.out_dir.default",
    )


@pytest.mark.parametrize("name", ["ansible_connection", "Url", "bad-name"])
def test_catalog_param_names_cannot_become_ansible_settings(cfg: ConfigDir, name: str) -> None:
    cfg.edit(cfg.catalog, "      unit:\n", f"      {name}:\n")
    issue = only(cfg.issues())
    assert issue.field == f"runbooks.restart_systemd_unit.params.{name}"
    assert issue.line == line_of(cfg.catalog, f"      {name}:")
    assert "ansible_" in issue.message


def test_missing_playbook_file(cfg: ConfigDir) -> None:
    (cfg.root / "runbooks" / "recycle_workers.yml").unlink()
    issue = only(cfg.issues())
    assert (issue.file, issue.field) == (str(cfg.catalog), "runbooks.recycle_workers.playbook")
    assert issue.line == line_of(cfg.catalog, "playbook: recycle_workers.yml")
    assert "playbook file not found" in issue.message


def test_duplicate_query_names(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "  - name: target_down", "  - name: demo_latency_p99")
    issues = cfg.issues()
    for field in ("queries[0].name", "queries[2].name"):
        assert "'demo_latency_p99' is used more than once" in find(issues, field).message


def test_unknown_detector_profile(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "    promql: up\n    detector: null", "    promql: up\n    detector: fancy")
    issue = only(cfg.issues())
    assert (issue.field, issue.line) == ("queries[2].detector", line_of(cfg.agent, "detector: fancy"))
    assert "no detector profile 'fancy' (defined: default, robust)" in issue.message


def test_query_without_detector_or_thresholds(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "    thresholds:\n      - {below: 1, severity: critical}\n", "")
    issue = only(cfg.issues())
    assert issue.field == "queries[2]"
    assert "neither a detector nor static thresholds" in issue.message


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("{kind: robust, params: {window: 240, warmp: 20}}", "bad parameters for detector 'robust'"),
        ("{kind: robust, params: {window: 3, warmup: 3}}", "window >= 5"),
        ("{kind: robustt}", "unknown detector kind 'robustt'"),
        ("{kind: ensemble, params: {members: [level]}}", "bad parameters for detector 'ensemble'"),
        ("{kind: ensemble, params: {novelty: {window: 15}}}", "window must be a multiple of dims"),
    ],
)
def test_detector_profile_is_built_to_check_it(cfg: ConfigDir, profile: str, message: str) -> None:
    cfg.edit(cfg.agent, "{kind: robust, params: {window: 240, warmup: 20}}", profile)
    issue = only(cfg.issues())
    assert (issue.field, issue.line) == ("detectors.robust", line_of(cfg.agent, "  robust: {kind:"))
    assert message in issue.message


def test_semantic_stage_waits_for_a_clean_schema(cfg: ConfigDir) -> None:
    """A config with schema errors is never cross-checked: no issue derived from a half-valid config."""
    cfg.edit(cfg.rules, "cooldown: 15m", "cooldwn: 15m")  # schema error in rules.yaml
    cfg.edit(cfg.services, "depends_on: []", "depends_on: [database]")  # semantic error
    cfg.edit(cfg.rules, "runbook: collect_diagnostics", "runbook: nope")  # semantic error
    assert [i.field for i in cfg.issues()] == ["rules[0].guards.cooldwn"]


def test_broken_agent_yaml_stops_before_the_other_files(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "poll_interval: 15s", "poll_interval: 15x")
    cfg.edit(cfg.rules, "runbook: recycle_workers", "runbook: recycle_workerz")
    assert [i.field for i in cfg.issues()] == ["prometheus.poll_interval"]


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 45s ", timedelta(seconds=45)),
        (45, timedelta(seconds=45)),
        (0.5, timedelta(milliseconds=500)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration(text: str | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30x", "", "m", "5 m", "-5s", "1h-", "s30", -5, True])
def test_parse_duration_refuses(text: str | int | bool) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(hours=1, minutes=2, seconds=3), "1h2m3s"),
        (timedelta(milliseconds=850), "850ms"),
        (timedelta(days=1), "1d"),
        (timedelta(minutes=5), "5m"),
        (timedelta(0), "0ms"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
    assert parse_duration(text) == td


def test_log_source_schema_errors_name_their_lines(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.agent,
        "log_sources: []",
        "log_sources:\n"
        "  - name: no_paths\n"
        "    type: file\n"
        "  - name: web\n"
        "    type: loki\n"
        "    url: http://loki:3100\n"
        "    query: '{job=\"web\"}'\n"
        "    intervall: 5s\n"
        "    delay: soon\n",
    )
    issues = cfg.issues()
    assert "a file source needs paths" in find(issues, "log_sources[0]").message
    assert find(issues, "log_sources[1].intervall").line == line_of(cfg.agent, "intervall")
    assert "unknown key" in find(issues, "log_sources[1].intervall").message
    assert "invalid duration 'soon'" in find(issues, "log_sources[1].delay").message


def test_log_source_cross_references(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.agent,
        "log_sources: []",
        "log_sources:\n"
        "  - {name: app, type: file, paths: [a.log], service: nobody}\n"
        "  - {name: app, type: file, paths: [b.log]}\n"
        "  - {name: demo_latency_p99, type: journald}\n",
    )
    issues = cfg.issues()
    assert "unknown service 'nobody'" in find(issues, "log_sources[0].service").message
    assert "used more than once" in find(issues, "log_sources[1].name").message
    assert "also a query name" in find(issues, "log_sources[2].name").message


def test_rules_may_match_log_signals(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, "signals: [demo_latency_p99, demo_error_ratio]", "signals: [log_error_burst]")
    assert cfg.load().rules[0].match.signals == ["log_error_burst"]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("  max_body: 1048576", "  max_body: 100", "api.max_body", "greater than or equal to 1024"),
        (
            "  max_alerts_per_request: 1000",
            "  max_alerts_per_request: 0",
            "api.max_alerts_per_request",
            "greater than or equal to 1",
        ),
        ("  max_clock_skew: 5m", "  max_clock_skew: soon", "alerts.max_clock_skew", "invalid duration"),
    ],
)
def test_request_limits_are_validated(cfg: ConfigDir, old: str, new: str, field: str, message: str) -> None:
    cfg.edit(cfg.agent, old, new)
    issue = only(cfg.issues())
    assert issue.field == field
    assert message in issue.message


# ---------------------------------------------------------------- notification sinks

SINKS_YAML = """\
notifications:
  - name: chat
    type: slack
    url: https://hooks.slack.example/services/T0/B0/x
  - name: pager
    type: pagerduty
    routing_key: 0123456789abcdef0123456789abcdef
  - name: am
    type: alertmanager
    url: http://alertmanager:9093
    labels: {team: web}
    resend: 30s
"""


def test_each_sink_type_takes_its_own_settings_and_default_events(cfg: ConfigDir) -> None:
    cfg.edit(cfg.agent, "notifications: []", SINKS_YAML)
    chat, pager, am = cfg.load().agent.notifications
    assert chat.events == [
        "escalation",
        "sla_breach",
        "sla_warning",
        "remediation",
        "incident_acknowledged",
        "incident_resolved",
    ]
    assert pager.url.get_secret_value() == "https://events.pagerduty.com/v2/enqueue"
    assert pager.events == ["escalation", "sla_breach", "incident_acknowledged", "incident_resolved"]
    assert (am.labels, am.resend) == ({"team": "web"}, timedelta(seconds=30))
    assert "incident_opened" in am.events and "remediation" not in am.events


def test_sink_settings_are_checked_against_the_sink_type(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.agent,
        "notifications: []",
        "notifications:\n"
        "  - name: pager\n"
        "    type: pagerduty\n"
        "  - name: hook\n"
        "    url: https://hooks.example/x\n"
        "    routing_key: 0123456789abcdef0123456789abcdef\n"
        "  - name: am\n"
        "    type: alertmanager\n"
        "    url: http://alertmanager:9093\n"
        "    events: [remediation]\n"
        "    labels: {severity: page}\n"
        "  - name: bare\n"
        "    type: slack\n",
    )
    issues = cfg.issues()
    assert "a pagerduty sink needs routing_key" in find(issues, "notifications[0]").message
    key = find(issues, "notifications[1].routing_key")
    assert key.message == "only pagerduty sinks take routing_key"
    assert key.line == line_of(cfg.agent, "routing_key: 0123")
    assert "0123456789abcdef" not in str(key), "a key is never echoed"
    assert "incident events only" in find(issues, "notifications[2].events").message
    assert "set by the agent" in find(issues, "notifications[2].labels").message
    assert find(issues, "notifications[3].url").message == "a slack sink needs a url"


def test_the_cooccurrence_window_must_fit_inside_its_horizon(cfg: ConfigDir) -> None:
    assert cfg.load().agent.problems.lookback == timedelta(days=30)
    cfg.edit(cfg.agent, "  cooccurrence_horizon: 30d", "  cooccurrence_horizon: 5m")
    issue = only(cfg.issues())
    assert issue.field == "problems"
    assert "cooccurrence_window must be positive and shorter than cooccurrence_horizon" in issue.message
    assert issue.line == line_of(cfg.agent, "problems:")


def test_joint_scoring_needs_a_detector(cfg: ConfigDir) -> None:
    cfg.edit(
        cfg.agent,
        "    promql: up\n    detector: null\n",
        "    promql: up\n    detector: null\n    joint: true\n",
    )
    issue = only(cfg.issues())
    assert issue.field == "queries[2].joint"
    assert "joint scoring needs a detector" in issue.message


def test_rules_may_match_a_joint_signal_only_where_joint_scoring_is_on(cfg: ConfigDir) -> None:
    cfg.edit(cfg.rules, "signals: [demo_latency_p99, demo_error_ratio]", "signals: [demo_latency_p99:joint]")
    assert "no signal named 'demo_latency_p99:joint'" in only(cfg.issues()).message
    cfg.edit(cfg.agent, "enabled: false         # signal", "enabled: true          # signal")
    assert cfg.load().agent.detection.joint.enabled
