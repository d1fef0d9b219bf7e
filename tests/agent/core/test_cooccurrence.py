"""Co-occurrence candidates on generated incident histories: a real pair (one service's incidents
follow another's within minutes) is found with a tiny p-value and a large lift; signatures opening
independently, however often, are not paired at the defaults; same-service pairs never are; the
window is inclusive; and the live path (one opening at a time) agrees with the batch one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.models import ProblemConfig
from agent.core.cooccurrence import Cooccurrence, candidates
from agent.core.incidents import IncidentState
from agent.core.problems import Opening
from tests.support.records import incident_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0
DAYS = 30
END = T0 + timedelta(days=DAYS)
DEFAULTS = ProblemConfig()


class History:
    """Openings of generated incidents, each with its own id."""

    def __init__(self) -> None:
        self.openings: list[Opening] = []

    def add(self, signature: str, seconds: float) -> None:
        service = signature.split(":")[0]
        self.openings.append(Opening(signature, service, T0 + timedelta(seconds=seconds), len(self.openings)))

    def poisson(self, rng: np.random.Generator, signature: str, per_day: float) -> list[float]:
        times = sorted(rng.uniform(0, DAYS * DAY, rng.poisson(per_day * DAYS)).tolist())
        for t in times:
            self.add(signature, t)
        return times


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    per_day=st.floats(0.5, 3.0),
    follows=st.floats(0.6, 1.0),
    noise_per_day=st.floats(0.0, 2.0),
)
def test_a_service_whose_incidents_follow_anothers_is_paired_with_it(
    seed: int, per_day: float, follows: float, noise_per_day: float
) -> None:
    rng = np.random.default_rng(seed)
    h = History()
    causes = h.poisson(rng, "db:SlowQueries", per_day)
    for t in causes:
        if rng.random() < follows:  # most times the database slows down, the web tier errors minutes later
            h.add("web:HighErrorRate", t + rng.uniform(30, 540))
    h.poisson(rng, "web:HighErrorRate", noise_per_day)  # and on its own too
    h.poisson(rng, "db:SlowQueries", noise_per_day)
    h.poisson(rng, "cache:Evictions", 5.0)  # an unrelated busy neighbour
    found = candidates(h.openings, DEFAULTS, END)
    if len(causes) * follows < 8:  # too few incidents to tell from chance: nothing is claimed
        assert all(c.signatures == ("db:SlowQueries", "web:HighErrorRate") for c in found)
        return
    (pair,) = found
    assert pair.signatures == ("db:SlowQueries", "web:HighErrorRate") and pair.services == ("db", "web")
    assert pair.count >= DEFAULTS.cooccurrence_min_count
    assert pair.p_value < 1e-6 and pair.lift > 5
    assert pair.expected == pytest.approx(pair.count / pair.lift)
    assert len(pair.incidents) == 2 * pair.count  # each incident is counted in one pair at most


@pytest.mark.parametrize("seed", range(12))
def test_frequent_independent_incidents_are_not_paired(seed: int) -> None:
    """Six services opening incidents at their own rates (one every other day to a hundred a day),
    independently: fifteen pairs, thousands of chance coincidences, no candidate, live or in batch."""
    rng = np.random.default_rng(seed)
    h = History()
    for service, per_day in [("a", 0.5), ("b", 2), ("c", 5), ("d", 10), ("e", 30), ("f", 100)]:
        h.poisson(rng, f"{service}:Down", per_day)
    assert candidates(h.openings, DEFAULTS, END) == []
    live = Cooccurrence(DEFAULTS)
    raised = [c for o in sorted(h.openings, key=lambda o: o.at) for c in live.opened(_incident(o), o.at)]
    assert raised == []
    loose = candidates(h.openings, DEFAULTS.model_copy(update={"cooccurrence_max_p": 1.0}), END)
    assert len(loose) >= 10 and sum(c.count for c in loose) > 1000  # they did coincide, by chance


def test_pairs_on_the_same_service_are_not_candidates() -> None:
    h = History()
    for day in range(20):
        h.add("web:HighLatency", day * DAY)
        h.add("web:HighErrorRate", day * DAY + 60)
    assert candidates(h.openings, DEFAULTS, END) == []
    h.add("db:Down", 0)  # nor is a signature with itself, however often it repeats
    assert candidates(h.openings, DEFAULTS, END) == []


def test_the_window_is_inclusive() -> None:
    window = DEFAULTS.cooccurrence_window.total_seconds()
    for gap, paired in [(window, True), (window + 1, False)]:
        h = History()
        for day in range(10):
            h.add("db:Down", day * DAY)
            h.add("web:Errors", day * DAY + gap)
        found = candidates(h.openings, DEFAULTS, END)
        assert [c.count for c in found] == ([10] if paired else []), gap


def test_a_burst_counts_once() -> None:
    """Twenty flaps of one signature next to one opening of the other are one co-occurrence."""
    h = History()
    for second in range(0, 600, 30):
        h.add("db:Flapping", second)
    h.add("web:Errors", 300)
    loose = DEFAULTS.model_copy(update={"cooccurrence_max_p": 1.0, "cooccurrence_min_count": 1})
    (pair,) = candidates(h.openings, loose, END)
    assert pair.count == 1


def test_min_count_and_max_p_gate_a_candidate() -> None:
    h = History()
    for day in range(3):
        h.add("db:Down", day * DAY)
        h.add("web:Errors", day * DAY + 60)
    (pair,) = candidates(h.openings, DEFAULTS, END)
    assert pair.count == 3 and pair.p_value < DEFAULTS.cooccurrence_max_p
    assert candidates(h.openings, DEFAULTS.model_copy(update={"cooccurrence_min_count": 4}), END) == []
    assert candidates(h.openings, DEFAULTS.model_copy(update={"cooccurrence_max_p": 1e-9}), END) == []


def test_three_services_failing_together_are_a_set_where_each_two_are_a_pair() -> None:
    """db, then web two minutes later, then the edge two minutes after that, each day: three pairs and
    the triple; had the edge followed web on other days than db, no triple."""
    rng = np.random.default_rng(3)
    h = History()
    for day in range(20):
        h.add("db:Down", day * DAY)
        h.add("web:Errors", day * DAY + 120)
        h.add("edge:Timeouts", day * DAY + 240)
    h.poisson(rng, "cache:Evictions", 5.0)
    found = {c.signatures: c for c in candidates(h.openings, DEFAULTS, END)}
    assert set(found) == {
        ("db:Down", "web:Errors"),
        ("edge:Timeouts", "web:Errors"),
        ("db:Down", "edge:Timeouts"),
        ("db:Down", "edge:Timeouts", "web:Errors"),
    }
    triple = found[("db:Down", "edge:Timeouts", "web:Errors")]
    assert triple.count == 20 and triple.services == ("db", "edge", "web") and len(triple.incidents) == 60
    assert triple.p_value < 1e-30 and triple.lift > found[("db:Down", "web:Errors")].lift
    assert triple.link(END, 0).signature == "db:Down + edge:Timeouts + web:Errors"

    h = History()
    for day in range(20):  # db then web on even days, web then the edge on odd days
        first, second = ("db:Down", "web:Errors") if day % 2 else ("web:Errors", "edge:Timeouts")
        h.add(first, day * DAY)
        h.add(second, day * DAY + 120)
    found = {c.signatures: c for c in candidates(h.openings, DEFAULTS, END)}
    assert set(found) == {("db:Down", "web:Errors"), ("edge:Timeouts", "web:Errors")}


def test_the_live_path_raises_as_pairs_complete_and_forgets_beyond_the_horizon() -> None:
    """Openings loaded from the store count, but raise nothing; each new opening that completes a pair
    re-judges it (with held incidents, named by id once the store gave them one)."""
    h = History()
    for day in range(2):
        h.add("db:Down", day * DAY)
        h.add("web:Errors", day * DAY + 60)
    live = Cooccurrence(DEFAULTS)
    live.load(h.openings)
    db = _incident(Opening("db:Down", "db", T0 + timedelta(days=2), -1), ref=1001)
    assert live.opened(db, db.opened_at) == []
    web = _incident(Opening("web:Errors", "web", db.opened_at + timedelta(minutes=3), -1), ref=1002)
    (pair,) = live.opened(web, web.opened_at)
    assert pair.count == 3 and pair.incidents[-2:] == (db, web) and pair.incidents[:4] == (0, 1, 2, 3)
    link = pair.link(web.opened_at, web)
    assert (link.kind, link.signature, link.services) == (
        "cooccurrence",
        "db:Down + web:Errors",
        ("db", "web"),
    )
    assert link.count == 3 and link.p_value == pair.p_value and link.note is web
    db.id, web.id = 100, 101
    live.bound(db)
    live.bound(web)
    assert live.candidates(web.opened_at)[0].incidents[-2:] == (100, 101)
    later = web.opened_at + DEFAULTS.cooccurrence_horizon + timedelta(days=2, seconds=1)
    live.prune(later)
    assert live.candidates(later) == [] and not live._groups and not live._by_signature


def _incident(o: Opening, ref: int = 0) -> IncidentState:
    inc = incident_state(ref or o.id + 1, at=o.at, service=o.service, signature=o.signature)
    inc.id = o.id if o.id >= 0 else None
    return inc
