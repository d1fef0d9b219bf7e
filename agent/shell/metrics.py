"""The agent's own Prometheus metrics, on a registry passed in (tests use a fresh one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent.core.domain import Priority


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.polls = Counter("aiops_polls", "Source polls attempted.", ["source"], registry=registry)
        self.poll_errors = Counter(
            "aiops_poll_errors", "Source polls that failed.", ["source"], registry=registry
        )
        self.poll_seconds = Histogram(
            "aiops_poll_duration_seconds", "Time to fetch one source.", ["source"], registry=registry
        )
        self.source_up = Gauge(
            "aiops_source_up", "1 if the last poll of the source succeeded.", ["source"], registry=registry
        )
        self.samples = Counter(
            "aiops_samples_processed", "Samples fed to detectors.", ["source"], registry=registry
        )
        self.detector_seconds = Histogram(
            "aiops_detector_seconds",
            "Detector time per poll of one source.",
            ["source"],
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=registry,
        )
        self.series = Gauge(
            "aiops_detector_series", "Series tracked by detectors.", ["state"], registry=registry
        )
        self.series_days = Gauge(
            "aiops_detector_series_days",
            "Series-days of data judged by the calibrated detectors since this agent started leading.",
            registry=registry,
        )
        self.alarm_rate = Gauge(
            "aiops_detector_alarms_per_series_day",
            "Detector alarms (anomalous episodes started) per series-day judged, since this agent started "
            "leading: compare with detection.false_alarm_budget.",
            registry=registry,
        )
        self.signals = Counter(
            "aiops_signals", "Anomaly signals raised.", ["source", "severity"], registry=registry
        )
        self.open_incidents = Gauge(
            "aiops_open_incidents", "Active incidents.", ["priority"], registry=registry
        )
        self.changes = Counter(
            "aiops_changes", "Remediation changes by outcome.", ["outcome"], registry=registry
        )
        self.runbook_seconds = Histogram(
            "aiops_runbook_duration_seconds",
            "Runbook run duration.",
            ["runbook", "status"],
            buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=registry,
        )
        self.notifications = Counter(
            "aiops_notifications",
            "Notifications sent, by sink and result.",
            ["sink", "result"],
            registry=registry,
        )
        self.leader = Gauge(
            "aiops_leader",
            "1 while this agent leads (polls, decides, remediates); 0 on a standby.",
            registry=registry,
        )
        self.store_write_failures = Counter(
            "aiops_store_write_failures",
            "Commits of decisions the store refused (each is retried until it succeeds).",
            registry=registry,
        )
        self.events = Counter(
            "aiops_core_events", "Events applied by the decision core, by type.", ["event"], registry=registry
        )
        for p in Priority:
            self.open_incidents.labels(priority=p.value).set(0)
