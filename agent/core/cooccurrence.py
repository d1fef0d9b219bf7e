"""Co-occurrence candidates: incidents of two signatures, on different services, that open within
`cooccurrence_window` of each other more often than their own rates predict are probably one problem.

The count is of matched pairs: each opening of one signature is paired with at most one opening of the
other (the earliest unpaired one within the window), so a burst of one signature next to a single
opening of the other counts once. The expected count is what two independent Poisson streams at the
signatures' rates over the last `cooccurrence_horizon` would give as pairs within the window:
`n_a * n_b * 2w / T` (edge effects ignored; `T` is the horizon, or the time since the first opening
seen when the history is shorter, which overestimates the rates and so errs towards raising nothing).
Matched pairs never outnumber all pairs, so the one-sided Poisson p-value `P(X >= count)` is on the
cautious side too. Lift is `count / expected`.

Openings arrive in time order and each one is compared with the openings of the last window only (a
sweep), never with every incident of the horizon.

>>> from datetime import UTC, datetime, timedelta
>>> from agent.config.models import ProblemConfig
>>> from agent.core.problems import Opening
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> history = [Opening("db:Slow", "db", t0 + timedelta(hours=h), h) for h in range(0, 240, 12)]
>>> history += [Opening("web:Errors", "web", o.at + timedelta(minutes=2), 1000 + o.id) for o in history]
>>> (pair,) = candidates(history, ProblemConfig(), t0 + timedelta(days=10))
>>> pair.signature, pair.count, round(pair.expected, 2), pair.p_value < 1e-20
('db:Slow + web:Errors', 20, 0.56, True)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from scipy.special import pdtrc

from agent.config.models import ProblemConfig
from agent.core.decisions import ProblemLink
from agent.core.incidents import IncidentState
from agent.core.problems import Opening

Held = IncidentState | int  # an incident the core holds, or the id of one it let go


@dataclass(slots=True)
class _Opening:
    at: datetime
    seq: int  # arrival order: breaks ties between openings at the same time
    signature: str
    service: str
    incident: Held


@dataclass(slots=True)
class _Pair:
    matches: deque[tuple[_Opening, _Opening]] = field(default_factory=deque)  # (earlier, later)
    last: dict[str, int] = field(default_factory=dict)  # signature -> seq of its last paired opening


@dataclass(frozen=True)
class Cooccurring:
    """Two signatures that co-occur: `count` pairs within the window over the horizon against the
    `expected` count of independent incidents, their `lift` and one-sided `p_value`."""

    signatures: tuple[str, str]  # sorted
    services: tuple[str, str]  # in the order of `signatures`
    count: int
    expected: float
    lift: float
    p_value: float
    incidents: tuple[Held, ...]  # those of the pairs counted, oldest first
    first_at: datetime
    last_at: datetime

    @property
    def signature(self) -> str:
        """The candidate's stable key (a recurrence candidate's is the incident signature itself)."""
        return " + ".join(self.signatures)

    def link(self, at: datetime, note: Held) -> ProblemLink:
        title = (
            f"{' and '.join(self.signatures)} co-occurring ({self.count}x within the window, "
            f"{self.expected:.2g} expected, p={self.p_value:.1e})"
        )
        return ProblemLink(
            self.signature,
            ", ".join(self.services),
            title,
            self.incidents,
            at,
            note,
            kind="cooccurrence",
            services=self.services,
            signatures=self.signatures,
            count=self.count,
            expected=self.expected,
            lift=self.lift,
            p_value=self.p_value,
        )


class Cooccurrence:
    """Openings of the last horizon per signature and the pairs matched between signatures, kept in
    memory (loaded from the store at start) so an opening costs a look at the last window only."""

    def __init__(self, config: ProblemConfig):
        self.config = config
        self._recent: deque[_Opening] = deque()  # all openings of the last window
        self._by_signature: dict[str, deque[_Opening]] = {}  # openings of the last horizon
        self._services: dict[str, str] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._first: datetime | None = None
        self._seq = 0
        self._unbound: dict[int, _Opening] = {}  # incident ref -> its opening, until the store names it

    def load(self, openings: Iterable[Opening]) -> None:
        """Openings of the last horizon from the store (raising nothing for them)."""
        for o in sorted(openings, key=lambda o: (o.at, o.id)):
            self._record(o.signature, o.service, o.at, o.id)

    def opened(self, inc: IncidentState, now: datetime) -> list[Cooccurring]:
        """Record an opening; the pairs it completed that are now candidates."""
        opening, keys = self._record(inc.signature, inc.service, inc.opened_at, inc)
        self._unbound[inc.ref] = opening
        return [c for key in keys if (c := self._judge(key, now)) is not None]

    def bound(self, inc: IncidentState) -> None:
        """The store gave `inc` its id: hold the id rather than the incident."""
        opening = self._unbound.pop(inc.ref, None)
        if opening is not None and inc.id is not None:
            opening.incident = inc.id

    def candidates(self, now: datetime) -> list[Cooccurring]:
        """Every pair that is a candidate at `now`, most significant first."""
        found = [c for key in list(self._pairs) if (c := self._judge(key, now)) is not None]
        return sorted(found, key=lambda c: (c.p_value, c.signature))

    def prune(self, now: datetime) -> None:
        """Let go of openings and pairs older than the horizon (on the housekeeping tick)."""
        since = now - self.config.cooccurrence_horizon
        for signature in list(self._by_signature):
            if not _prune(self._by_signature[signature], since):
                del self._by_signature[signature]
        for key in list(self._pairs):
            matches = self._pairs[key].matches
            while matches and matches[0][1].at < since:
                matches.popleft()
            if not matches:
                del self._pairs[key]
        self._unbound = {ref: o for ref, o in self._unbound.items() if o.at >= since}

    def _record(
        self, signature: str, service: str, at: datetime, incident: Held
    ) -> tuple[_Opening, list[tuple[str, str]]]:
        while self._recent and self._recent[0].at < at - self.config.cooccurrence_window:
            self._recent.popleft()
        opening = _Opening(at, self._seq, signature, service, incident)
        self._seq += 1
        if self._first is None:
            self._first = at
        partners: dict[str, _Opening] = {}  # per other signature, its earliest opening not yet paired
        for other in self._recent:
            if other.service == service or other.signature == signature or other.signature in partners:
                continue
            pair = self._pairs.get(_key(signature, other.signature))
            if pair is None or other.seq > pair.last.get(other.signature, -1):
                partners[other.signature] = other
        keys = []
        for other in partners.values():
            key = _key(signature, other.signature)
            pair = self._pairs.setdefault(key, _Pair())
            pair.matches.append((other, opening))
            pair.last[other.signature] = other.seq
            pair.last[signature] = opening.seq
            keys.append(key)
        self._recent.append(opening)
        self._by_signature.setdefault(signature, deque()).append(opening)
        self._services[signature] = service
        return opening, keys

    def _judge(self, key: tuple[str, str], now: datetime) -> Cooccurring | None:
        c = self.config
        since = now - c.cooccurrence_horizon
        pair = self._pairs[key]
        while pair.matches and pair.matches[0][1].at < since:
            pair.matches.popleft()
        count = len(pair.matches)
        if count < c.cooccurrence_min_count or self._first is None:
            return None
        n_a, n_b = (len(_prune(self._by_signature.get(s, deque()), since)) for s in key)
        span = min(c.cooccurrence_horizon, now - self._first).total_seconds()
        width = 2 * c.cooccurrence_window.total_seconds()
        expected = n_a * n_b * (min(1.0, width / span) if span > 0 else 1.0)
        p_value = float(pdtrc(count - 1, expected))  # P(X >= count), X ~ Poisson(expected)
        if p_value > c.cooccurrence_max_p:
            return None
        incidents = sorted({id(o): o for m in pair.matches for o in m}.values(), key=lambda o: o.seq)
        return Cooccurring(
            signatures=key,
            services=(self._services[key[0]], self._services[key[1]]),
            count=count,
            expected=expected,
            lift=count / expected,
            p_value=p_value,
            incidents=tuple(o.incident for o in incidents),
            first_at=pair.matches[0][1].at,
            last_at=pair.matches[-1][1].at,
        )


def candidates(openings: Iterable[Opening], config: ProblemConfig, now: datetime) -> list[Cooccurring]:
    """The co-occurrence candidates a history of openings raises at `now` (most significant first)."""
    tracker = Cooccurrence(config)
    tracker.load(openings)
    return tracker.candidates(now)


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _prune(openings: deque[_Opening], since: datetime) -> deque[_Opening]:
    while openings and openings[0].at < since:
        openings.popleft()
    return openings
