"""Changes beyond what rules plan: emergency changes for P1 incidents and their retrospective review, and
retries and rollbacks a person asks for (through the store, as the CLI and API do)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.core.domain import ChangeKind, ChangeStatus, Review
from agent.core.envelope import Switch
from agent.core.events import Tick
from agent.errors import InvalidTransition
from tests.agent.core.test_engine import ROOT, Rig, diagnose, rig_for, write_config
from tests.agent.core.test_envelope import housekeeping


def catalog(directory: Path, change_type: str = "standard", rollback: bool = True) -> Path:
    """The shipped catalog, with collect_diagnostics of `change_type` and (optionally) a rollback."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "runbooks" / "catalog.yaml").read_text())
    for spec in doc["runbooks"].values():
        spec["playbook"] = str(ROOT / "runbooks" / spec["playbook"])
    diag = doc["runbooks"]["collect_diagnostics"]
    diag["change_type"] = change_type
    if rollback:
        diag["rollback"] = str(ROOT / "runbooks" / "collect_diagnostics.yml")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def live(tmp_path: Path, **catalog_kw: Any) -> Any:
    cat = catalog(tmp_path / "cat", **catalog_kw)
    return rig_for(
        write_config(tmp_path / "c", [diagnose(cooldown="1m")], dry_run=False, catalog_file=str(cat))
    )


def request(r: Rig, origin: int, kind: ChangeKind, note: str = "") -> tuple[Any, str]:
    """What `aiops changes retry|rollback` does, with the inline core applying the inbox at once."""
    item = r.store.changes.request(origin, kind, "cli:alice", r.clock.now(), note)
    r.runtime.wake()
    assert not r.store.inbox.contains(item)
    return _outcome(r, origin)


def _outcome(r: Rig, origin: int) -> tuple[Any, str]:
    made = r.store.changes.made_from(origin, r.clock.now())
    refused = [e.reason for e in r.store.incidents.timeline(1) if e.kind == "change_request_refused"]
    return made, refused[-1] if refused else ""


# ---------------------------------------------------------------- emergency changes


def test_an_emergency_change_runs_at_once_for_a_p1_and_awaits_review(tmp_path: Path) -> None:
    for r in live(tmp_path, change_type="emergency"):
        r.apply(r.alert())  # tier 1, critical: P1
        [change] = r.changes()
        assert (change.status, change.change_type, change.review) == (
            ChangeStatus.APPROVED,
            "emergency",
            Review.PENDING,
        )
        assert "retrospective review due" in change.decided_by
        r.finish(change.id, ChangeStatus.SUCCEEDED)
        reviewed = r.store.changes.decide(
            change.id, True, "cli:bob", r.clock.now(), "justified: checkout down"
        )
        assert (reviewed.review, reviewed.reviewed_by, reviewed.review_note) == (
            Review.APPROVED,
            "cli:bob",
            "justified: checkout down",
        )
        assert reviewed.status == ChangeStatus.SUCCEEDED  # the review changes nothing that ran
        assert ("cli:bob", "change.review.approved") in [(a.actor, a.action) for a in r.store.audit.list()]
        with pytest.raises(InvalidTransition, match="only changes awaiting approval"):
            r.store.changes.decide(change.id, False, "cli:carol", r.clock.now())


def test_an_emergency_runbook_waits_for_approval_below_p1(tmp_path: Path) -> None:
    for r in live(tmp_path, change_type="emergency"):
        r.apply(r.alert(severity="warning"))  # tier 1, warning: P2
        [change] = r.changes()
        assert (change.status, change.review) == (ChangeStatus.AWAITING_APPROVAL, Review.NONE)


def test_an_approval_keeps_the_reason_and_adds_the_note(tmp_path: Path) -> None:
    for r in live(tmp_path, change_type="normal"):
        r.apply(r.alert())
        [change] = r.changes()
        approved = r.store.changes.decide(change.id, True, "cli:bob", r.clock.now(), "ticket CHG-7")
        assert approved.reason == change.reason and approved.reason.startswith("rule diagnose matched")
        assert approved.decision_note == "ticket CHG-7"


