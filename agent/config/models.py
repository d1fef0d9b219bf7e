"""Typed, immutable configuration: the schema stage of validation.

Every model forbids unknown keys, so a typo is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.core.domain import ChangeType, Level, Priority, Severity
from agent.durations import parse_duration
from integrations.notify.alertmanager import OWN_LABELS as ALERT_OWN_LABELS
from integrations.notify.pagerduty import EVENTS_URL as PAGERDUTY_EVENTS_URL
from integrations.redaction import redact_url

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=120)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- agent.yaml


class StaticThreshold(Model):
    """A fixed limit on a query's value, judged without any learning (score 1.0 when crossed)."""

    above: float | None = None
    below: float | None = None
    severity: Severity = Severity.CRITICAL

    @model_validator(mode="after")
    def _one_bound(self) -> StaticThreshold:
        if self.above is None and self.below is None:
            raise ValueError("set `above`, `below` or both")
        return self


class QueryConfig(Model):
    """One PromQL expression polled on a schedule; each returned series gets its own detector."""

    name: Name
    promql: str = Field(min_length=1)
    interval: Duration | None = None
    step: Duration | None = None
    detector: str | None = "default"
    threshold: float | None = Field(default=None, gt=0, le=1)
    severity: Severity = Severity.WARNING
    thresholds: list[StaticThreshold] = []
    service: str | None = None
    joint: bool | None = None  # judge each service's series together; None: `detection.joint.enabled`
    description: str = ""


class PrometheusConfig(Model):
    url: str = "http://127.0.0.1:9090"
    timeout: Duration = timedelta(seconds=10)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = timedelta(milliseconds=500)
    poll_interval: Duration = timedelta(seconds=15)
    step: Duration = timedelta(seconds=15)
    delay: Duration = timedelta(0)
    max_backfill: Duration = timedelta(hours=1)
    headers: dict[str, SecretStr] = {}

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"must be an http(s) URL, got {redact_url(v)!r}")
        return v.rstrip("/")


class DetectorProfile(Model):
    """A named detector set-up; queries refer to it by name and get one fresh instance per series."""

    kind: str
    params: dict[str, Any] = {}


class JointDetection(Model):
    """Judge a query's series of one service together (detectors.joint): one signal per service,
    `<query>:joint`, with its most anomalous series as evidence, instead of one signal per series."""

    enabled: bool = False
    truncation: float = Field(
        default=1.5, gt=0
    )  # series at least this rare (-log10) add to the agreement test
    damping: int = Field(default=100, ge=1)  # points after a joint alarm during which a weaker one is damped
    evidence: int = Field(default=5, ge=1, le=50)  # contributing series listed in the signal


class DetectionConfig(Model):
    threshold: float = Field(default=0.8, gt=0, le=1)
    # False alarms per series per day the calibrated detectors aim for at score 0.8 (each series' line
    # is set from its own score distribution and sample rate).
    false_alarm_budget: float = Field(default=0.05, gt=0, le=1000)  # = detectors.bank.DEFAULT_BUDGET
    # How much of a query's past detectors learn from when a series is first seen (0s: start cold).
    warmup_history: Duration = timedelta(hours=6)
    joint: JointDetection = JointDetection()


