"""The incident store on a real SQLite file and a real PostgreSQL database (fixture `store_url`): the
schema and its migrations, the committer that writes the core's decisions, the rules the database
itself enforces, fencing, the inbox and the outbox."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from agent.core.decisions import CancelChange, Decisions, NewChange, Notification
from agent.core.domain import ChangeStatus, IncidentStatus, Severity, fingerprint
from agent.core.events import AlertsReceived, ChangeProgress
from agent.core.incidents import Entry
from agent.core.ledger import Tracked
from agent.core.records import ChangeBase
from agent.errors import InvalidTransition, NotFound, StoreError
from agent.shell.store import Store
from agent.shell.store.engine import SCHEMA_VERSION, make_engine
from agent.shell.store.fence import AlreadyCommitted, Fence, Fenced
from agent.shell.store.tables import ProblemIncident, RunbookEvent, SchemaVersion, SignalRecord
from integrations.alertmanager import ExternalAlert
from tests.support.records import (
    T0,
    add_change,
    change_row,
    commit_link,
    cooccurrence_link,
    incident_state,
    link_problem,
    save_incidents,
    signal_state,
)
from tests.support.schema_v2 import create_v2_store

S = ChangeStatus
MINUTE = timedelta(minutes=1)
ROOT = Path(__file__).resolve().parents[3]
SPEC_TABLES = {
    "signals",
    "incidents",
    "incident_events",
    "changes",
    "runbook_runs",
    "problems",
    "known_errors",
    "audit_log",
}


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def with_store(url: str, use: Callable[[Store], Any]) -> Any:
    s = Store.open(url)
    try:
        return use(s)
    finally:
        s.close()


def schema_versions(url: str) -> list[int]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return list(s.exec(select(SchemaVersion.version).order_by(SchemaVersion.version)).all())
    finally:
        engine.dispose()


def count_rows(store: Store, model: type[SQLModel], *where: Any) -> int:
    with Session(store.engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def commit(store: Store, out: Decisions, fence: Fence | None = None, seq: int = 1) -> Any:
    return store.committer({}, fence).commit(out, seq)


def new_change(inc: Any, rule: str = "recycle-demo-workers", status: S = S.AWAITING_APPROVAL) -> NewChange:
    row = change_row(0, status, rule=rule)
    record = ChangeBase(**row.model_dump(exclude={"id"}))
    return NewChange(inc, record, Tracked(None, None, inc.ref, rule, "demo-web", status, T0), "test")


def held(incident_id: int) -> Any:
    """An incident as the core holds it once the store has it (id set)."""
    st = incident_state(incident_id)
    st.id = incident_id
    return st


def lead(store: Store, holder: str = "agent-a") -> Fence:
    """Take the store's lease the way an agent does, returning the fence of the new epoch."""
    from agent.clock import ManualClock
    from agent.shell.leadership import LeaseLock

    lock = LeaseLock(store.engine, timedelta(seconds=15), ManualClock(T0), identity=holder, exclusive=True)
    fence = lock.try_acquire()
    assert fence is not None
    return fence


# ---------------------------------------------------------------- schema


def test_open_creates_the_schema_and_records_its_version(store_url: str) -> None:
    with_store(store_url, lambda s: None)
    engine = make_engine(store_url)
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names >= SPEC_TABLES | {"schema_version", "leases", "inbox", "outbox", "source_state"}
    assert schema_versions(store_url) == [SCHEMA_VERSION]


def test_opening_again_is_idempotent_and_keeps_data(store_url: str) -> None:
    with_store(store_url, lambda s: save_incidents(s, incident_state(1)))
    titles = with_store(store_url, lambda s: [i.title for i in s.incidents.list()])
    assert titles == [incident_state(1).title]
    assert schema_versions(store_url) == [SCHEMA_VERSION]


