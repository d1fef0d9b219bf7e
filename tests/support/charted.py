"""An incident to chart: a real Prometheus holding the history of its metric signal (backfilled, so its
values are known to the digit), and the incident, its signal and a change stored at matching times.

The history ends a step before now and the incident sits inside it: a fault starts 40 minutes before
the history ends, the change runs 10 minutes later, and the incident resolves 10 minutes before the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config.models import QueryConfig
from agent.core.decisions import Decisions
from agent.core.domain import ChangeStatus, IncidentStatus, Severity
from agent.core.incidents import Entry
from agent.shell.store import Store
from tests.support.backfill import (
    BackfilledPrometheus,
    Fault,
    generate,
    start_prometheus_with_history,
    synthetic_series,
)
from tests.support.records import add_change, incident_state, save_incidents, signal_state

METRIC = "db_latency_seconds"
LIMIT = 0.5
QUERY = QueryConfig.model_validate(
    {
        "name": "db_latency",
        "promql": f'{METRIC}{{job="charts"}}',
        "detector": None,
        "thresholds": [{"above": LIMIT, "severity": "critical"}],
    }
)
LABELS = {"__name__": METRIC, "job": "charts", "instance": "db-1:9100"}  # as Prometheus answers them
STEP = 15.0
HISTORY = 3 * 3600.0
SEED = 5


@dataclass
class Charted:
    prometheus: BackfilledPrometheus
    values: dict[float, float]  # the backfilled history: unix seconds -> value
    fault_at: float
    change_started: datetime
    change_finished: datetime

    @property
    def url(self) -> str:
        return self.prometheus.url

    def stop(self) -> None:
        self.prometheus.stop()


def start_charted(workdir: Path) -> Charted:
    """Prometheus with three hours of the signal's history (a 15 s grid, a threefold step at the fault)."""
    end = math.floor(time.time() / STEP) * STEP - STEP
    fault_at = end - 40 * 60
    target = {k: v for k, v in LABELS.items() if k != "__name__"}
    faults = {0: [Fault(at=fault_at, size=2.0)]}
    series = synthetic_series(METRIC, [target], seed=SEED, faults=faults, level=(0.2, 0.3))
    history = list(generate(series, end - HISTORY, end, STEP, seed=SEED))
    prometheus = start_prometheus_with_history(workdir, history)
    started = _dt(fault_at + 10 * 60)
    return Charted(
        prometheus,
        {t: v for _, _, points in history for t, v in points},
        fault_at,
        started,
        started + timedelta(seconds=50),
    )


def store_incident(store: Store, charted: Charted) -> int:
    """Incident #1 (resolved) with the metric signal (its onset in the timeline, as the agent records
    it, and a later latest value), a log signal, and change #1 that ran during it; the change's id."""
    onset, latest = charted.fault_at + 30, charted.fault_at + 20 * 60
    metric = signal_state(
        "fp-db",
        at=_dt(onset),
        name=QUERY.name,
        labels=LABELS,
        detector="static",
        severity=Severity.CRITICAL,
        last_at=_dt(latest),
        last_value=charted.values[latest],
        last_expected=LIMIT,
    )
    log = signal_state(
        "fp-log", at=_dt(onset), name="db_error_burst", source="logs", labels={"job": "charts"}
    )
    inc = incident_state(
        1,
        at=_dt(onset),
        status=IncidentStatus.RESOLVED,
        signals=[metric, log],
        started_at=_dt(charted.fault_at),
        resolved_at=_dt(charted.fault_at + 30 * 60),
    )
    save_incidents(store, inc)
    out = Decisions(at=_dt(onset))
    evidence = {
        "signal": QUERY.name,
        "labels": LABELS,
        "value": charted.values[onset],
        "at": _dt(onset).isoformat(),
    }
    out.entry(Entry(inc, _dt(onset), "signal", "agent", "new signal joined", evidence))
    store.committer({}, None).commit(out, 0)
    return add_change(
        store,
        1,
        ChangeStatus.SUCCEEDED,
        at=charted.change_started,
        started_at=charted.change_started,
        finished_at=charted.change_finished,
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