class HaConfig(Model):
    """Replicas on one PostgreSQL store: the leader renews its lease; standbys take over when it lapses."""

    lease_ttl: Duration = timedelta(seconds=15)

    @field_validator("lease_ttl")
    @classmethod
    def _long_enough(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("lease_ttl must be at least 1s (the leader renews every third of it)")
        return v


class Flapping(Model):
    """More than `transitions` open/clear transitions of an incident's signals within `within` mark it
    flapping: automation holds until it settles (a runbook cannot fix what keeps coming and going)."""

    transitions: int = Field(default=6, ge=1)
    within: Duration = timedelta(minutes=30)


class CorrelationConfig(Model):
    window: Duration = timedelta(minutes=5)
    quiet_period: Duration = timedelta(minutes=3)
    reopen_window: Duration = timedelta(minutes=30)
    settle_period: Duration = timedelta(minutes=2)
    breadth_instances: int = Field(default=3, ge=2)
    max_signals: int = Field(default=500, ge=1)
    flapping: Flapping = Flapping()


class SlaTarget(Model):
    acknowledge: Duration
    resolve: Duration


def _default_matrix() -> dict[Level, dict[Level, Priority]]:
    h, m, lo = Level.HIGH, Level.MEDIUM, Level.LOW
    return {
        h: {h: Priority.P1, m: Priority.P2, lo: Priority.P3},
        m: {h: Priority.P2, m: Priority.P3, lo: Priority.P4},
        lo: {h: Priority.P3, m: Priority.P4, lo: Priority.P4},
    }


def _default_sla() -> dict[Priority, SlaTarget]:
    minutes = {
        Priority.P1: (5, 60),
        Priority.P2: (15, 240),
        Priority.P3: (60, 1440),
        Priority.P4: (240, 4320),
    }
    return {
        p: SlaTarget(acknowledge=timedelta(minutes=a), resolve=timedelta(minutes=r))
        for p, (a, r) in minutes.items()
    }


class PriorityConfig(Model):
    """ITIL priority: impact (from service tier and breadth) x urgency (from signal severity)."""

    tier_impact: dict[int, Level] = {1: Level.HIGH, 2: Level.MEDIUM, 3: Level.LOW}
    severity_urgency: dict[Severity, Level] = {
        Severity.CRITICAL: Level.HIGH,
        Severity.WARNING: Level.MEDIUM,
        Severity.INFO: Level.LOW,
    }
    matrix: dict[Level, dict[Level, Priority]] = Field(default_factory=_default_matrix)
    sla: dict[Priority, SlaTarget] = Field(default_factory=_default_sla)
    sla_warning: float = Field(default=0.8, gt=0, lt=1)  # warn when this share of a target has passed

    @model_validator(mode="after")
    def _complete(self) -> PriorityConfig:
        for impact in Level:
            row = self.matrix.get(impact)
            if row is None or any(u not in row for u in Level):
                raise ValueError(f"matrix must give a priority for every impact x urgency (missing {impact})")
        missing = [p.value for p in Priority if p not in self.sla]
        if missing:
            raise ValueError(f"sla must give targets for every priority (missing {', '.join(missing)})")
        return self


class Budget(Model):
    """At most `max` changes per `per` in one scope: all of them, each service's, or each runbook's."""

    scope: Literal["global", "service", "runbook"]
    max: int = Field(ge=1)
    per: Duration


class CircuitBreaker(Model):
    """`failures` failed changes of one runbook on one service within `within` stop that runbook there
    until a person resumes it (`aiops automation resume`)."""

    failures: int = Field(default=3, ge=1)
    within: Duration = timedelta(hours=1)


class RemediationConfig(Model):
    max_parallel: int = Field(default=2, ge=1, le=32)
    default_timeout: Duration = timedelta(minutes=10)
    verify_interval: Duration = timedelta(seconds=5)
    shutdown_grace: Duration = timedelta(seconds=10)
    data_dir: str | None = None
    inventory: str | None = None
    budgets: list[Budget] = []
    circuit_breaker: CircuitBreaker = CircuitBreaker()


ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}  # each role may do what the ones below it may


class ApiToken(Model):
    name: Name
    token: SecretStr
    role: Literal["viewer", "operator", "admin"]

    @field_validator("token")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("token must be at least 16 characters")
        return v