def test_a_version_2_store_is_upgraded_in_place(store_url: str) -> None:
    """A store exactly as the previous release created it, with incidents numbered by that agent and two
    open changes for one incident and rule (which the old check-then-insert allowed), upgrades in place:
    its data stays, the newest open change stays open, and the database numbers new incidents after
    the old ones."""
    engine = make_engine(store_url)
    create_v2_store(engine)
    with engine.begin() as conn:
        for i in (1, 2, 7):
            conn.execute(
                text(
                    "INSERT INTO incidents (id, service, signature, title, status, priority, impact, urgency,"
                    " started_at, opened_at, updated_at, ack_due_at, resolve_due_at, ack_breached,"
                    " resolve_breached, escalated, resolution, resolved_by) VALUES (:id, 'demo-web', 'sig',"
                    " 'old', 'open', 'P2', 'high', 'medium', :t, :t, :t, :t, :t, false, false, false, '', '')"
                ),
                {"id": i, "t": T0},
            )
        for created in (T0, T0 + MINUTE):
            conn.execute(
                text(
                    "INSERT INTO changes (incident_id, rule, service, runbook, playbook, change_type, risk,"
                    " status, attempt, params, reason, created_at, decided_by, verify_promql,"
                    " verify_deadline_s, verification, outcome, rollback_playbook) VALUES (1, 'r', 'demo-web',"
                    " 'rb', 'rb.yml', 'normal', 'low', 'awaiting_approval', 1, '{}', '', :t, '', 'up', 60, '',"
                    " '', '')"
                ),
                {"t": created},
            )
        conn.execute(
            text(
                "INSERT INTO signals (incident_id, fingerprint, name, service, source, detector, severity,"
                " labels, first_at, last_at, count, peak_score, last_value, last_score) VALUES (1,"
                " 'separatorjoined', 'HighLatency', 'demo-web', 'alertmanager', 'alertmanager', 'warning',"
                " :labels, :t, :t, 1, 1, 1, 1)"
            ),
            {"labels": json.dumps({"instance": "a\x00b", "job": "web"}), "t": T0},
        )
    engine.dispose()
    assert schema_versions(store_url) == [2]

    store = Store.open(store_url)
    try:
        assert schema_versions(store_url) == list(range(2, SCHEMA_VERSION + 1))
        (sig,) = store.incidents.signals(1)  # its identity is recomputed in the unambiguous encoding
        assert sig.fingerprint == fingerprint("HighLatency", {"instance": "a\x00b", "job": "web"})
        assert store.incidents.get(1).signals_dropped == 0
        assert [i.id for i in store.incidents.list()] == [7, 2, 1]
        older, newer = sorted(store.changes.list(), key=lambda c: c.id or 0)
        assert (older.status, newer.status) == ("cancelled", "awaiting_approval")
        assert "schema upgrade" in older.outcome
        fresh = incident_state(8, at=T0 + MINUTE)
        save_incidents(store, fresh)  # asserts the database gave it id 8: after the agent's own 7
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("incidents")}
        assert "ix_incidents_resolved_at" in indexes
        out = Decisions(at=T0)
        out.changes.append(new_change(held(1), rule="r"))
        assert commit(store, out) is not None and out.changes[0].id is None  # the invariant now holds
    finally:
        store.close()


def test_an_agent_waits_for_another_creating_a_fresh_sqlite_store(tmp_path: Path) -> None:
    """A store file whose first writer still holds it in rollback mode (its schema transaction writes
    the header that turns WAL on): SQLite refuses the switch to WAL at once, without its busy handler,
    so a second agent failed with "database is locked" instead of waiting its turn (seen in CI with
    three agents starting together)."""
    path = tmp_path / "aiops.db"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("BEGIN IMMEDIATE")
    first.execute("CREATE TABLE early (i INTEGER)")
    release = threading.Timer(0.5, lambda: first.execute("COMMIT"))
    release.start()
    try:
        store = Store.open(f"sqlite:///{path}")  # waits for the first writer, then migrates
        store.close()
    finally:
        release.join()
        first.close()


def test_two_agents_creating_the_schema_at_once_both_start(store_url: str) -> None:
    """Migrations take turns under a lock: the second agent finds the work done instead of failing."""
    code = "import sys; from agent.shell.store import Store; Store.open(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, store_url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=60)]]
    assert [rc for rc, _ in results] == [0, 0, 0], results
    assert schema_versions(store_url) == [SCHEMA_VERSION]


def test_a_store_from_a_newer_agent_is_refused(store_url: str) -> None:
    with_store(store_url, lambda s: None)
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION + 1, applied_at=T0))
    engine.dispose()
    with pytest.raises(StoreError, match="newer"):
        Store.open(store_url)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_refused_store_leaves_no_connection_open(store_url: str, postgres: Any) -> None:
    with_store(store_url, lambda s: None)
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION + 1, applied_at=T0))
    engine.dispose()
    with pytest.raises(StoreError):
        Store.open(store_url)
    admin = make_engine(postgres.url("postgres"))
    try:
        with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
            open_connections = conn.execute(query, {"db": store_url.rsplit("/", 1)[1]}).scalar()
    finally:
        admin.dispose()
    assert open_connections == 0


