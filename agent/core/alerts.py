"""External alerts (Alertmanager) as signals: they join the same correlation as the agent's own anomalies.

An alert's identity is its label set, as in Alertmanager; its service is the catalog service its
`service` label names, else the one whose selectors match its labels. Urgency comes from the
`severity` label. A resolved alert is positive evidence that its signal is over. The agent's own
incidents, posted to Alertmanager by its sink, are not signals: a route that sends every alert back
to the agent would otherwise open an incident about each incident, without end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agent.core.domain import Severity, Signal, SignalClear, fingerprint
from agent.core.topology import UNMAPPED, ServiceMap
from integrations.alertmanager import ExternalAlert
from integrations.notify.alertmanager import INCIDENT_LABEL

SOURCE = "alertmanager"
_SEVERITY = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "high": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "info": Severity.INFO,
    "notice": Severity.INFO,
    "low": Severity.INFO,
    "none": Severity.INFO,
}


def severity_of(alert: ExternalAlert) -> Severity:
    """The `severity` label's urgency; an alert without one (or with an unknown word) is a warning."""
    word = alert.labels.get("severity", "")
    found = _SEVERITY.get(word)  # as usually written; else normalised
    return found if found is not None else _SEVERITY.get(word.strip().lower(), Severity.WARNING)


def to_signals(
    alerts: Iterable[ExternalAlert], services: ServiceMap
) -> tuple[list[Signal], list[SignalClear]]:
    """Firing alerts as signals (with their annotations as evidence), resolved ones as clears."""
    signals: list[Signal] = []
    clears: list[SignalClear] = []
    for a in alerts:
        if INCIDENT_LABEL in a.labels:
            continue
        fp = fingerprint(a.name, a.labels)
        if a.status == "resolved":
            clears.append(SignalClear(fp, a.ends_at or a.starts_at))
            continue
        named = a.labels.get("service", "")
        service = named if services.known(named) else services.service_for(a.labels) or UNMAPPED
        details: Mapping[str, object] = a.annotations
        if a.generator_url:
            details = {**a.annotations, "generator_url": a.generator_url}
        signals.append(
            Signal(
                name=a.name,
                service=service,
                source=SOURCE,
                labels=a.labels,
                at=a.starts_at,
                value=1.0,
                score=1.0,
                detector=SOURCE,
                severity=severity_of(a),
                fingerprint=fp,
                details=details,
            )
        )
    return signals, clears
