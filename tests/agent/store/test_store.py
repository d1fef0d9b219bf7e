"""The incident store on a real SQLite file and a real PostgreSQL database (fixture `store_url`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from agent.config.models import ProblemConfig
from agent.domain import ChangeStatus, IncidentStatus, Severity, TimelineEntry
from agent.errors import InvalidTransition, NotFound, StoreError
from agent.problems import check_recurrence
from agent.store import Store
from agent.store.engine import SCHEMA_VERSION, make_engine, redact_db_url
from agent.store.tables import ProblemIncident, RunbookEvent, SchemaVersion, SignalRecord
from tests.support.records import T0, add_change, incident_state, save_incidents, signal_state

S = ChangeStatus
MINUTE = timedelta(minutes=1)
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


# ---------------------------------------------------------------- schema


def test_open_creates_the_schema_and_records_its_version(store_url: str) -> None:
    with_store(store_url, lambda s: None)
    engine = make_engine(store_url)
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names >= SPEC_TABLES | {"schema_version"}
    assert schema_versions(store_url) == [SCHEMA_VERSION]


def test_opening_again_is_idempotent_and_keeps_data(store_url: str) -> None:
    with_store(store_url, lambda s: save_incidents(s, incident_state(1)))
    titles = with_store(store_url, lambda s: [i.title for i in s.incidents.list()])
    assert titles == [incident_state(1).title]
    assert schema_versions(store_url) == [SCHEMA_VERSION]


def test_a_version_1_store_is_migrated_forward_keeping_its_data(store_url: str) -> None:
    """A store written by schema v1 (no signals.evidence) is brought to the current version in place."""
    with_store(store_url, lambda s: save_incidents(s, incident_state(1, signals=[signal_state("fp-a")])))
    engine = make_engine(store_url)
    with engine.begin() as conn:  # turn it back into what a v1 agent wrote
        conn.execute(text("ALTER TABLE signals DROP COLUMN evidence"))
        conn.execute(text("UPDATE schema_version SET version = 1"))  # a fresh store records only its version
    engine.dispose()
    assert schema_versions(store_url) == [1]

    def reopen(s: Store) -> tuple[list[str], Any]:
        columns = [c["name"] for c in inspect(s.engine).get_columns("signals")]
        return columns, s.incidents.load_working_set(T0 - MINUTE)

    columns, loaded = with_store(store_url, reopen)
    assert "evidence" in columns
    assert schema_versions(store_url) == list(range(1, SCHEMA_VERSION + 1))
    assert [i.id for i in loaded] == [1] and loaded[0].signals["fp-a"].details == {}


def test_signal_evidence_round_trips(store: Store) -> None:
    st = incident_state(1, signals=[signal_state("fp-log")])
    st.signals["fp-log"].details = {
        "template": "disk <*> failing",
        "samples": ["disk sda failing"],
        "count": 3,
    }
    save_incidents(store, st)
    (row,) = store.incidents.signals(1)
    assert row.evidence == {"template": "disk <*> failing", "samples": ["disk sda failing"], "count": 3}
    assert store.incidents.load_working_set(T0 - MINUTE)[0].signals["fp-log"].details["count"] == 3


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
    SQLModel.metadata.tables["incidents"].create(engine)
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
    # WAL is a property of the file, so any other client sees it too.
    raw = sqlite3.connect(path)
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


# ---------------------------------------------------------------- incidents


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

    loaded = {st.id: st for st in store.incidents.load_working_set(resolved_since=T0 - timedelta(hours=2))}

    assert loaded == {1: active, 2: acked, 3: remediating, 4: recent}
    assert loaded[1].signals["fp-errors"].cleared_at == T0 + 2 * MINUTE
    assert store.incidents.max_id() == 6


def test_get_list_signals_and_timeline(store: Store) -> None:
    first = incident_state(
        1, signals=[signal_state("fp-b", at=T0 + MINUTE, name="later"), signal_state("fp-a", name="earlier")]
    )
    second = incident_state(2, at=T0 + MINUTE, status=IncidentStatus.RESOLVED)
    third = incident_state(3, at=T0 + 2 * MINUTE)
    save_incidents(store, first, second, third)
    store.incidents.add_entries(
        [TimelineEntry(1, T0 + 3 * MINUTE, "acknowledged", "cli:alice", "looking", {"from": "open"})]
    )

    row = store.incidents.get(1)
    assert (row.title, row.status, row.priority, row.impact) == (first.title, "open", "P2", "high")
    assert row.opened_at == T0 and row.opened_at.tzinfo == UTC
    assert [i.id for i in store.incidents.list()] == [3, 2, 1]
    assert [i.id for i in store.incidents.list(status="resolved")] == [2]
    assert [i.id for i in store.incidents.list(limit=1, offset=1)] == [2]

    signals = store.incidents.signals(1)
    assert [s.name for s in signals] == ["earlier", "later"]
    assert signals[0].labels == {"instance": "10.0.0.1:8000", "job": "demo"}
    assert signals[0].severity == "warning"

    timeline = store.incidents.timeline(1)
    assert [(e.kind, e.actor) for e in timeline] == [("opened", "agent"), ("acknowledged", "cli:alice")]
    assert timeline[1].data == {"from": "open"}
    assert timeline[1].at == T0 + 3 * MINUTE

    with pytest.raises(NotFound):
        store.incidents.get(99)


def test_saving_the_same_incident_again_updates_it(store: Store) -> None:
    st = incident_state(1, signals=[signal_state("fp-a"), signal_state("fp-b")])
    save_incidents(store, st)
    st.signals["fp-a"].count = 5
    st.signals["fp-a"].last_at = T0 + 3 * MINUTE
    st.signals["fp-c"] = signal_state("fp-c", at=T0 + 2 * MINUTE)
    entry = st.transition(IncidentStatus.ACKNOWLEDGED, T0 + 4 * MINUTE, "cli:bob", "on it")
    store.incidents.save([st], [entry])
    store.incidents.save([st])

    assert count_rows(store, SignalRecord, SignalRecord.incident_id == 1) == 3
    by_fp = {s.fingerprint: s for s in store.incidents.signals(1)}
    assert (by_fp["fp-a"].count, by_fp["fp-a"].last_at) == (5, T0 + 3 * MINUTE)
    row = store.incidents.get(1)
    assert (row.status, row.acknowledged_at) == ("acknowledged", T0 + 4 * MINUTE)
    assert [e.kind for e in store.incidents.timeline(1)] == ["opened", "acknowledged"]
    assert store.incidents.load_working_set(T0) == [st]


def test_signal_rows_are_unique_per_incident_and_fingerprint(store: Store) -> None:
    save_incidents(store, incident_state(1, signals=[signal_state("fp-a")]), incident_state(2, signals=[]))

    def insert(incident_id: int) -> None:
        with Session(store.engine) as s:
            rec = SignalRecord(
                incident_id=incident_id,
                fingerprint="fp-a",
                name="n",
                service="demo-web",
                source="prometheus",
                detector="robust",
                severity="warning",
                first_at=T0,
                last_at=T0,
                peak_score=1.0,
                last_value=1.0,
                last_score=1.0,
            )
            s.add(rec)
            s.commit()

    insert(2)  # the same series in another incident is fine
    with pytest.raises(IntegrityError):
        insert(1)
    assert count_rows(store, SignalRecord) == 2


def test_a_save_is_all_or_nothing(store: Store) -> None:
    dangling = TimelineEntry(404, T0, "opened", "agent", "no such incident")
    with pytest.raises(IntegrityError):
        store.incidents.save([incident_state(1)], [dangling])
    assert store.incidents.list() == []
    assert store.incidents.max_id() == 0


# ---------------------------------------------------------------- changes


def test_create_get_and_list_changes(store: Store) -> None:
    save_incidents(store, incident_state(1), incident_state(2))
    c1 = add_change(store, 1)
    c2 = add_change(store, 1, S.DRY_RUN, at=T0 + MINUTE)
    c3 = add_change(store, 2, at=T0 + 2 * MINUTE)

    assert [c.id for c in store.changes.list()] == [c3, c2, c1]
    assert [c.id for c in store.changes.list(status="awaiting_approval")] == [c3, c1]
    assert [c.id for c in store.changes.list(incident_id=1)] == [c2, c1]
    assert [c.id for c in store.changes.list(limit=1)] == [c3]
    got = store.changes.get(c2)
    assert (got.status, got.created_at, got.params) == (
        "dry_run",
        T0 + MINUTE,
        {"url": "http://10.0.0.1:8000/admin/recycle"},
    )
    assert [c.id for c in store.changes.pending_for_incident(1)] == [c1]
    assert [c.id for c in store.changes.with_status(S.AWAITING_APPROVAL, S.DRY_RUN)] == [c1, c2, c3]
    assert store.changes.count_by_status() == {"awaiting_approval": 2, "dry_run": 1}
    with pytest.raises(NotFound):
        store.changes.get(999)


def test_transition_is_compare_and_set(store: Store) -> None:
    save_incidents(store, incident_state(1))
    cid = add_change(store, 1)

    assert store.changes.transition(cid, [S.APPROVED], S.RUNNING, started_at=T0) is False
    row = store.changes.get(cid)
    assert (row.status, row.started_at) == ("awaiting_approval", None)

    assert store.changes.transition(cid, [S.AWAITING_APPROVAL], S.APPROVED, decided_by="x") is True
    assert (store.changes.get(cid).status, store.changes.get(cid).decided_by) == ("approved", "x")
    assert store.changes.transition(cid, [S.AWAITING_APPROVAL], S.REJECTED, decided_by="y") is False
    assert (store.changes.get(cid).status, store.changes.get(cid).decided_by) == ("approved", "x")
    assert store.changes.transition(999, [S.AWAITING_APPROVAL], S.APPROVED) is False


def test_exactly_one_thread_claims_an_approved_change(store: Store) -> None:
    workers, rounds = 8, 3
    save_incidents(store, incident_state(1))
    for _ in range(rounds):
        cid = add_change(store, 1, S.APPROVED)
        barrier = threading.Barrier(workers)

        def claim(i: int, cid: int = cid, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait(timeout=10)
            return store.changes.transition(
                cid, [S.APPROVED], S.RUNNING, started_at=T0 + timedelta(seconds=i), outcome=f"worker-{i}"
            )

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(claim, range(workers)))

        assert results.count(True) == 1
        winner = results.index(True)
        row = store.changes.get(cid)
        # The winner's fields stuck: no loser wrote anything.
        assert (row.status, row.outcome, row.started_at) == (
            "running",
            f"worker-{winner}",
            T0 + timedelta(seconds=winner),
        )


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


def test_decide_approves_or_rejects_only_changes_awaiting_approval(store: Store) -> None:
    save_incidents(store, incident_state(1))
    approved = store.changes.decide(add_change(store, 1), True, "cli:alice", T0 + MINUTE, note="go")
    assert (approved.status, approved.decided_by, approved.decided_at, approved.reason) == (
        "approved",
        "cli:alice",
        T0 + MINUTE,
        "go",
    )
    rejected = store.changes.decide(add_change(store, 1), False, "api:bob", T0)
    assert (rejected.status, rejected.decided_by) == ("rejected", "api:bob")
    assert rejected.reason == "latency above expected"  # an empty note keeps the planned reason

    for status in [s for s in S if s is not S.AWAITING_APPROVAL]:
        cid = add_change(store, 1, status)
        for approve in (True, False):
            with pytest.raises(InvalidTransition, match=status.value):
                store.changes.decide(cid, approve, "cli:mallory", T0)
        row = store.changes.get(cid)
        assert (row.status, row.decided_by, row.decided_at) == (status.value, "", None)
    with pytest.raises(NotFound):
        store.changes.decide(999, True, "cli:alice", T0)


def test_last_for_skips_rejected_and_cancelled_changes(store: Store) -> None:
    save_incidents(store, incident_state(1))
    assert store.changes.last_for("recycle-demo-workers", "demo-web") is None
    add_change(store, 1, S.SUCCEEDED, at=T0)
    dry = add_change(store, 1, S.DRY_RUN, at=T0 + MINUTE)
    add_change(store, 1, S.REJECTED, at=T0 + 2 * MINUTE)
    add_change(store, 1, S.CANCELLED, at=T0 + 3 * MINUTE)
    add_change(store, 1, S.SUCCEEDED, at=T0 + 4 * MINUTE, service="other")
    add_change(store, 1, S.SUCCEEDED, at=T0 + 5 * MINUTE, rule="other-rule")

    last = store.changes.last_for("recycle-demo-workers", "demo-web")
    assert last is not None and last.id == dry  # a dry run still starts the cooldown


def test_attempts_skip_rejected_cancelled_and_dry_run_changes(store: Store) -> None:
    save_incidents(store, incident_state(1), incident_state(2))
    for status in (S.SUCCEEDED, S.FAILED, S.AWAITING_APPROVAL, S.DRY_RUN, S.REJECTED, S.CANCELLED):
        add_change(store, 1, status)
    add_change(store, 1, S.FAILED, rule="other-rule")
    add_change(store, 2, S.FAILED)

    assert store.changes.attempts(1, "recycle-demo-workers") == 3
    assert store.changes.attempts(1, "other-rule") == 1
    assert store.changes.attempts(3, "recycle-demo-workers") == 0


# ---------------------------------------------------------------- runbook runs


def test_runs_record_events_outcome_and_interruption(store: Store) -> None:
    save_incidents(store, incident_state(1))
    cid = add_change(store, 1, S.RUNNING)
    done = store.runs.start(cid, "remediation", "recycle_workers.yml", T0)
    assert [(r.id, r.status, r.rc) for r in store.runs.for_change(cid)] == [(done, "running", None)]

    for seq, task in [(2, "recycle"), (1, "Gathering Facts"), (3, "verify")]:
        store.runs.add_event(
            RunbookEvent(run_id=done, seq=seq, kind="runner_on_ok", task=task, host="localhost", at=T0)
        )
    assert [(e.seq, e.task) for e in store.runs.events(done)] == [
        (1, "Gathering Facts"),
        (2, "recycle"),
        (3, "verify"),
    ]

    store.runs.finish(done, "successful", 0, T0 + timedelta(seconds=12.5), "PLAY RECAP ok=3", [])
    failed = store.runs.start(cid, "rollback", "rollback.yml", T0 + MINUTE)
    store.runs.finish(failed, "failed", 2, T0 + 2 * MINUTE, "boom", ["restart unit"])
    hung = store.runs.start(cid, "remediation", "recycle_workers.yml", T0 + 3 * MINUTE)

    interrupted = store.runs.interrupt_running(T0 + 4 * MINUTE)

    assert [r.id for r in interrupted] == [hung]
    runs = {r.id: r for r in store.runs.for_change(cid)}
    assert list(runs) == [done, failed, hung]
    assert (runs[done].status, runs[done].rc, runs[done].duration_s, runs[done].stdout) == (
        "successful",
        0,
        12.5,
        "PLAY RECAP ok=3",
    )
    assert runs[done].finished_at == T0 + timedelta(seconds=12.5)
    assert (runs[failed].status, runs[failed].failed_tasks, runs[failed].kind) == (
        "failed",
        ["restart unit"],
        "rollback",
    )
    assert (runs[hung].status, runs[hung].finished_at, runs[hung].duration_s) == (
        "interrupted",
        T0 + 4 * MINUTE,
        60.0,
    )
    assert store.runs.interrupt_running(T0 + 5 * MINUTE) == []
    with pytest.raises(NotFound):
        store.runs.finish(999, "failed", 1, T0, "", [])


# ---------------------------------------------------------------- problems


def test_record_recurrence_creates_then_updates_a_candidate(store: Store) -> None:
    save_incidents(store, *(incident_state(i, at=T0 + i * MINUTE) for i in (1, 2, 3)))
    sig = "demo-web:demo_latency_p99"

    problem, created = store.problems.record_recurrence(sig, "demo-web", "recurring", [2, 1], T0)
    assert created is True
    assert (problem.occurrences, problem.status, problem.first_seen, problem.last_seen) == (
        2,
        "candidate",
        T0,
        T0,
    )
    assert problem.id is not None
    assert store.incidents.get(1).problem_id == problem.id

    later = T0 + timedelta(hours=1)
    again, created = store.problems.record_recurrence(sig, "demo-web", "recurring", [2, 3, 3], later)
    assert created is False
    assert again.id == problem.id
    assert (again.occurrences, again.first_seen, again.last_seen) == (3, T0, later)
    store.problems.record_recurrence(sig, "demo-web", "recurring", [1, 2, 3], later)

    assert count_rows(store, ProblemIncident) == 3
    assert [i.id for i in store.problems.incidents(problem.id)] == [1, 2, 3]
    assert [p.id for p in store.problems.list()] == [problem.id]
    assert [p.id for p in store.problems.list(status="candidate")] == [problem.id]
    assert store.problems.list(status="known_error") == []
    assert store.problems.get(problem.id).occurrences == 3
    with pytest.raises(NotFound):
        store.problems.get(999)


def test_check_recurrence_creates_a_candidate_at_the_count_within_the_window(store: Store) -> None:
    config = ProblemConfig(recurrence_count=3, recurrence_window="24h")
    outside = incident_state(1, at=T0 - timedelta(hours=30))
    earlier = incident_state(2, at=T0 - timedelta(hours=2))
    other = incident_state(3, at=T0 - timedelta(hours=1), signature="demo-web:demo_error_ratio")
    now = incident_state(4, at=T0)
    save_incidents(store, outside, earlier, other, now)

    assert check_recurrence(store, config, now, T0) is None  # 3 occurrences, but only 2 inside 24h
    assert store.problems.list() == []

    third = incident_state(5, at=T0 + timedelta(hours=1))
    save_incidents(store, third)
    found = check_recurrence(store, config, third, T0 + timedelta(hours=1))
    assert found is not None
    problem, ids = found
    assert ids == {2, 4, 5}
    assert problem.occurrences == 3 and problem.signature == now.signature
    assert [i.id for i in store.problems.incidents(problem.id or 0)] == [2, 4, 5]

    fourth = incident_state(6, at=T0 + timedelta(hours=2))
    save_incidents(store, fourth)
    found = check_recurrence(store, config, fourth, T0 + timedelta(hours=2))
    assert found is not None and found[0].id == problem.id and found[0].occurrences == 4
    assert len(store.problems.list()) == 1


# ---------------------------------------------------------------- audit


def test_audit_log_records_and_lists_newest_first(store: Store) -> None:
    store.audit.record(T0, "agent", "change.create", "change:1", {"rule": "r"})
    store.audit.record(T0 + MINUTE, "cli:alice", "change.approve", "change:1", {"note": "ok"})
    store.audit.record(T0 + 2 * MINUTE, "api:oncall", "change.reject", "change:2")

    entries = store.audit.list()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("api:oncall", "change.reject", "change:2"),
        ("cli:alice", "change.approve", "change:1"),
        ("agent", "change.create", "change:1"),
    ]
    assert [e.details for e in entries] == [{}, {"note": "ok"}, {"rule": "r"}]
    assert entries[1].at == T0 + MINUTE
    assert len(store.audit.list(limit=2)) == 2


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg2://aiops:s3cr3t@db.example:5432/aiops",
            "postgresql+psycopg2://aiops:***@db.example:5432/aiops",
        ),
        ("postgresql://aiops:p@ss:w@rd@db/aiops", "postgresql://aiops:***@db/aiops"),
        ("sqlite:///var/lib/aiops/aiops.db", "sqlite:///var/lib/aiops/aiops.db"),
    ],
)
def test_redact_db_url_hides_passwords(url: str, expected: str) -> None:
    assert redact_db_url(url) == expected


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