def test_aiops_tables_without_schema_version_are_refused_untouched(store_url: str) -> None:
    engine = make_engine(store_url)
    with engine.begin() as conn:
        SQLModel.metadata.tables["incidents"].create(conn)
    engine.dispose()
    with pytest.raises(StoreError, match="no schema_version"):
        Store.open(store_url)
    engine = make_engine(store_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"incidents"}
    finally:
        engine.dispose()


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()
    raw = sqlite3.connect(path)  # WAL is a property of the file, so any other client sees it too
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 3, 1, 17, 30, 0, 654321, tzinfo=india)
    store.audit.record(at, "agent", "test.tz", "x")
    [entry] = store.audit.list()
    assert entry.at == at
    assert entry.at.tzinfo == UTC
    assert (entry.at.hour, entry.at.minute, entry.at.microsecond) == (12, 0, 654321)
    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT at FROM audit_log")).scalar()
    if store.engine.dialect.name == "sqlite":
        assert str(raw).startswith("2026-03-01 12:00:00.654321")  # stored as UTC, not as local time
    else:
        assert raw == at


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive"):
        store.audit.record(datetime(2026, 3, 1, 12, 0), "agent", "test.naive", "x")
    assert store.audit.list() == []


# ---------------------------------------------------------------- committing decisions


def test_ids_come_from_the_database(store: Store) -> None:
    first, second = incident_state(1), incident_state(2)
    out = Decisions(at=T0)
    for inc in (second, first):  # in the order the core opened them (its refs), whatever the dict order
        out.incident(inc)
    first.id = second.id = None
    commit(store, out)
    assert (first.id, second.id) == (1, 2)
    assert [i.id for i in store.incidents.list()] == [2, 1]


def test_only_what_the_decisions_name_is_written(store: Store) -> None:
    st = incident_state(1, signals=[signal_state("fp-a"), signal_state("fp-b")])
    save_incidents(store, st)
    st.signals["fp-a"].count = 5
    st.signals["fp-a"].last_at = T0 + 3 * MINUTE
    st.signals["fp-b"].count = 99  # changed in memory, but not part of these decisions
    out = Decisions(at=T0 + 4 * MINUTE)
    out.signal(st, st.signals["fp-a"])
    out.entry(st.transition(IncidentStatus.ACKNOWLEDGED, T0 + 4 * MINUTE, "cli:bob", "on it"))
    out.incident(st)
    commit(store, out)

    by_fp = {s.fingerprint: s for s in store.incidents.signals(1)}
    assert (by_fp["fp-a"].count, by_fp["fp-a"].last_at, by_fp["fp-b"].count) == (5, T0 + 3 * MINUTE, 1)
    row = store.incidents.get(1)
    assert (row.status, row.acknowledged_at) == ("acknowledged", T0 + 4 * MINUTE)
    assert [e.kind for e in store.incidents.timeline(1)] == ["opened", "acknowledged"]
    assert count_rows(store, SignalRecord, SignalRecord.incident_id == 1) == 2


def test_a_commit_is_all_or_nothing_and_can_be_retried(store: Store) -> None:
    st = incident_state(1)
    out = Decisions(at=T0)
    out.incident(st)
    out.entry(Entry(st, T0, "opened", "agent", "opened"))
    out.entry(Entry(404, T0, "note", "agent", "no such incident"))  # violates a foreign key
    st.id = None
    with pytest.raises(IntegrityError):
        commit(store, out)
    assert store.incidents.list() == [] and st.id is None  # nothing written, the id not kept
    out.timeline.pop()
    commit(store, out)
    assert (
        st.id is not None
    )  # (PostgreSQL may skip the id the failed attempt took: sequences never roll back)
    assert [i.id for i in store.incidents.list()] == [st.id]
    assert [e.kind for e in store.incidents.timeline(st.id)] == ["opened"]


