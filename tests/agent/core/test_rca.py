from __future__ import annotations

from agent.core.rca import Evidence, Weights, rank

EDGES = [("web", "api"), ("api", "db"), ("api", "cache"), ("web", "auth")]


def names(cands: list) -> list[str]:
    return [c.service for c in cands]


def test_callee_that_started_first_ranks_first() -> None:
    ev = [
        Evidence("web", onset=300.0, peak=0.99),
        Evidence("api", onset=200.0, peak=0.95),
        Evidence("db", onset=100.0, peak=0.9),
        Evidence("cache", onset=None, peak=0.2),
    ]
    out = rank(ev, EDGES, target="web")
    assert names(out)[:3] == ["db", "api", "web"]
    assert "first to turn anomalous" in out[0].reasons
    assert "no anomalous callee" in out[0].reasons
    assert any("explains 2" in r for r in out[0].reasons)


def test_target_limits_candidates_to_its_callees() -> None:
    ev = [Evidence("api", onset=200.0, peak=0.9), Evidence("db", onset=100.0, peak=0.9)]
    ev.append(Evidence("other", onset=50.0, peak=1.0))
    assert "other" not in names(rank(ev, EDGES, target="api"))
    assert "other" in names(rank(ev, EDGES))


def test_callee_anomalous_later_does_not_take_the_blame() -> None:
    ev = [Evidence("api", onset=100.0, peak=0.95), Evidence("db", onset=400.0, peak=0.92)]
    out = rank(ev, EDGES, target="api")
    assert names(out) == ["api", "db"]
    assert "anomalous before its anomalous callees" in out[0].reasons


def test_quiet_services_rank_last_by_peak() -> None:
    ev = [
        Evidence("api", onset=100.0, peak=0.9),
        Evidence("db", onset=None, peak=0.5),
        Evidence("cache", onset=None, peak=0.7),
    ]
    out = rank(ev, EDGES, target="api")
    assert names(out) == ["api", "cache", "db"]
    assert out[2].reasons == ("not anomalous (peak score 0.50)",)


def test_breadth_and_threshold() -> None:
    ev = [
        Evidence("db", onset=100.0, peak=0.9, anomalous=3, metrics=3),
        Evidence("cache", onset=100.0, peak=0.9, anomalous=1, metrics=3),
    ]
    out = rank(ev, EDGES)
    assert names(out) == ["cache", "db"][::-1]
    assert "3 of 3 metrics anomalous" in out[0].reasons
    strict = rank(ev, EDGES, weights=Weights(threshold=0.95))
    assert all(r.startswith("not anomalous") for c in strict for r in c.reasons)


def test_no_evidence_no_candidates_and_dict_shape() -> None:
    assert rank([], EDGES, target="web") == []
    (c,) = rank([Evidence("db", onset=1.0, peak=0.9)], [])
    assert c.as_dict()["service"] == "db" and isinstance(c.as_dict()["reasons"], list)


def test_incident_signals_rank_without_a_threshold() -> None:
    from dataclasses import dataclass
    from datetime import UTC, datetime, timedelta

    from agent.core.rca import incident_root_causes, signal_evidence

    @dataclass
    class Sig:
        service: str
        first_at: datetime
        peak_score: float

    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    sigs = [
        Sig("web", t0 + timedelta(minutes=2), 0.6),
        Sig("db", t0, 0.5),
        Sig("db", t0 + timedelta(minutes=1), 0.7),
    ]
    (db,) = [e for e in signal_evidence(sigs) if e.service == "db"]
    assert (db.onset, db.peak, db.anomalous) == (t0.timestamp(), 0.7, 2)
    assert [c.service for c in incident_root_causes(sigs, [("web", "db")])] == ["db", "web"]
    assert incident_root_causes(sigs[:1], []) == []


def test_a_callee_cut_off_from_the_symptom_ranks_below_one_on_an_anomalous_path() -> None:
    # blob is anomalous and earliest, but reached from web only through a quiet queue; db through an anomalous api.
    edges = [*EDGES, ("web", "queue"), ("queue", "blob")]
    ev = [
        Evidence("web", onset=300.0, peak=0.95),
        Evidence("api", onset=200.0, peak=0.95),
        Evidence("db", onset=100.0, peak=0.92),
        Evidence("queue", onset=None, peak=0.3),
        Evidence("blob", onset=100.0, peak=0.99),
    ]
    out = rank(ev, edges, target="web")
    assert names(out)[0] == "db"
    blob = next(c for c in out if c.service == "blob")
    assert "no anomalous call path from web" in blob.reasons
    assert "anomalous call path from web" in out[0].reasons
