"""Known errors in the store, on SQLite and PostgreSQL: the schema upgrade that brought them their problem,
owner and matching incidents, and the invariant of one known error per problem."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import inspect, text

from agent.errors import InvalidTransition
from agent.shell.store import Store
from agent.shell.store.engine import MIGRATIONS, SCHEMA_VERSION, make_engine
from tests.support.records import T0, incident_state, link_problem, save_incidents
from tests.support.schema_v2 import create_v2_store

V5 = 5


def test_a_version_5_store_gets_the_problem_lifecycle(store_url: str) -> None:
    """A store as the safety-envelope release left it, with a problem candidate and its incidents, keeps
    them; its candidate can then be promoted and made a known error, and incidents carry the link."""
    engine = make_engine(store_url)
    create_v2_store(engine)
    with engine.begin() as conn:
        for version in range(3, V5 + 1):  # the migrations of that release, as it ran them
            MIGRATIONS[version - 2](conn)
        conn.execute(text("DELETE FROM schema_version"))
        conn.execute(text("INSERT INTO schema_version (version, applied_at) VALUES (5, CURRENT_TIMESTAMP)"))
        conn.execute(
            text(
                "INSERT INTO problems (signature, kind, service, title, status, occurrences, first_seen,"
                " last_seen, created_at, updated_at, root_cause, workaround) VALUES ('web:slow',"
                " 'recurrence', 'demo-web', 'web slow recurring', 'candidate', 3, :t, :t, :t, :t, '', '')"
            ),
            {"t": T0},
        )
        conn.execute(
            text(
                "INSERT INTO known_errors (signature, title, root_cause, workaround, workaround_runbook,"
                " created_at) VALUES ('db:down', 'an old one', 'disk', 'fail over', '', :t)"
            ),
            {"t": T0},
        )
    engine.dispose()

    store = Store.open(store_url)
    try:
        [problem] = store.problems.list()
        assert (problem.status, problem.owner, problem.occurrences) == ("candidate", "", 3)
        [old] = store.known_errors.list()
        assert (old.signatures, old.problem_id) == ([], None)
        assert [(k.id, k.signatures) for k in store.known_errors.current()] == [(old.id, ("db:down",))]
        columns = {c["name"] for c in inspect(store.engine).get_columns("incidents")}
        assert "known_error_id" in columns
        pid = problem.id or 0
        store.known_errors.promote(pid, "carol", "", "cli:alice", T0)
        made = store.known_errors.record(pid, "slow disk", "move the cache", None, "cli:alice", T0)
        assert made.status == "known_error" and made.title == "web slow recurring"
        save_incidents(store, incident_state(1, known_error_id=made.known_error_id))
        assert [i.id for i in store.incidents.of_known_error(made.known_error_id or 0)] == [1]
    finally:
        store.close()
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars()
            assert list(versions) == list(range(V5, SCHEMA_VERSION + 1))
    finally:
        engine.dispose()


def test_two_people_recording_a_workaround_at_once_make_one_known_error(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        save_incidents(store, incident_state(1), incident_state(2, at=T0 + timedelta(minutes=1)))
        pid = link_problem(store, "demo-web:demo_latency_p99", "latency recurring", [1, 2])
        store.known_errors.promote(pid, "carol", "latency", "cli:carol", T0)
        outcomes: list[str] = []

        def record(who: str) -> None:
            try:
                store.known_errors.record(pid, None, f"workaround by {who}", None, who, T0)
                outcomes.append("recorded")
            except InvalidTransition:
                outcomes.append("conflict")

        threads = [threading.Thread(target=record, args=(f"cli:p{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.known_errors.list()) == 1
        assert "recorded" in outcomes
        assert store.problems.get(pid).known_error_id == store.known_errors.list()[0].id
    finally:
        store.close()