def test_texts_naming_new_records_are_rendered_with_their_ids(store: Store) -> None:
    parent, child = incident_state(1), incident_state(2, service="demo-api")
    parent.id = child.id = None
    child.parent_ref = parent.ref
    change = new_change(parent)
    out = Decisions(at=T0)
    out.incident(parent)
    out.incident(child)
    out.changes.append(change)
    out.entry(Entry(child, T0, "correlated", "agent", lambda: f"likely part of #{parent.id}"))
    out.entry(
        Entry(
            parent, T0, "change_created", "agent", lambda: f"change #{change.id}", {"id": lambda: change.id}
        )
    )
    commit(store, out)
    assert store.incidents.get(2).parent_id == 1
    assert [e.reason for e in store.incidents.timeline(2)] == ["likely part of #1"]
    [created] = store.incidents.timeline(1)
    assert (created.reason, created.data) == (f"change #{change.id}", {"id": change.id})


def test_one_open_change_per_incident_and_rule(store: Store) -> None:
    save_incidents(store, incident_state(1))
    inc = held(1)
    out = Decisions(at=T0)
    out.changes += [
        new_change(inc),
        new_change(inc),
        new_change(inc, rule="other"),
        new_change(inc, status=S.DRY_RUN),
    ]
    commit(store, out)
    assert [c.id is not None for c in out.changes] == [True, False, True, True]
    with pytest.raises(IntegrityError):  # whoever writes it, not only the committer
        add_change(store, 1, S.RUNNING)
    store.changes.transition(out.changes[0].id or 0, [S.AWAITING_APPROVAL], S.REJECTED)
    assert add_change(store, 1, S.APPROVED)  # the first is closed: a new one may open


def test_withdrawing_a_change_only_if_it_still_waits(store: Store) -> None:
    st = incident_state(1)
    save_incidents(store, st)
    waiting, approved = add_change(store, 1), add_change(store, 1, S.APPROVED, rule="other")
    out = Decisions(at=T0)
    for cid in (waiting, approved):
        entry = Entry(st, T0, "change_cancelled", "agent", f"change #{cid} withdrawn")
        out.cancels.append(CancelChange(cid, (S.AWAITING_APPROVAL,), "withdrawn", entry))
    result = commit(store, out)
    assert result.cancelled == {waiting}
    assert (store.changes.get(waiting).status, store.changes.get(approved).status) == (
        "cancelled",
        "approved",
    )
    assert [e.reason for e in store.incidents.timeline(1) if e.kind == "change_cancelled"] == [
        f"change #{waiting} withdrawn"
    ]


def test_one_problem_per_signature(store: Store) -> None:
    save_incidents(store, *(incident_state(i, at=T0 + i * MINUTE) for i in (1, 2, 3)))
    first = link_problem(store, "demo-web:latency", "recurring", [1, 2])
    again = link_problem(store, "demo-web:latency", "recurring", [2, 3], at=T0 + MINUTE)
    assert first == again
    problem = store.problems.get(first)
    assert (problem.occurrences, problem.first_seen, problem.last_seen) == (3, T0, T0 + MINUTE)
    assert [i.id for i in store.problems.incidents(first)] == [1, 2, 3]
    assert count_rows(store, ProblemIncident) == 3
    assert store.incidents.get(3).problem_id == first
    assert [e.reason for e in store.incidents.timeline(3) if e.kind == "problem"] == [
        f"linked to problem candidate #{first}: recurring"
    ]
    with Session(store.engine) as s, pytest.raises(IntegrityError):
        s.execute(
            text(
                "INSERT INTO problems (signature, kind, service, title, status, occurrences, first_seen,"
                " last_seen, created_at, updated_at, root_cause, workaround) VALUES ('demo-web:latency',"
                " 'recurrence', 'demo-web', 't', 'candidate', 0, :t, :t, :t, :t, '', '')"
            ),
            {"t": T0},
        )
        s.commit()


