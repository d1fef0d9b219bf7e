"""What on-call engineers do besides approving: silence, expire, pause, resume, retry and roll back, and
what they see of the envelope, shared by the CLI and the API so both validate and answer alike. The
writes go to the store (silences and switches, read on the leader's next housekeeping tick; requests,
through its inbox); nothing here talks to the core."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.config.models import CircuitBreaker
from agent.core.domain import ChangeKind, IncidentStatus, Priority
from agent.core.envelope import Matcher, Switch, breaker_open, paused
from agent.core.records import ReviewBase
from agent.durations import format_duration, parse_duration
from agent.shell.store import Store
from agent.shell.store.tables import Change, Incident, SilenceRecord, SwitchRecord

MAX_SILENCE = timedelta(days=90)  # longer than any maintenance; a forgotten silence must end


class SilenceRequest(BaseModel):
    """A new silence: matchers as `name=value`, `name!=value`, `name=~regex` or `name!~regex`; it starts
    now or at `starts_at` and lasts `duration` or until `ends_at`."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[str] = Field(min_length=1, max_length=32)
    comment: str = Field(min_length=1, max_length=2000)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: str | None = Field(default=None, max_length=64)

    @field_validator("matchers")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        for text in v:
            if len(text) > 1024:
                raise ValueError("a matcher is at most 1024 characters")
            Matcher.parse(text)
        return v

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _zoned(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-06T22:00:00Z)")
        return v

    @model_validator(mode="after")
    def _one_end(self) -> SilenceRequest:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give either duration or ends_at")
        if self.duration is not None:
            d = parse_duration(self.duration)
            if d <= timedelta(0) or d > MAX_SILENCE:
                raise ValueError(f"duration must be positive and at most {format_duration(MAX_SILENCE)}")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        start = self.starts_at or now
        end = self.ends_at if self.ends_at is not None else start + parse_duration(self.duration or "0s")
        if end <= start or end <= now:
            raise ValueError("a silence must end after it starts and in the future")
        if end - start > MAX_SILENCE:
            raise ValueError(f"a silence lasts at most {format_duration(MAX_SILENCE)}")
        return start, end


def add_silence(store: Store, req: SilenceRequest, actor: str, now: datetime) -> SilenceRecord:
    """Raises ValueError when the window does not make sense."""
    start, end = req.window(now)
    return store.silences.add([Matcher.parse(m) for m in req.matchers], start, end, actor, req.comment, now)


def silence_view(row: SilenceRecord, now: datetime) -> dict[str, Any]:
    ends = row.expired_at or row.ends_at
    state = "expired" if ends <= now else "active" if row.starts_at <= now else "pending"
    return {
        "id": row.id,
        "matchers": [f"{m['name']}{m['op']}{m['value']}" for m in row.matchers],
        "starts_at": row.starts_at.isoformat(),
        "ends_at": ends.isoformat(),
        "state": state,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "comment": row.comment,
        "expired_by": row.expired_by or None,
    }


class SwitchRequest(BaseModel):
    """A pause needs a reason; a resume may name one runbook to close only its circuit breakers."""

    model_config = ConfigDict(extra="forbid")

    service: str | None = Field(default=None, min_length=1, max_length=200)
    runbook: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


def switch(
    store: Store,
    kind: Literal["pause", "resume"],
    req: SwitchRequest,
    actor: str,
    now: datetime,
    services: Collection[str] | None = None,
    runbooks: Collection[str] | None = None,
) -> SwitchRecord:
    """Record a pause or resume; raises ValueError for a pause without reason or an unknown name."""
    if kind == "pause" and not req.reason.strip():
        raise ValueError("a pause needs a reason (it is shown to whoever wonders why nothing runs)")
    if kind == "pause" and req.runbook is not None:
        raise ValueError("pause a service or everything; a runbook is paused by its circuit breaker")
    if services is not None and req.service is not None and req.service not in services:
        raise ValueError(f"unknown service {req.service!r} (services.yaml has {', '.join(sorted(services))})")
    if runbooks is not None and req.runbook is not None and req.runbook not in runbooks:
        raise ValueError(f"unknown runbook {req.runbook!r}")
    return store.switches.add(Switch(kind, req.service, req.runbook, req.reason.strip(), actor, now))