class ApiConfig(Model):
    """The HTTP API. Its limits bound what one request may cost the agent before it is refused."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    tokens: list[ApiToken] = []
    read_requires_token: bool = False
    max_body: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_alerts_per_request: int = Field(default=1000, ge=1, le=100_000)
    external_url: str = ""  # where people reach the API and UI; notifications link there

    @field_validator("external_url")
    @classmethod
    def _external(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+[^\s<>|]*$", v):
            raise ValueError(f"must be an http(s) URL, got {redact_url(v)!r}")
        return v.rstrip("/")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"must be HOST:PORT, got {v!r}")
        return v


NotifyEvent = Literal[
    "escalation",
    "sla_breach",
    "sla_warning",
    "remediation",
    "incident_opened",
    "incident_reopened",
    "incident_acknowledged",
    "incident_resolved",
]
_FOLLOW_UPS: list[NotifyEvent] = ["incident_acknowledged", "incident_resolved"]
DEFAULT_EVENTS: dict[str, list[NotifyEvent]] = {
    "webhook": ["escalation", "sla_breach"],
    "slack": ["escalation", "sla_breach", "sla_warning", "remediation", *_FOLLOW_UPS],
    "pagerduty": ["escalation", "sla_breach", *_FOLLOW_UPS],
    "alertmanager": ["incident_opened", "incident_reopened", "escalation", "sla_breach", *_FOLLOW_UPS],
}
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotificationSink(Model):
    """Where notifications go. `type` picks the receiver: a generic JSON `webhook`, a `slack` incoming
    webhook, `pagerduty` (Events API v2, PagerDuty's endpoint unless `url` says otherwise) or
    `alertmanager` (`url` is its base URL). `events` defaults per type; each type's own settings
    (`routing_key`, `labels`, `resend`) are refused on the others."""

    name: Name
    type: Literal["webhook", "slack", "pagerduty", "alertmanager"] = "webhook"
    url: SecretStr = Field(default=None, validate_default=True)
    events: list[NotifyEvent] = Field(default=None, validate_default=True)
    timeout: Duration = timedelta(seconds=5)
    routing_key: SecretStr | None = None  # pagerduty: the integration's key
    labels: dict[str, str] = {}  # alertmanager: static labels on every alert, for routing
    resend: Duration = timedelta(minutes=1)  # alertmanager: how often active incidents are posted again

    @field_validator("url", mode="before")
    @classmethod
    def _url_default(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None and info.data.get("type") == "pagerduty":
            return PAGERDUTY_EVENTS_URL
        if v is None:
            raise ValueError(f"a {info.data.get('type', 'webhook')} sink needs a url")
        return v

    @field_validator("url")
    @classmethod
    def _http(cls, v: SecretStr) -> SecretStr:
        if not re.match(r"^https?://[^\s/]+", v.get_secret_value()):
            raise ValueError("must be an http(s) URL")
        return v

    @field_validator("events", mode="before")
    @classmethod
    def _default_events(cls, v: Any, info: ValidationInfo) -> Any:
        return DEFAULT_EVENTS.get(info.data.get("type", ""), []) if v is None else v

    @field_validator("events")
    @classmethod
    def _incident_events(cls, v: list[str], info: ValidationInfo) -> list[str]:
        kind = info.data.get("type")
        if kind in ("pagerduty", "alertmanager") and "remediation" in v:
            raise ValueError(f"{kind} sinks take incident events only; remove remediation")
        return v

    @field_validator("routing_key")
    @classmethod
    def _pagerduty_key(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        _only_for(info, "pagerduty")
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("routing_key must be at least 16 characters (PagerDuty's are 32)")
        return v

    @field_validator("labels")
    @classmethod
    def _alert_labels(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        _only_for(info, "alertmanager")
        for name, value in v.items():
            if not _LABEL_NAME.match(name):
                raise ValueError(f"label name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if name in ALERT_OWN_LABELS:
                raise ValueError(f"label {name!r} is set by the agent; choose another name")
            if not value:
                raise ValueError(f"label {name!r} needs a value (Alertmanager drops empty labels)")
        return v

    @field_validator("resend")
    @classmethod
    def _alertmanager_resend(cls, v: timedelta, info: ValidationInfo) -> timedelta:
        _only_for(info, "alertmanager")
        if v < timedelta(seconds=1):
            raise ValueError("resend must be at least 1s")
        return v

    @model_validator(mode="after")
    def _pagerduty_needs_key(self) -> NotificationSink:
        if self.type == "pagerduty" and self.routing_key is None:
            raise ValueError("a pagerduty sink needs routing_key (the integration key of its service)")
        return self


def _only_for(info: ValidationInfo, kind: str) -> None:
    """Refuse a setting given for a sink of another type (an unknown type is reported on its own)."""
    given = info.data.get("type")
    if given is not None and given != kind:
        raise ValueError(f"only {kind} sinks take {info.field_name}")


class LogDetection(Model):
    """How a log source's lines become signals (see detectors/logs/signals.py)."""

    bucket: Duration = timedelta(minutes=1)
    warmup: Duration = timedelta(minutes=10)
    warmup_lines: int = Field(default=200, ge=0)
    spike_z: float = Field(default=5.0, gt=0)
    spike_min: int = Field(default=10, ge=1)
    spike_ratio: float = Field(default=3.0, ge=1)
    new_templates_per_hour: int = Field(default=20, ge=0)
    new_template_severity: Severity = Severity.INFO
    rate_spike_severity: Severity = Severity.WARNING
    error_burst_severity: Severity = Severity.CRITICAL


class LogSourceConfig(Model):
    """A stream of log lines. `labels` (plus the source's own: path, unit, stream labels) are what
    services.yaml selectors match; `service` pins the source to one service instead."""

    name: Name
    type: Literal["file", "loki", "journald"]
    interval: Duration = timedelta(seconds=10)
    labels: dict[str, str] = {}
    service: str | None = None
    detection: LogDetection = LogDetection()
    max_lines_per_poll: int = Field(default=50_000, ge=1)
    # file
    paths: list[str] = []
    start_at: Literal["end", "beginning"] = "end"
    max_line_bytes: int = Field(default=65536, ge=256)
    # loki
    url: str | None = None
    query: str | None = None
    delay: Duration = timedelta(seconds=5)
    # journald
    units: list[str] = []
    matches: list[str] = []
    directory: str | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> LogSourceConfig:
        need = {"file": ["paths"], "loki": ["url", "query"], "journald": []}[self.type]
        missing = [f for f in need if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.type} source needs {', '.join(missing)}")
        return self


class AlertmanagerConfig(Model):
    """Alerts pushed to POST /api/v1/alerts; `alertnames` are the ones rules may match by name."""

    alertnames: list[Name] = []


class AlertsConfig(Model):
    """What the agent accepts from any sender of alerts."""

    # A sender's clock may run ahead of ours by this much; an alert from further in the future is refused.
    max_clock_skew: Duration = timedelta(minutes=5)


class StoreConfig(Model):
    url: str = "sqlite:///aiops.db"


class ProblemConfig(Model):
    """Problem candidates: a signature recurring `recurrence_count` times within `recurrence_window`, and
    signatures on different services whose incidents open within `cooccurrence_window` of each other
    more often than their own rates over `cooccurrence_horizon` predict: at least
    `cooccurrence_min_count` times, with a one-sided p-value at most `cooccurrence_max_p` (small: every
    pair of signatures is a test, so a loose threshold would raise chance pairs)."""

    recurrence_count: int = Field(default=3, ge=2)
    recurrence_window: Duration = timedelta(hours=24)
    cooccurrence_window: Duration = timedelta(minutes=10)
    cooccurrence_horizon: Duration = timedelta(days=30)
    cooccurrence_min_count: int = Field(default=3, ge=2)
    cooccurrence_max_p: float = Field(default=0.001, gt=0, le=1)

    @model_validator(mode="after")
    def _window_inside_horizon(self) -> ProblemConfig:
        if not timedelta(0) < self.cooccurrence_window < self.cooccurrence_horizon:
            raise ValueError("cooccurrence_window must be positive and shorter than cooccurrence_horizon")
        return self

    @property
    def lookback(self) -> timedelta:
        """How far back the openings the core starts with reach."""
        return max(self.recurrence_window, self.cooccurrence_horizon)


class IncidentsConfig(Model):
    """The end of an incident's life: resolved incidents are closed by a person (`aiops incidents close`)
    or, `auto_close` after they resolved, by the agent; those of a priority in `review_required` need
    a post-incident review first, so the agent never closes them by itself."""

    auto_close: Duration | None = timedelta(days=3)
    review_required: list[Priority] = [Priority.P1, Priority.P2]


class AgentConfig(Model):
    dry_run: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    store: StoreConfig = StoreConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    queries: list[QueryConfig] = []
    log_sources: list[LogSourceConfig] = []
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    alerts: AlertsConfig = AlertsConfig()
    state_dir: str = "var/state"
    detectors: dict[str, DetectorProfile] = {"default": DetectorProfile(kind="ensemble")}
    detection: DetectionConfig = DetectionConfig()
    correlation: CorrelationConfig = CorrelationConfig()
    priority: PriorityConfig = PriorityConfig()
    remediation: RemediationConfig = RemediationConfig()
    api: ApiConfig = ApiConfig()
    notifications: list[NotificationSink] = []
    problems: ProblemConfig = ProblemConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    ha: HaConfig = HaConfig()
    housekeeping_interval: Duration = timedelta(seconds=5)
    services_file: str = "services.yaml"
    rules_file: str = "rules.yaml"
    catalog_file: str = "../runbooks/catalog.yaml"

    @model_validator(mode="after")
    def _close_after_reopen(self) -> AgentConfig:
        close, reopen = self.incidents.auto_close, self.correlation.reopen_window
        if close is not None and close <= reopen:
            raise ValueError(
                "incidents.auto_close must be longer than correlation.reopen_window "
                "(an incident that may still reopen is not closed)"
            )
        return self


# ---------------------------------------------------------------- services.yaml


class Selector(Model):
    """Label matchers mapping a series to a service; all given matchers must hold."""

    match: dict[str, str] = {}
    match_re: dict[str, str] = {}

    @field_validator("match_re")
    @classmethod
    def _compiles(cls, v: dict[str, str]) -> dict[str, str]:
        for label, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"match_re.{label}: invalid regular expression: {e}") from e
        return v