def test_a_cooccurrence_candidate_is_written_once_and_kept_up_to_date(store: Store) -> None:
    """Raised again, the candidate's numbers move and its new incidents are linked; the incidents keep
    their own (recurrence) problem."""
    save_incidents(store, *(incident_state(i, at=T0 + i * MINUTE) for i in (1, 2, 3, 4, 5, 6)))
    recurring = link_problem(store, "demo-web:latency", "recurring", [2, 4])
    first = commit_link(store, cooccurrence_link((1, 2, 3, 4), 2, 1e-3))
    assert commit_link(store, cooccurrence_link((1, 2, 3, 4, 5, 6), 3, 1e-5, T0 + MINUTE)) == first
    problem = store.problems.get(first)
    assert (problem.kind, problem.services, problem.signatures) == (
        "cooccurrence",
        ["db", "demo-web"],
        ["db:Down", "demo-web:demo_latency_p99"],
    )
    assert (problem.occurrences, problem.expected, problem.lift, problem.p_value) == (3, 0.5, 6.0, 1e-5)
    assert (problem.first_seen, problem.last_seen) == (T0, T0 + MINUTE)
    assert problem.title.endswith("(3x)")
    assert [i.id for i in store.problems.incidents(first)] == [1, 2, 3, 4, 5, 6]
    assert [store.incidents.get(i).problem_id for i in (1, 2, 4)] == [None, recurring, recurring]
    assert [p.kind for p in store.problems.list()] == ["cooccurrence", "recurrence"]
    plain = store.problems.get(recurring)
    assert (plain.services, plain.signatures, plain.p_value) == (["demo-web"], ["demo-web:latency"], None)


def test_a_version_5_problem_table_gains_the_cooccurrence_columns(store_url: str) -> None:
    """Migration 6 on a store with a recurrence candidate: its services and signatures are its own."""
    engine = make_engine(store_url)
    create_v2_store(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO problems (signature, kind, service, title, status, occurrences, first_seen,"
                " last_seen, created_at, updated_at, root_cause, workaround) VALUES ('demo-web:latency',"
                " 'recurrence', 'demo-web', 'old', 'candidate', 4, :t, :t, :t, :t, '', '')"
            ),
            {"t": T0},
        )
    engine.dispose()
    store = Store.open(store_url)
    try:
        assert 6 in schema_versions(store_url)
        (old,) = store.problems.list()
        assert (old.services, old.signatures, old.occurrences, old.lift) == (
            ["demo-web"],
            ["demo-web:latency"],
            4,
            None,
        )
        save_incidents(store, incident_state(1), incident_state(2, at=T0 + MINUTE))
        commit_link(store, cooccurrence_link((1, 2), 3, 1e-4, T0 + MINUTE))
        assert sorted(p.kind for p in store.problems.list()) == ["cooccurrence", "recurrence"]
    finally:
        store.close()


def test_working_set_holds_active_and_recently_resolved_incidents(store: Store) -> None:
    error_signal = signal_state(
        "fp-errors",
        at=T0 + MINUTE,
        name="demo_error_ratio",
        severity=Severity.CRITICAL,
        labels={"instance": "10.0.0.2:8000"},
        last_expected=None,
        cleared_at=T0 + 2 * MINUTE,
        count=7,
        evidence={"template": "disk <*> failing"},
    )
    active = incident_state(1, signals=[signal_state("fp-latency"), error_signal])
    acked = incident_state(
        2, status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=T0 + MINUTE, ack_breached=True
    )
    remediating = incident_state(
        3, status=IncidentStatus.REMEDIATING, remediation_started_at=T0 + MINUTE, parent_id=1
    )
    recent = incident_state(4, T0 - timedelta(hours=1), IncidentStatus.RESOLVED)
    old = incident_state(5, T0 - timedelta(days=2), IncidentStatus.RESOLVED)
    closed = incident_state(6, T0 - timedelta(minutes=10), IncidentStatus.CLOSED)
    save_incidents(store, active, acked, remediating, recent, old, closed)
    for cid in (
        add_change(store, 1, at=T0 - timedelta(days=3)),
        add_change(store, 5, S.FAILED, at=T0 - MINUTE),
    ):
        assert cid

    ws = store.working_set(T0, timedelta(hours=2), timedelta(minutes=15), timedelta(hours=24))

    loaded = {st.id: st for st in ws.incidents}
    assert sorted(loaded) == [1, 2, 3, 4]
    fields = ("status", "acknowledged_at", "ack_breached", "parent_id", "resolved_at")
    for original in (active, acked, remediating, recent):
        assert original.id is not None
        assert [getattr(loaded[original.id], f) for f in fields] == [getattr(original, f) for f in fields]
    errors = loaded[1].signals["fp-errors"]
    assert (errors.cleared_at, errors.count, errors.evidence) == (
        T0 + 2 * MINUTE,
        7,
        {"template": "disk <*> failing"},
    )
    # guards need the open change of an active incident, and the recent one of an old incident
    assert sorted((c.incident_id, c.status) for c in ws.changes) == [(1, "awaiting_approval"), (5, "failed")]
    assert sorted(o.id for o in ws.openings) == [1, 2, 3, 4, 6]