def automation_status(
    store: Store, breaker: CircuitBreaker, now: datetime, services: Collection[str] = ()
) -> dict[str, Any]:
    """What holds automation back now: pauses (everywhere, per service) and open circuit breakers, the
    same functions the core decides with, applied to the store's records."""
    switches = store.switches.current()
    scopes = sorted({s.service for s in switches if s.service} | set(services))
    found = [paused(switches, "")] + [paused(switches, s) for s in scopes]  # a global pause shows once
    pauses = list({(p.service, p.at): p for p in found if p is not None}.values())
    failures: dict[tuple[str, str], list[datetime]] = {}
    for runbook, service, at in store.changes.failures(now - 2 * breaker.within):
        failures.setdefault((runbook, service), []).append(at)
    breakers = []
    for (runbook, service), times in sorted(failures.items()):
        why = breaker_open(times, switches, service, runbook, breaker, now)
        if why is not None:
            breakers.append(
                {"runbook": runbook, "service": service, "reason": why, "since": max(times).isoformat()}
            )
    return {
        "paused": [
            {"scope": p.service or "everywhere", "by": p.actor, "at": p.at.isoformat(), "reason": p.reason}
            for p in pauses
        ],
        "breakers": breakers,
        "log": [
            {
                "id": r.id,
                "kind": r.kind,
                "scope": r.service or "everywhere",
                "runbook": r.runbook,
                "by": r.actor,
                "at": r.at.isoformat(),
                "reason": r.reason,
            }
            for r in store.switches.log(20)
        ],
    }


def applied(store: Store, item: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for the leader to apply inbox item `item` (a person's request is
    answered with its effect when the leader is quick, and as accepted when it is not)."""
    deadline = time.monotonic() + timeout
    while store.inbox.contains(item):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def request_change(
    store: Store,
    origin_id: int,
    kind: ChangeKind,
    actor: str,
    note: str,
    now: datetime,
    timeout: float,
    wake: Callable[[], None] = lambda: None,
) -> tuple[Change | None, str]:
    """Ask for a retry or rollback of a change (NotFound, InvalidTransition when the store already says
    no) and wait up to `timeout` seconds for the leader: (the new change, "") when it made one, (None,
    why) when it refused, (None, "") when it has not answered yet."""
    item = store.changes.request(origin_id, kind, actor, now, note)
    wake()
    if not applied(store, item, timeout):
        return None, ""
    made = store.changes.made_from(origin_id, now)
    if made is not None:
        return made, ""
    incident_id = store.changes.get(origin_id).incident_id
    return None, _refusal(store, incident_id, "change_request_refused", now, origin_id)


class ReviewRequest(BaseModel):
    """A post-incident review as a person writes it (a YAML or JSON file, or the API's body)."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=20000)
    impact: str = Field(min_length=1, max_length=20000)
    root_cause: str = Field(min_length=1, max_length=20000)
    actions: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default=[], max_length=100)


def close_incident(
    store: Store,
    incident_id: int,
    review: ReviewRequest | None,
    actor: str,
    required: Collection[Priority],
    now: datetime,
    timeout: float,
    wake: Callable[[], None] = lambda: None,
) -> tuple[Incident, str]:
    """Ask the leader to close a resolved incident (NotFound, InvalidTransition when the store already
    says no) and wait up to `timeout` seconds: (the incident, "") when closed or not answered yet,
    (the incident, why) when the leader refused."""
    record = None
    if review is not None:
        record = ReviewBase(incident_id=incident_id, author=actor, created_at=now, **review.model_dump())
    item = store.closing.request(incident_id, actor, now, record, required)
    wake()
    answered = applied(store, item, timeout)
    incident = store.incidents.get(incident_id)
    if not answered or incident.status == IncidentStatus.CLOSED:
        return incident, ""
    return incident, _refusal(store, incident_id, "close_refused", now)


def _refusal(store: Store, incident_id: int, kind: str, since: datetime, change_id: int | None = None) -> str:
    """Why the leader refused a request taken at `since`: its newest `kind` entry in the incident's
    timeline (for a change request, the one naming `change_id`)."""
    reasons = [
        e.reason
        for e in store.incidents.timeline(incident_id)
        if e.kind == kind and e.at >= since and (change_id is None or e.data.get("change_id") == change_id)
    ]
    return reasons[-1] if reasons else "refused"
