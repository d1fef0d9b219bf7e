"""What the API and the CLI's --json show of store records: each record's public model (its base from
agent/core/records.py plus its id and computed fields), and the composed incident and problem views."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import computed_field, field_serializer
from sqlmodel import SQLModel

from agent.core import problem_cost
from agent.core.rca import incident_root_causes
from agent.core.records import (
    ChangeBase,
    IncidentBase,
    IncidentEventBase,
    KnownErrorBase,
    ProblemBase,
    RunBase,
    RunEventBase,
    SignalBase,
)
from agent.shell.store import Store
from agent.shell.store.tables import AuditEntry


class Public(SQLModel):
    """Times as ISO 8601 with an explicit +00:00 offset, as everywhere else the agent writes them."""

    @field_serializer("*", when_used="json")
    def _iso(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value


class IncidentPublic(IncidentBase, Public):
    id: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sla(self) -> dict[str, Any]:
        return {
            "acknowledge_by": self.ack_due_at.isoformat(),
            "resolve_by": self.resolve_due_at.isoformat(),
            "acknowledge_breached": self.ack_breached,
            "resolve_breached": self.resolve_breached,
        }


class SignalPublic(SignalBase, Public):
    @computed_field  # type: ignore[prop-decorator]
    @property
    def expected(self) -> float | None:
        return self.last_expected


class EventPublic(IncidentEventBase, Public):
    pass


class ChangePublic(ChangeBase, Public):
    id: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verification_result(self) -> dict[str, Any]:
        return {
            "promql": self.verify_promql,
            "deadline_s": self.verify_deadline_s,
            "verified_at": self.verified_at.isoformat() if self.verified_at else None,
            "result": self.verification,
        }


class RunEventPublic(RunEventBase, Public):
    pass


class RunPublic(RunBase, Public):
    id: int


class ProblemPublic(ProblemBase, Public):
    id: int


class KnownErrorPublic(KnownErrorBase, Public):
    id: int


def _view(model: type[SQLModel], row: Any) -> dict[str, Any]:
    return model.model_validate(row, from_attributes=True).model_dump(mode="json")


def incident_summary(row: Any) -> dict[str, Any]:
    return _view(IncidentPublic, row)


def signal_view(row: Any) -> dict[str, Any]:
    out = _view(SignalPublic, row)
    out["evidence"] = out["evidence"] or {}
    return out


def event_view(row: Any) -> dict[str, Any]:
    return _view(EventPublic, row)


def change_view(row: Any) -> dict[str, Any]:
    out = _view(ChangePublic, row)
    out["verification"] = out.pop("verification_result")
    out["rollback_playbook"] = out["rollback_playbook"] or None
    return out


def run_view(row: Any, events: list[Any] | None = None) -> dict[str, Any]:
    out = _view(RunPublic, row)
    if events is not None:
        # each event's output is in the run's whole output already
        out["events"] = [{k: v for k, v in _view(RunEventPublic, e).items() if k != "stdout"} for e in events]
    return out


def problem_view(row: Any) -> dict[str, Any]:
    """The problem's own record; `ranked_problems` and `problem_detail` add its cost and trend."""
    return _view(ProblemPublic, row)


def problem_measures(incidents: list[Any], changes: dict[int, list[Any]], now: datetime) -> dict[str, Any]:
    """A problem's cost, trend and incidents per day from its incidents and their changes (by incident id),
    as `ProblemRepo.costing` reads them."""
    made = [c for i in incidents for c in changes.get(i.id or 0, [])]
    return {
        "cost": problem_cost.cost(incidents, made, now).as_dict(),
        "trend": problem_cost.trend((i.opened_at for i in incidents), now).as_dict(),
        "per_day": problem_cost.daily(incidents, now),
    }


def _measured(row: Any, incidents: list[Any], changes: dict[int, list[Any]], now: datetime) -> dict[str, Any]:
    return {**problem_view(row), **problem_measures(incidents, changes, now)}


def ranked_problems(store: Store, now: datetime, status: str | None = None) -> list[dict[str, Any]]:
    """Problem candidates and problems, costliest first (the most recently seen first among equals),
    each with its cost, its trend and its incidents per day (agent/core/problem_cost.py)."""
    rows = store.problems.list(status=status, limit=1000)
    incidents, changes = store.problems.costing([p.id or 0 for p in rows])
    out = [_measured(p, incidents[p.id or 0], changes, now) for p in rows]
    out.sort(key=lambda v: (-v["cost"]["total"], -_seconds(v["last_seen"]), v["id"]))
    return out


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def known_error_view(row: Any) -> dict[str, Any]:
    return _view(KnownErrorPublic, row)


def incident_detail(
    store: Store, incident_id: int, dependencies: Collection[tuple[str, str]] = ()
) -> dict[str, Any]:
    """One incident with everything an on-call engineer needs to review it; `dependencies` are the
    (caller, callee) pairs of services.yaml, for the root-cause ranking."""
    row = store.incidents.get(incident_id)
    signals = store.incidents.signals(incident_id)
    spanned = signals + [
        s for child in store.incidents.children(incident_id) for s in store.incidents.signals(child.id or 0)
    ]
    changes = []
    for ch in reversed(store.changes.list(incident_id=incident_id, limit=1000)):
        view = change_view(ch)
        view["runs"] = [run_view(r, store.runs.events(r.id or 0)) for r in store.runs.for_change(ch.number)]
        changes.append(view)
    known = row.known_error_id
    return {
        **incident_summary(row),
        "known_error": known_error_view(store.known_errors.get(known)) if known is not None else None,
        "signals": [signal_view(s) for s in signals],
        "root_causes": [c.as_dict() for c in incident_root_causes(spanned, dependencies)],
        "timeline": [event_view(e) for e in store.incidents.timeline(incident_id)],
        "changes": changes,
        "review": review_view(store, incident_id),
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
    }


def review_view(store: Store, incident_id: int) -> dict[str, Any] | None:
    review = store.closing.review(incident_id)
    if review is None:
        return None
    return {**review.model_dump(exclude={"id"}), "created_at": review.created_at.isoformat()}


def problem_detail(store: Store, problem_id: int, now: datetime) -> dict[str, Any]:
    row = store.problems.get(problem_id)
    known = row.known_error_id
    incidents, changes = store.problems.costing([problem_id])
    return {
        **_measured(row, incidents[problem_id], changes, now),
        "known_error": known_error_view(store.known_errors.get(known)) if known is not None else None,
        "incidents": [incident_summary(i) for i in incidents[problem_id]],
    }