def test_get_list_signals_and_timeline(store: Store) -> None:
    first = incident_state(
        1, signals=[signal_state("fp-b", at=T0 + MINUTE, name="later"), signal_state("fp-a", name="earlier")]
    )
    second = incident_state(2, at=T0 + MINUTE, status=IncidentStatus.RESOLVED)
    third = incident_state(3, at=T0 + 2 * MINUTE)
    save_incidents(store, first, second, third)

    row = store.incidents.get(1)
    assert (row.title, row.status, row.priority, row.impact) == (first.title, "open", "P2", "high")
    assert row.status is IncidentStatus.OPEN  # vocabularies come back as their enums
    assert row.opened_at == T0 and row.opened_at.tzinfo == UTC
    assert [i.id for i in store.incidents.list()] == [3, 2, 1]
    assert [i.id for i in store.incidents.list(status="resolved")] == [2]
    assert [i.id for i in store.incidents.list(limit=1, offset=1)] == [2]
    signals = store.incidents.signals(1)
    assert [s.name for s in signals] == ["earlier", "later"]
    assert signals[0].labels == {"instance": "10.0.0.1:8000", "job": "demo"}
    assert [(e.kind, e.actor) for e in store.incidents.timeline(1)] == [("opened", "agent")]
    assert store.incidents.count_active_by_priority() == {"P2": 2}
    with pytest.raises(NotFound):
        store.incidents.get(99)


# ---------------------------------------------------------------- fencing


def test_a_stale_leaders_writes_are_refused(store: Store) -> None:
    old = lead(store, "agent-a")
    save_incidents(store, incident_state(1))
    new = lead(store, "agent-b")  # b takes the lease: a new epoch
    assert new.epoch == old.epoch + 1

    late = incident_state(2)
    out = Decisions(at=T0)
    out.incident(late)
    late.id = None
    with pytest.raises(Fenced):
        commit(store, out, fence=old)
    assert [i.id for i in store.incidents.list()] == [1] and late.id is None
    cid = add_change(store, 1, S.APPROVED)
    with pytest.raises(Fenced):
        store.changes.claim(cid, old, T0, "x.yml", lambda run: _progress(cid, run))
    assert store.changes.get(cid).status == "approved"
    commit(store, out, fence=new)
    assert late.id == 2


def test_a_commit_that_already_went_through_is_recognised(store: Store) -> None:
    fence = lead(store)
    out = Decisions(at=T0)
    st = incident_state(1)
    out.incident(st)
    st.id = None
    commit(store, out, fence=fence, seq=1)
    twice = Decisions(at=T0)
    twice.incident(incident_state(2))
    with pytest.raises(AlreadyCommitted):  # the same commit, retried after an unclear failure
        commit(store, twice, fence=fence, seq=1)
    assert [i.id for i in store.incidents.list()] == [1]


def _progress(change_id: int, run_id: int) -> ChangeProgress:
    return ChangeProgress(change_id, 1, "remediation_started", T0, f"run #{run_id}", S.RUNNING, "started")


def test_exactly_one_executor_claims_an_approved_change(store: Store) -> None:
    workers, rounds = 8, 3
    fence = lead(store)
    save_incidents(store, incident_state(1))
    for _ in range(rounds):
        cid = add_change(store, 1, S.APPROVED)
        barrier = threading.Barrier(workers)

        def claim(i: int, cid: int = cid, barrier: threading.Barrier = barrier) -> int | None:
            barrier.wait(timeout=10)
            return store.changes.claim(
                cid, fence, T0 + timedelta(seconds=i), f"w{i}.yml", partial(_progress, cid)
            )

        with ThreadPoolExecutor(workers) as pool:
            runs = list(pool.map(claim, range(workers)))

        won = [r for r in runs if r is not None]
        assert len(won) == 1
        row = store.changes.get(cid)
        assert (row.status, row.epoch) == ("running", fence.epoch)
        [run] = store.runs.for_change(cid)
        assert run.id == won[0] and run.playbook == f"w{runs.index(won[0])}.yml"
        store.changes.transition(cid, [S.RUNNING], S.SUCCEEDED, fence=fence)
    assert sum(1 for r in store.inbox.pending() if r.kind == "change_progress") == rounds


