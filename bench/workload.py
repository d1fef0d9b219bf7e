"""The alert-storm workload the core and webhook benchmarks share, as plain data (no agent imports).

1,000 services (tiers 1-3 mixed, about a fifth depend on another), 61 rules over 20 Alertmanager alert
names (60 that name services and alerts, one catch-all on severity), all using the catalog's
`collect_diagnostics` runbook with `{incident.id}` and `{service}` parameters. The storm first brings
one incident per service (one alert each), then sends `signals` more alerts in batches: about 90%
repeats of label sets already seen (some of them resolved, refiring later), 10% new label sets (a new
instance or alert name) on existing services. Everything is seeded, so old and new get the same input.

    >>> w = Workload(services=10, signals=200, batch=50)
    >>> len(w.services()), len(w.rules()), len(w.opening()), sum(len(b.alerts) for b in w.storm())
    (10, 61, 1, 200)
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ALERTNAMES = [
    "HighLatency",
    "HighErrorRate",
    "PodCrashLooping",
    "DiskWillFillIn4h",
    "MemoryPressure",
    "CPUThrottlingHigh",
    "TargetDown",
    "CertificateExpiring",
    "QueueBacklog",
    "ReplicationLag",
    "SlowQueries",
    "ConnectionPoolExhausted",
    "GCPauseHigh",
    "FileDescriptorsHigh",
    "NodeNotReady",
    "HTTP5xxBurst",
    "LatencySLOBurn",
    "ErrorBudgetBurn",
    "KafkaConsumerLag",
    "CacheHitRateLow",
]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULE_GROUPS = 30  # rule i names the services whose index is i modulo this


def service_name(i: int) -> str:
    return f"svc-{i:04d}"


@dataclass(frozen=True)
class Batch:
    """Alerts as Alertmanager's webhook (version 4) carries them, and the time the agent receives them."""

    at: datetime
    alerts: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        first = self.alerts[0]
        return {
            "version": "4",
            "groupKey": '{}:{alertname="' + first["labels"]["alertname"] + '"}',
            "status": first["status"],
            "receiver": "aiops",
            "groupLabels": {"alertname": first["labels"]["alertname"]},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
            "alerts": self.alerts,
        }


