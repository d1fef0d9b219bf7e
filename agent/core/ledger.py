"""What the core knows of remediation changes, as far as rule guards need it: the open change of each
incident, attempts per incident and rule, and recent changes per rule and service (cooldown).

Loaded from the store when the core starts and kept current from the changes the core creates and
the results and decisions that come back as events, so guards never query the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.core.domain import ChangeStatus
from agent.core.records import ChangeBase

OPEN = frozenset(
    {ChangeStatus.AWAITING_APPROVAL, ChangeStatus.APPROVED, ChangeStatus.RUNNING, ChangeStatus.VERIFYING}
)
_NOT_ATTEMPTS = frozenset({ChangeStatus.REJECTED, ChangeStatus.CANCELLED, ChangeStatus.DRY_RUN})
_NO_COOLDOWN = frozenset({ChangeStatus.REJECTED, ChangeStatus.CANCELLED})  # nor do they count for budgets
FAILED = frozenset({ChangeStatus.FAILED, ChangeStatus.ROLLED_BACK})


@dataclass
class Tracked:
    """One change as the guards see it. `id` is None until the store has created it."""

    id: int | None
    incident_id: int | None
    incident_ref: int | None
    rule: str
    service: str
    status: ChangeStatus
    created_at: datetime
    runbook: str = ""
    finished_at: datetime | None = None  # when it failed (what circuit breakers count)

    @property
    def open(self) -> bool:
        return self.status in OPEN


class ChangeLedger:
    def __init__(self, horizon: timedelta):
        self.horizon = horizon  # the longest window any guard looks back: older changes no longer matter
        self._recent: list[Tracked] = []  # every change within the horizon, oldest first (budgets)
        self._failed: dict[
            tuple[str, str], list[Tracked]
        ] = {}  # (runbook, service) -> failed ones (breakers)
        self._by_incident: dict[int, list[Tracked]] = {}  # by incident ref
        self._by_rule: dict[tuple[str, str], list[Tracked]] = {}
        self._by_id: dict[int, Tracked] = {}
        self._versions: dict[str, int] = {}  # per service: moves on every change the guards could see

    def load(self, changes: Iterable[ChangeBase], refs: dict[int, int]) -> None:
        """Changes from the store (`id` set); `refs` maps incident ids to the core's refs."""
        for c in sorted(changes, key=lambda c: c.created_at):
            change_id = getattr(c, "id", None)
            self.add(
                Tracked(
                    change_id,
                    c.incident_id,
                    refs.get(c.incident_id),
                    c.rule,
                    c.service,
                    ChangeStatus(c.status),
                    c.created_at,
                    c.runbook,
                    c.finished_at if ChangeStatus(c.status) in FAILED else None,
                )
            )

    def version(self, service: str) -> int:
        """Moves whenever what the guards see of `service`'s changes does (incidents and rules alike)."""
        return self._versions.get(service, 0)

    def _moved(self, t: Tracked) -> None:
        self._versions[t.service] = self._versions.get(t.service, 0) + 1

    def add(self, t: Tracked) -> None:
        self._moved(t)
        if t.incident_ref is not None:
            self._by_incident.setdefault(t.incident_ref, []).append(t)
        self._by_rule.setdefault((t.rule, t.service), []).append(t)
        self._recent.append(t)
        if t.finished_at is not None:
            self._failed.setdefault((t.runbook, t.service), []).append(t)
        if t.id is not None:
            self._by_id[t.id] = t

    def bound(self, t: Tracked, change_id: int | None, incident_id: int | None) -> None:
        """The store created the change (`change_id`), or refused it (None: forget it)."""
        self._moved(t)
        if change_id is None:
            self._discard(t)
            return
        t.id, t.incident_id = change_id, incident_id
        self._by_id[change_id] = t

    def get(self, change_id: int) -> Tracked | None:
        return self._by_id.get(change_id)

    def set_status(self, change_id: int, status: ChangeStatus, at: datetime | None = None) -> Tracked | None:
        t = self._by_id.get(change_id)
        if t is not None and t.status is not status:
            t.status = status
            if status in FAILED and t.finished_at is None:
                t.finished_at = at
                self._failed.setdefault((t.runbook, t.service), []).append(t)
            self._moved(t)
        return t

    def failures(self, runbook: str, service: str) -> list[datetime]:
        """When changes running `runbook` on `service` failed, within the horizon."""
        return [t.finished_at for t in self._failed.get((runbook, service), ()) if t.finished_at is not None]

    def made_since(
        self, since: datetime, service: str | None = None, runbook: str | None = None, rule: str | None = None
    ) -> list[datetime]:
        """Creation times of the changes since `since` that count against a budget (all of them, or
        those of one service or one runbook), oldest first."""
        return [
            t.created_at
            for t in self._recent
            if t.created_at > since
            and t.status not in _NO_COOLDOWN
            and (service is None or t.service == service)
            and (runbook is None or t.runbook == runbook)
            and (rule is None or t.rule == rule)
        ]

    def open_change(self, incident_ref: int) -> Tracked | None:
        return next((t for t in self._by_incident.get(incident_ref, ()) if t.open), None)

    def attempts(self, incident_ref: int, rule: str) -> int:
        return sum(
            1
            for t in self._by_incident.get(incident_ref, ())
            if t.rule == rule and t.status not in _NOT_ATTEMPTS
        )

    def last_change_at(self, rule: str, service: str, now: datetime) -> datetime | None:
        """When `rule` last made a change for `service` that counts for its cooldown."""
        recent = self._by_rule.get((rule, service))
        if not recent:
            return None
        counted = [t.created_at for t in recent if t.status not in _NO_COOLDOWN]
        return max(counted, default=None)

    def forget_incident(self, incident_ref: int) -> None:
        """The core no longer holds the incident: its closed changes matter only for cooldowns now."""
        for t in self._by_incident.pop(incident_ref, []):
            if not t.open and t.id is not None:
                self._by_id.pop(t.id, None)

    def prune(self, now: datetime) -> None:
        """Drop changes too old for any cooldown (called on clock ticks, so memory stays bounded)."""
        cutoff = now - self.horizon
        self._recent = [t for t in self._recent if t.created_at >= cutoff or t.open]
        for key in list(self._failed):
            kept = [t for t in self._failed[key] if t.created_at >= cutoff]
            if kept:
                self._failed[key] = kept
            else:
                del self._failed[key]
        for key in list(self._by_rule):
            kept = [t for t in self._by_rule[key] if t.created_at >= cutoff or t.open]
            if kept:
                self._by_rule[key] = kept
            else:
                del self._by_rule[key]

    def _discard(self, t: Tracked) -> None:
        if t.incident_ref is not None and t in self._by_incident.get(t.incident_ref, []):
            self._by_incident[t.incident_ref].remove(t)
        if t in self._by_rule.get((t.rule, t.service), []):
            self._by_rule[(t.rule, t.service)].remove(t)
        if t in self._recent:
            self._recent.remove(t)
        if t in self._failed.get((t.runbook, t.service), []):
            self._failed[(t.runbook, t.service)].remove(t)