def test_concurrent_decisions_have_one_winner(store: Store) -> None:
    workers = 6
    save_incidents(store, incident_state(1))
    cid = add_change(store, 1)
    barrier = threading.Barrier(workers)

    def decide(i: int) -> str:
        barrier.wait(timeout=10)
        try:
            store.changes.decide(cid, approve=i % 2 == 0, actor=f"user-{i}", at=T0)
        except InvalidTransition:
            return "refused"
        return f"user-{i}"

    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(decide, range(workers)))

    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1
    assert store.changes.get(cid).decided_by == winners[0]
    assert [r.kind for r in store.inbox.pending()] == ["change_decided"]  # the leader hears of it once


def test_decide_approves_or_rejects_only_changes_awaiting_approval(store: Store) -> None:
    save_incidents(store, incident_state(1))
    approved = store.changes.decide(add_change(store, 1), True, "cli:alice", T0 + MINUTE, note="go")
    assert (approved.status, approved.decided_by, approved.decided_at, approved.reason) == (
        "approved",
        "cli:alice",
        T0 + MINUTE,
        "latency above expected",  # the agent's reason stays; the note goes to the timeline and audit
    )
    rejected = store.changes.decide(add_change(store, 1, rule="second"), False, "api:bob", T0)
    assert (rejected.status, rejected.decided_by) == ("rejected", "api:bob")
    for status in [s for s in S if s is not S.AWAITING_APPROVAL]:
        cid = add_change(store, 1, status, rule=f"rule-{status}")
        for approve in (True, False):
            with pytest.raises(InvalidTransition, match=status.value):
                store.changes.decide(cid, approve, "cli:mallory", T0)
        row = store.changes.get(cid)
        assert (row.status, row.decided_by, row.decided_at) == (status.value, "", None)
    with pytest.raises(NotFound):
        store.changes.decide(999, True, "cli:alice", T0)


def test_changes_list_and_get(store: Store) -> None:
    save_incidents(store, incident_state(1), incident_state(2))
    c1 = add_change(store, 1)
    c2 = add_change(store, 1, S.DRY_RUN, at=T0 + MINUTE)
    c3 = add_change(store, 2, at=T0 + 2 * MINUTE)
    assert [c.id for c in store.changes.list()] == [c3, c2, c1]
    assert [c.id for c in store.changes.list(status="awaiting_approval")] == [c3, c1]
    assert [c.id for c in store.changes.list(incident_id=1)] == [c2, c1]
    got = store.changes.get(c2)
    assert (got.status, got.created_at, got.params) == (
        "dry_run",
        T0 + MINUTE,
        {"url": "http://10.0.0.1:8000/admin/recycle"},
    )
    assert [c.id for c in store.changes.with_status(S.AWAITING_APPROVAL, S.DRY_RUN)] == [c1, c2, c3]
    assert store.changes.count_by_status() == {"awaiting_approval": 2, "dry_run": 1}
    with pytest.raises(NotFound):
        store.changes.get(999)


def test_runs_record_events_outcome_and_interruption(store: Store) -> None:
    fence = lead(store)
    save_incidents(store, incident_state(1))
    cid = add_change(store, 1, S.RUNNING)
    done = store.runs.start(cid, "remediation", "recycle_workers.yml", T0, fence)
    for seq, task in [(2, "recycle"), (1, "Gathering Facts"), (3, "verify")]:
        store.runs.add_event(
            RunbookEvent(run_id=done, seq=seq, kind="runner_on_ok", task=task, host="localhost", at=T0), fence
        )
    assert [(e.seq, e.task) for e in store.runs.events(done)] == [
        (1, "Gathering Facts"),
        (2, "recycle"),
        (3, "verify"),
    ]
    store.runs.finish(done, "successful", 0, T0 + timedelta(seconds=12.5), "PLAY RECAP ok=3", [], fence)
    hung = store.runs.start(cid, "remediation", "recycle_workers.yml", T0 + 3 * MINUTE, fence)

    progress = ChangeProgress(cid, 1, "", T0 + 4 * MINUTE, "", S.FAILED, "failed", "lost")
    assert store.changes.abandon(cid, fence, T0 + 4 * MINUTE, "interrupted: lost", progress) is True
    assert store.changes.abandon(cid, fence, T0 + 5 * MINUTE, "interrupted: lost", progress) is False
    runs = {r.id: r for r in store.runs.for_change(cid)}
    assert (runs[done].status, runs[done].rc, runs[done].duration_s) == ("successful", 0, 12.5)
    assert (runs[hung].status, runs[hung].duration_s) == ("interrupted", 60.0)
    change = store.changes.get(cid)
    assert (change.status, change.outcome) == ("failed", "interrupted: lost")
    with pytest.raises(NotFound):
        store.runs.finish(999, "failed", 1, T0, "", [])


