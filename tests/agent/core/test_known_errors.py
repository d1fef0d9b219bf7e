"""Known errors at work, through the real core and a real store: a new incident of a known error's
signature is linked to it when it opens (timeline, notifications, `incidents show`), and a rule naming
`known_error_workaround` runs the known error's workaround runbook as a change of that runbook's type."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from agent.core.domain import ChangeStatus
from agent.core.events import Tick
from agent.core.known_errors import KnownErrors, match_keys
from agent.shell.store import Store
from tests.agent.core.test_engine import Rig, diagnose, queued, rig_for, write_config
from tests.agent.test_cli import aiops, json_out
from tests.support.records import T0, incident_state, link_problem, save_incidents, signal_state

SIGNATURE = "demo-web:DemoHighLatency"  # what the rig's alert opens
CHECK = {"promql": "vector(1)", "deadline": "10s"}


def known_error(store: Store, runbook: str | None = None, workaround: str = "recycle the pool") -> int:
    """A known error for the rig's alert, made as a problem manager makes one: an earlier incident of
    the signature, its candidate promoted, a workaround recorded."""
    save_incidents(store, incident_state(1, at=T0 - timedelta(days=2), signature=SIGNATURE))
    pid = link_problem(store, SIGNATURE, "latency recurring", [1], at=T0 - timedelta(days=2))
    store.known_errors.promote(pid, "carol", "web pool exhaustion", "cli:carol", T0 - timedelta(days=1))
    row = store.known_errors.record(
        pid, "leaky pool", workaround, runbook, "cli:carol", T0 - timedelta(days=1)
    )
    assert row.known_error_id is not None
    return row.known_error_id


def learn(r: Rig) -> None:
    """The leader's housekeeping tick: the core learns the store's known errors."""
    r.apply(Tick(known_errors=tuple(r.store.known_errors.current())))


def workaround_rule(**extra: Any) -> dict[str, Any]:
    return {
        "name": "known-workaround",
        "match": {"service": "demo-web"},
        "runbook": "known_error_workaround",
        "verify": CHECK,
        **extra,
    }


def test_a_new_incident_of_a_known_error_is_linked_and_shows_the_workaround(tmp_path: Path) -> None:
    routes = {"incident_opened": ["hook"]}
    for r in rig_for(write_config(tmp_path, [diagnose()]), routes):
        kid = known_error(r.store, "recycle_workers")
        learn(r)
        r.apply(r.alert())
        [incident] = [i for i in r.store.incidents.list() if i.id != 1]
        assert incident.known_error_id == kid
        kinds = r.kinds(incident.id or 0)
        assert kinds[:2] == ["opened", "known_error"]
        [linked] = [e for e in r.store.incidents.timeline(incident.id or 0) if e.kind == "known_error"]
        assert linked.reason == (
            f"matches known error #{kid} (web pool exhaustion): workaround: recycle the pool; "
            "workaround runbook recycle_workers"
        )
        [(event, payload)] = queued(r.store)
        assert event == "incident_opened"
        assert payload["known_error"] == {
            "id": kid,
            "title": "web pool exhaustion",
            "workaround": "recycle the pool",
            "workaround_runbook": "recycle_workers",
        }
        url = r.config.agent.store.url
        shown = aiops("incidents", "show", str(incident.id), "--store", url)
        assert f"known error #{kid}: web pool exhaustion" in shown.stdout
        assert "workaround: recycle the pool" in shown.stdout
        doc = json_out(aiops("incidents", "show", str(incident.id), "--json", "--store", url))
        assert doc["known_error"]["workaround_runbook"] == "recycle_workers"
        ke = json_out(aiops("known-errors", "show", str(kid), "--json", "--store", url))
        assert [i["id"] for i in ke["incidents"]] == [incident.id]


def test_a_restarted_core_knows_the_known_errors_from_its_working_set(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [diagnose()])):
        kid = known_error(r.store)
        r.core.load(
            r.store.working_set(r.clock.now(), timedelta(minutes=10), timedelta(hours=1), timedelta(days=1))
        )
        r.apply(r.alert())
        assert [i.known_error_id for i in r.store.incidents.list() if i.id != 1] == [kid]


def test_an_incident_of_another_signature_is_not_linked(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [diagnose()])):
        known_error(r.store)
        learn(r)
        r.apply(r.alert(name="DemoErrorBurst"))
        assert [i.known_error_id for i in r.store.incidents.list() if i.id != 1] == [None]


def test_the_workaround_rule_runs_the_known_errors_runbook_as_a_standard_change(tmp_path: Path) -> None:
    rule = workaround_rule(params={"url": "http://127.0.0.1:8000/admin/recycle"})
    for r in rig_for(write_config(tmp_path, [rule, diagnose()], dry_run=False)):
        kid = known_error(r.store, "recycle_workers")
        learn(r)
        r.apply(r.alert())
        [change] = r.changes()
        assert (change.rule, change.runbook, change.change_type) == (
            "known-workaround",
            "recycle_workers",
            "standard",
        )
        assert change.status == ChangeStatus.APPROVED  # catalogued standard: pre-approved
        assert change.params == {"url": "http://127.0.0.1:8000/admin/recycle"}
        assert r.store.incidents.get(change.incident_id).known_error_id == kid


def test_the_workaround_rule_makes_a_normal_change_wait_for_approval(tmp_path: Path) -> None:
    rule = workaround_rule(params={"unit": "demo-web.service"})
    for r in rig_for(write_config(tmp_path, [rule], dry_run=False)):
        known_error(r.store, "restart_systemd_unit", workaround="restart the unit")
        learn(r)
        r.apply(r.alert())
        [change] = r.changes()
        assert (change.runbook, change.status) == ("restart_systemd_unit", ChangeStatus.AWAITING_APPROVAL)
        assert change.params == {"unit": "demo-web.service"}


def test_without_a_known_error_the_workaround_rule_steps_aside(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [workaround_rule(), diagnose()], dry_run=False)):
        r.apply(r.alert())
        [change] = r.changes()
        assert (change.rule, change.runbook) == ("diagnose", "collect_diagnostics")
        [skip] = [e for e in r.store.incidents.timeline(1) if e.kind == "remediation_skipped"]
        assert (
            skip.reason == "rule known-workaround: no workaround runbook: the incident matches no known error"
        )


def test_a_known_error_without_a_runbook_is_linked_but_runs_nothing(tmp_path: Path) -> None:
    for r in rig_for(write_config(tmp_path, [workaround_rule()], dry_run=False)):
        kid = known_error(r.store)
        learn(r)
        r.apply(r.alert())
        assert r.changes() == []
        [incident] = [i for i in r.store.incidents.list() if i.id != 1]
        [skip] = [e for e in r.store.incidents.timeline(incident.id or 0) if e.kind == "remediation_skipped"]
        assert f"known error #{kid} has no workaround runbook" in skip.reason


def test_check_config_accepts_the_workaround_rule(tmp_path: Path) -> None:
    path = write_config(tmp_path, [workaround_rule(params={"unit": "x.service"})])
    result = aiops("check-config", "-c", path)
    assert result.exit_code == 0, result.stdout


def test_from_repeated_incidents_to_a_candidate_a_problem_a_known_error_and_a_linked_incident(
    tmp_path: Path,
) -> None:
    """The problem manager's whole path on a generated history, through the real core, store and CLI:
    the same fault three times in a day raises a candidate; it is promoted and given a workaround; the
    agent learns the known error on its next housekeeping tick, and the fault's next incident opens
    linked to it. An incident before the known error existed stays unlinked."""
    config = write_config(tmp_path, [diagnose()])
    for r in rig_for(config):
        url = r.config.agent.store.url
        for _ in range(3):  # an hour apart: each a new incident (the reopen window is 10 minutes)
            r.apply(r.alert(after=timedelta(hours=1)))
            r.apply(r.alert(status="resolved", after=timedelta(minutes=1)))
            r.apply(Tick(), after=timedelta(minutes=2))  # quiet for the quiet period: resolved
        firsts = [i.id for i in r.store.incidents.list()]
        assert len(firsts) == 3 and all(i.status == "resolved" for i in r.store.incidents.list())
        [cand] = r.store.problems.list()
        assert (cand.kind, cand.status, cand.signature) == ("recurrence", "candidate", SIGNATURE)
        assert sorted(i.id for i in r.store.problems.incidents(cand.id or 0)) == sorted(firsts)

        actor = {"AIOPS_ACTOR": "carol"}
        promoted = aiops("problems", "promote", str(cand.id), "--owner", "carol", "-c", config, env=actor)
        assert promoted.exit_code == 0, promoted.stderr
        known = json_out(
            aiops(
                "problems", "update", str(cand.id), "--root-cause", "leaky pool", "--workaround",
                "recycle the workers", "--workaround-runbook", "recycle_workers", "--json", "-c", config,
                env=actor,
            )
        )  # fmt: skip
        assert known["status"] == "known_error" and known["known_error_id"] is not None
        assert {(a.action, a.actor) for a in r.store.audit.list()} >= {
            ("problem.promote", "cli:carol"),
            ("known_error.create", "cli:carol"),
        }

        learn(r)
        r.apply(r.alert(after=timedelta(hours=1)))
        [new] = [i for i in r.store.incidents.list() if i.id not in firsts]
        assert new.known_error_id == known["known_error_id"]
        assert "known_error" in r.kinds(new.id or 0)
        assert all(i.known_error_id is None for i in r.store.incidents.list() if i.id in firsts)
        shown = aiops("known-errors", "show", str(known["known_error_id"]), "--json", "--store", url)
        assert [i["id"] for i in json_out(shown)["incidents"]] == [new.id]


def test_a_known_error_from_log_incidents_matches_their_template_only(tmp_path: Path) -> None:
    """Every new log template of a service shares one signature: a known error recorded from incidents
    of template 7 lists that template, and an incident of template 8 is not offered its workaround."""
    log = "demo-web:log_new_template"

    def log_incident(n: int, template: str, at: Any) -> Any:
        sig = signal_state(
            f"fp-log-{template}", at=at, name="log_new_template", source="logs", detector="log",
            labels={"source": "web_log", "template_id": template},
        )  # fmt: skip
        return incident_state(n, at=at, signature=log, signals=[sig])

    for r in rig_for(write_config(tmp_path, [diagnose()])):
        save_incidents(r.store, log_incident(1, "7", T0 - timedelta(days=2)))
        pid = link_problem(r.store, log, "new log template recurring", [1], at=T0 - timedelta(days=2))
        r.store.known_errors.promote(pid, "carol", "pool errors", "cli:carol", T0 - timedelta(days=1))
        row = r.store.known_errors.record(pid, "leak", "recycle", None, "cli:carol", T0 - timedelta(days=1))
        [known] = r.store.known_errors.current()
        assert known.signatures == (f"{log}#7",)
        ke = KnownErrors([known])
        assert ke.matching(match_keys(log_incident(2, "7", T0))) is not None
        assert ke.matching(match_keys(log_incident(3, "8", T0))) is None
        assert row.known_error_id == known.id