class MaintenanceWindow(Model):
    """When a service is being worked on: one-off (`start`, `end`) or recurring (`cron`, `duration`,
    `timezone`). Its signals are recorded but act on nothing and notify nobody meanwhile."""

    name: str = ""
    start: datetime | None = None
    end: datetime | None = None
    cron: str | None = None
    duration: Duration | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        one_off, recurring = self.start is not None or self.end is not None, self.cron is not None
        if one_off == recurring:
            raise ValueError("give either start and end, or cron and duration")
        if one_off:
            if self.start is None or self.end is None or self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError("a one-off window needs start and end with a time zone (e.g. ...Z)")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        else:
            if self.duration is None or self.duration <= timedelta(0):
                raise ValueError("a recurring window needs a positive duration")
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {self.timezone!r}") from None
            try:
                CronSim(self.cron or "", datetime.now(UTC))
            except CronSimError as e:
                raise ValueError(f"invalid cron expression {self.cron!r}: {e}") from None
        return self


class Service(Model):
    name: Name
    tier: int = Field(default=2, ge=1, le=9)
    owner: str = ""
    description: str = ""
    depends_on: list[str] = []
    selectors: list[Selector] = []
    maintenance: list[MaintenanceWindow] = []


class ServicesFile(Model):
    services: list[Service] = []