# ---------------------------------------------------------------- inbox, outbox, source state


def test_inbox_items_are_kept_until_a_commit_consumes_them(store: Store) -> None:
    alert = ExternalAlert("DemoDown", "firing", {"alertname": "DemoDown", "x": "\u00e9"}, {}, T0, None, "")
    first = store.inbox.put(AlertsReceived([alert], "api:am"), T0)
    second = store.inbox.put(AlertsReceived([alert], "api:am"), T0)
    assert [r.id for r in store.inbox.pending()] == [first, second]
    assert store.inbox.contains(first)
    out = Decisions(at=T0)
    out.inbox.append(first)
    commit(store, out)
    assert [r.id for r in store.inbox.pending()] == [second] and not store.inbox.contains(first)


def queue(store: Store, at: datetime, *notes: tuple[str, str, int]) -> None:
    """Queue (sink, event, incident id) notifications, as a commit of the core's decisions does."""
    for sink, event, incident in notes:
        out = Decisions(at=at)
        out.notifications.append(Notification(event, lambda incident=incident: {"incident_id": incident}))
        store.committer({event: [sink]}, None).commit(out, 0)


def test_the_outbox_keeps_each_sinks_order_and_knows_what_it_told(store: Store) -> None:
    queue(store, T0, ("pager", "escalation", 1), ("chat", "escalation", 1), ("pager", "incident_resolved", 1))
    queue(store, T0 + MINUTE, ("pager", "incident_opened", 2), ("chat", "incident_resolved", 3))
    first, *_ = store.outbox.due(T0)
    store.outbox.failed(first.id or 0, "HTTP 503", T0 + 2 * MINUTE, None)

    due = store.outbox.due(T0 + MINUTE)
    assert [(d.sink, d.event) for d in due] == [("chat", "escalation"), ("chat", "incident_resolved")]
    assert len(store.outbox.due(T0 + 2 * MINUTE)) == 5  # the pager's retry is due: all of it goes, in order
    openings = ("escalation", "incident_opened")
    assert store.outbox.told("pager", openings, T0) == {1, 2}
    assert store.outbox.told("chat", openings, T0) == {1}  # a resolve tells nothing new
    assert store.outbox.told("chat", openings, T0 + MINUTE) == set()


def test_source_state_is_written_with_decisions(store: Store) -> None:
    out = Decisions(at=T0)
    out.state["logs:web:position"] = {"files": [{"inode": 1, "offset": 42}]}
    commit(store, out)
    out.state["logs:web:position"] = {"files": [{"inode": 1, "offset": 99}]}
    commit(store, out)
    assert store.sources.all() == {"logs:web:position": {"files": [{"inode": 1, "offset": 99}]}}


def test_audit_log_lists_newest_first(store: Store) -> None:
    store.audit.record(T0, "agent", "change.create", "change:1", {"rule": "r"})
    store.audit.record(T0 + MINUTE, "cli:alice", "change.approve", "change:1", {"note": "ok"})
    entries = store.audit.list()
    assert [(e.actor, e.action, e.details) for e in entries] == [
        ("cli:alice", "change.approve", {"note": "ok"}),
        ("agent", "change.create", {"rule": "r"}),
    ]


# ---------------------------------------------------------------- secrets


def test_store_errors_never_show_the_password(postgres: Any) -> None:
    url = f"postgresql+psycopg2://aiops:Sup3rS3cretPw@127.0.0.1:{postgres.port}/no_such_database"
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    assert "Sup3rS3cretPw" not in str(caught.value)
    assert "no_such_database" in str(caught.value)


def test_unusable_store_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot use store URL") as caught:
        Store.open("nosuchdialect://user:pw1234567@host/db")
    assert "pw1234567" not in str(caught.value)