class Workload:
    """`new_share`: alerts with a label set never seen before; `resolved_share`: alerts resolving a label
    set; `selector_share`: alerts without a `service` label (mapped to a service by selectors on `job`);
    `step`: receive time between batches of the storm."""

    def __init__(
        self,
        services: int = 1_000,
        signals: int = 100_000,
        batch: int = 100,
        new_share: float = 0.10,
        resolved_share: float = 0.05,
        selector_share: float = 0.0,
        seed: int = 1,
        t0: datetime = T0,
        step: timedelta = timedelta(milliseconds=100),
    ):
        self.services_n, self.signals, self.batch = services, signals, batch
        self.new_share, self.resolved_share, self.selector_share = new_share, resolved_share, selector_share
        self.seed, self.t0, self.step = seed, t0, step
        self._instances: dict[int, int] = {}
        self._known: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ configuration

    def services(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self.services_n):
            deps = [service_name(i - 20)] if i >= 20 and i % 4 == 0 and (i // 20) % 5 else []
            out.append(
                {
                    "name": service_name(i),
                    "tier": 1 + (i * 7) % 3,
                    "owner": f"team-{i % 17}",
                    "depends_on": deps,
                    "selectors": [{"match": {"job": service_name(i)}}],
                }
            )
        return out

    def rules(self) -> list[dict[str, Any]]:
        params = {
            "incident_id": "{incident.id}",
            "service": "{service}",
            "instance": "{labels.instance}",
            "summary": "{labels.alertname}",
        }
        out = []
        for i in range(60):
            group = [service_name(s) for s in range(i % RULE_GROUPS, self.services_n, RULE_GROUPS)]
            match: dict[str, Any] = {
                "service": group,
                "signals": [ALERTNAMES[i % 20], ALERTNAMES[(i + 7) % 20]],
                "min_priority": ["P4", "P3", "P2"][i % 3],
            }
            if i % 4 == 0:
                match["labels"] = {"severity": "critical"}
            rule: dict[str, Any] = {
                "name": f"diagnose-{i:02d}-{ALERTNAMES[i % 20].lower()}",
                "match": match,
                "runbook": "collect_diagnostics",
                "params": params,
            }
            if i % 5 == 0:
                rule["guards"] = {"cooldown": "30m", "max_attempts": 3, "approval": "required"}
            out.append(rule)
        out.append(
            {
                "name": "diagnose-any-critical",
                "match": {"labels": {"severity": "critical"}},
                "runbook": "collect_diagnostics",
                "params": params,
            }
        )
        return out

    def agent_yaml(self, store_url: str, listen: str, token: str, prometheus: str, catalog: str) -> str:
        return (
            "dry_run: true\n"
            "log_level: warning\n"
            f"store: {{url: '{store_url}'}}\n"
            f"prometheus: {{url: '{prometheus}', retries: 0, timeout: 1s}}\n"
            f"alertmanager: {{alertnames: [{', '.join(ALERTNAMES)}]}}\n"
            f"api: {{listen: '{listen}', tokens: [{{name: alertmanager, role: operator, token: '{token}'}}]}}\n"
            "services_file: services.yaml\n"
            "rules_file: rules.yaml\n"
            f"catalog_file: '{catalog}'\n"
        )

    # ------------------------------------------------------------------ the storm

    def opening(self) -> list[Batch]:
        """One alert per service: every service gets an active incident."""
        rng = random.Random(self.seed)
        self._known = []
        at = self.t0 - timedelta(minutes=1)
        alerts = []
        for s in range(self.services_n):
            labels = self._labels(rng, s, ALERTNAMES[s % 20], 1, "critical" if s % 3 == 0 else "warning")
            alerts.append(self._remember(labels, at - timedelta(minutes=2)))
        return [Batch(at, alerts[i : i + self.batch]) for i in range(0, len(alerts), self.batch)]

    def storm(self) -> list[Batch]:
        """`signals` alerts after `opening()` (call that first), in batches `step` apart."""
        if not self._known:
            self.opening()
        rng = random.Random(self.seed + 1)
        batches = []
        for j in range(0, self.signals, self.batch):
            at = self.t0 + self.step * (j // self.batch)
            alerts = []
            for _ in range(min(self.batch, self.signals - j)):
                r = rng.random()
                if r < self.new_share:
                    s = rng.randrange(self.services_n)
                    self._instances[s] = self._instances.get(s, 1) + 1
                    name = rng.choice(ALERTNAMES) if rng.random() < 0.5 else ALERTNAMES[s % 20]
                    severity = "critical" if rng.random() < 0.3 else "warning"
                    labels = self._labels(rng, s, name, self._instances[s], severity)
                    alerts.append(self._remember(labels, at))
                elif r < self.new_share + self.resolved_share:
                    known = rng.choice(self._known)
                    known["status"] = "resolved"
                    alerts.append({**known, "endsAt": at.isoformat()})
                else:
                    known = rng.choice(self._known)
                    if known["status"] == "resolved":
                        known["status"] = "firing"
                        known["startsAt"] = at.isoformat()
                    alerts.append(dict(known))
            batches.append(Batch(at, alerts))
        return batches

    def firing(self, batches: list[Batch]) -> int:
        return sum(a["status"] == "firing" for b in batches for a in b.alerts)

    def _labels(self, rng: random.Random, s: int, name: str, instance: int, severity: str) -> dict[str, str]:
        svc = service_name(s)
        labels = {
            "alertname": name,
            "job": svc,
            "instance": f"10.{s // 250}.{s % 250}.{instance}:9100",
            "severity": severity,
            "team": f"team-{s % 17}",
            "prometheus": "monitoring/k8s",
        }
        if rng.random() >= self.selector_share:
            labels["service"] = svc
        return labels

    def _remember(self, labels: dict[str, str], starts: datetime) -> dict[str, Any]:
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {
                "summary": f"{labels['alertname']} on {labels['job']}",
                "description": f"{labels['alertname']} has been firing for {labels['instance']}",
                "runbook_url": f"https://runbooks.example/{labels['alertname']}",
            },
            "startsAt": starts.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": f"{zlib.crc32(repr(sorted(labels.items())).encode()):016x}",
        }
        self._known.append(alert)
        return dict(alert)