# ---------------------------------------------------------------- rules.yaml


class RuleMatch(Model):
    service: str | list[str] | None = None
    signals: list[str] = []
    labels: dict[str, str] = {}
    min_priority: Priority = Priority.P4

    @property
    def services(self) -> list[str]:
        if self.service is None:
            return []
        return [self.service] if isinstance(self.service, str) else list(self.service)


class RateLimit(Model):
    """At most `max` changes of the rule per `per`, over all incidents and services."""

    max: int = Field(ge=1)
    per: Duration


class Require(Model):
    """Act only once `count` matching signals (new ones or repeats) arrived within `within`."""

    count: int = Field(ge=1)
    within: Duration


class Guards(Model):
    cooldown: Duration = timedelta(minutes=15)
    max_attempts: int = Field(default=2, ge=1)
    approval: Literal["auto", "required"] = "auto"
    rate_limit: RateLimit | None = None


class Verification(Model):
    """A PromQL condition that must return at least one series within the deadline (alerting semantics)."""

    promql: str = Field(min_length=1)
    deadline: Duration = timedelta(minutes=2)


ParamValue = str | int | float | bool


class Rule(Model):
    name: Name
    description: str = ""
    match: RuleMatch = RuleMatch()
    runbook: str
    params: dict[str, ParamValue] = {}
    guards: Guards = Guards()
    require: Require | None = None
    verify: Verification | None = None


class RulesFile(Model):
    rules: list[Rule] = []


# ---------------------------------------------------------------- runbooks/catalog.yaml


class ParamSpec(Model):
    type: Literal["string", "integer", "number", "boolean"] = "string"
    required: bool = True
    default: ParamValue | None = None
    pattern: str | None = None
    secret: bool = False
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"invalid regular expression: {e}") from e
        return v


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_SET_BY_RUNNER = {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}
_ENV_SECRET = re.compile(
    r"TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE|_KEY|(^|_)(DATABASE|DB|STORE)_?(URL|URI|DSN)$"
)


def _env_name(name: str) -> str:
    """A variable of the agent's environment a runbook may see: never one the runner sets itself, one
    of Ansible's or the agent's own settings, or one whose name says it holds a secret."""
    upper = name.upper()
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    if name in _ENV_SET_BY_RUNNER or upper.startswith(("ANSIBLE_", "RUNNER_", "AWX_", "AIOPS_")):
        raise ValueError(
            f"{name} is set by the runner or configures Ansible or the agent; put Ansible settings in "
            "an ansible.cfg next to the playbooks"
        )
    if _ENV_SECRET.search(upper):
        raise ValueError(f"{name} looks like a secret; pass it as a `secret: true` parameter instead")
    return name


class RunbookSpec(Model):
    playbook: str
    action: str = "ansible"
    description: str = ""
    risk: Literal["low", "medium", "high"] = "medium"
    change_type: ChangeType = ChangeType.NORMAL
    timeout: Duration | None = None
    params: dict[str, ParamSpec] = {}
    env: list[Annotated[str, AfterValidator(_env_name)]] = []  # the agent's variables the playbook sees
    verify: Verification | None = None
    rollback: str | None = None


class Catalog(Model):
    runbooks: dict[str, RunbookSpec] = {}