# ---------------------------------------------------------------- retry and rollback


def test_a_retry_is_a_new_linked_change_approved_by_whoever_asked(tmp_path: Path) -> None:
    for r in live(tmp_path):
        r.apply(r.alert())
        [first] = r.changes()
        r.finish(first.id)  # failed
        made, refused = request(r, first.id, ChangeKind.RETRY, "network blip, try again")
        assert refused == "" and made is not None
        assert (made.kind, made.origin_id, made.attempt, made.status) == (
            ChangeKind.RETRY,
            first.id,
            2,
            ChangeStatus.APPROVED,
        )
        assert (made.decided_by, made.decision_note, made.playbook, made.params) == (
            "cli:alice",
            "network blip, try again",
            first.playbook,
            first.params,
        )
        assert ("cli:alice", "change.retry", f"change:{made.id}") in [
            (a.actor, a.action, a.target) for a in r.store.audit.list()
        ]
        _, refused = request(r, first.id, ChangeKind.RETRY)
        assert (
            refused
            == f"retry of change #{first.id} refused: change #{made.id} is still open for this incident"
        )
        [audit] = [
            a for a in r.store.audit.list() if a.target == f"change:{first.id}" and "refused" in a.details
        ]
        assert (audit.actor, audit.action) == ("cli:alice", "change.retry")
        assert audit.details["refused"] == f"change #{made.id} is still open for this incident"


def test_a_rollback_runs_the_rollback_playbook_without_verifying(tmp_path: Path) -> None:
    for r in live(tmp_path):
        r.apply(r.alert())
        [first] = r.changes()
        r.finish(first.id, ChangeStatus.SUCCEEDED)
        made, _ = request(r, first.id, ChangeKind.ROLLBACK)
        assert made is not None
        assert (made.kind, made.playbook, made.rollback_playbook, made.verify_promql) == (
            ChangeKind.ROLLBACK,
            first.rollback_playbook,
            "",
            "",
        )
        with pytest.raises(InvalidTransition, match="wait until it has finished"):
            r.store.changes.request(made.id, ChangeKind.RETRY, "cli:alice", r.clock.now())


def test_what_cannot_be_retried_or_rolled_back_is_refused_with_why(tmp_path: Path) -> None:
    for r in live(tmp_path, rollback=False):
        r.apply(r.alert())
        [first] = r.changes()
        with pytest.raises(InvalidTransition, match="wait until it has finished"):
            r.store.changes.request(first.id, ChangeKind.RETRY, "cli:alice", r.clock.now())
        r.finish(first.id)
        with pytest.raises(InvalidTransition, match="has no rollback playbook"):
            r.store.changes.request(first.id, ChangeKind.ROLLBACK, "cli:alice", r.clock.now())
        r.apply(r.alert(status="resolved", after=timedelta(seconds=5)))
        r.apply(r.alert(status="resolved", after=timedelta(minutes=5)))  # quiet period over
        r.apply(Tick())
        assert r.store.incidents.get(1).status == "resolved"
        made, refused = request(r, first.id, ChangeKind.RETRY)
        assert (
            made is None
            and refused == f"retry of change #{first.id} refused: incident #1 is no longer active"
        )


def test_a_paused_agent_refuses_a_retry(tmp_path: Path) -> None:
    for r in live(tmp_path):
        r.apply(r.alert())
        [first] = r.changes()
        r.finish(first.id)
        r.store.switches.add(Switch("pause", None, None, "freeze", "cli:bob", r.clock.now()))
        housekeeping(r)
        made, refused = request(r, first.id, ChangeKind.RETRY)
        assert made is None and "automation is paused by cli:bob (freeze)" in refused
