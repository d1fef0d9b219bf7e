"""Co-occurrence candidates: incidents of two signatures, on different services, that open within
`cooccurrence_window` of each other more often than their own rates predict are probably one problem;
so are three signatures whose pairs all are, opening all together often enough.

The count is of matched co-occurrences: each opening of one signature is paired with at most one
opening of the other (the earliest unpaired one within the window), so a burst of one signature next
to a single opening of the other counts once; three openings make a triple when each two of them are
paired. The expected count is what independent incidents at uniform times would give, from each
signature's number of openings `n` over the last `cooccurrence_horizon` `T` and `r = w / T`:
`n_a n_b (2r - r^2)` for a pair, `n_a n_b n_c (3r^2 - 2r^3)` for a triple (the chance that their
times span at most the window). When the history is shorter than the horizon, `T` is the time since
the first opening seen, which overestimates the rates and so errs towards raising nothing. Matched
co-occurrences never outnumber all coincidences, so the one-sided Poisson p-value `P(X >= count)` is
on the cautious side too. Lift is `count / expected`.

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

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

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
class _Group:
    """The co-occurrences of two (or three) signatures counted over the horizon."""

    matches: deque[tuple[_Opening, ...]] = field(default_factory=deque)  # each oldest first
    last: dict[str, int] = field(default_factory=dict)  # pairs: signature -> seq of its last paired opening
    partner: dict[int, _Opening] = field(default_factory=dict)  # pairs: seq -> the opening it is paired with

    def prune(self, since: datetime) -> None:
        while self.matches and self.matches[0][-1].at < since:
            for o in self.matches.popleft():
                self.partner.pop(o.seq, None)


@dataclass(frozen=True)
class Cooccurring:
    """Signatures that co-occur: `count` times within the window over the horizon against the
    `expected` count of independent incidents, their `lift` and one-sided `p_value`."""

    signatures: tuple[str, ...]  # sorted: two, or three that co-occur pairwise and all together
    services: tuple[str, ...]  # in the order of `signatures`
    count: int
    expected: float
    lift: float
    p_value: float
    incidents: tuple[Held, ...]  # those of the co-occurrences counted, oldest first
    first_at: datetime
    last_at: datetime

    @property
    def signature(self) -> str:
        """The candidate's stable key (a recurrence candidate's is the incident signature itself)."""
        return " + ".join(self.signatures)

    def link(self, at: datetime, note: Held) -> ProblemLink:
        title = (
            f"{', '.join(self.signatures)} co-occurring ({self.count}x within the window, "
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


Key = tuple[str, ...]  # sorted signatures


class Cooccurrence:
    """Openings of the last horizon per signature and the co-occurrences matched between signatures,
    kept in memory (loaded from the store at start) so an opening costs a look at the last window only."""

    def __init__(self, config: ProblemConfig):
        self.config = config
        self._recent: deque[_Opening] = deque()  # all openings of the last window
        self._by_signature: dict[str, deque[_Opening]] = {}  # openings of the last horizon
        self._services: dict[str, str] = {}
        self._groups: dict[Key, _Group] = {}  # pairs and triples
        self._first: datetime | None = None
        self._seq = 0
        self._unbound: dict[int, _Opening] = {}  # incident ref -> its opening, until the store names it

    def load(self, openings: Iterable[Opening]) -> None:
        """Openings of the last horizon from the store (raising nothing for them)."""
        for o in sorted(openings, key=lambda o: (o.at, o.id)):
            self._record(o.signature, o.service, o.at, o.id)

    def opened(self, inc: IncidentState, now: datetime) -> list[Cooccurring]:
        """Record an opening; the pairs and triples it completed that are now candidates."""
        opening, keys = self._record(inc.signature, inc.service, inc.opened_at, inc)
        self._unbound[inc.ref] = opening
        return [c for key in keys if (c := self._judge(key, now)) is not None]

    def bound(self, inc: IncidentState) -> None:
        """The store gave `inc` its id: hold the id rather than the incident."""
        opening = self._unbound.pop(inc.ref, None)
        if opening is not None and inc.id is not None:
            opening.incident = inc.id

    def candidates(self, now: datetime) -> list[Cooccurring]:
        """Every pair and triple that is a candidate at `now`, most significant first."""
        found = [c for key in list(self._groups) if (c := self._judge(key, now)) is not None]
        return sorted(found, key=lambda c: (c.p_value, c.signature))

    def prune(self, now: datetime) -> None:
        """Let go of openings and co-occurrences older than the horizon (on the housekeeping tick)."""
        since = now - self.config.cooccurrence_horizon
        for signature in list(self._by_signature):
            if not _prune(self._by_signature[signature], since):
                del self._by_signature[signature]
        for key in list(self._groups):
            self._groups[key].prune(since)
            if not self._groups[key].matches:
                del self._groups[key]
        self._unbound = {ref: o for ref, o in self._unbound.items() if o.at >= since}

    def _record(
        self, signature: str, service: str, at: datetime, incident: Held
    ) -> tuple[_Opening, list[Key]]:
        """Pair the opening with the earliest unpaired opening of each other signature (other service)
        in the window; two such pairs whose partners are paired with each other make a triple."""
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
            pair = self._groups.get(_key(signature, other.signature))
            if pair is None or other.seq > pair.last.get(other.signature, -1):
                partners[other.signature] = other
        keys = []
        for other in partners.values():
            key = _key(signature, other.signature)
            pair = self._groups.setdefault(key, _Group())
            pair.matches.append((other, opening))
            pair.last[other.signature] = other.seq
            pair.last[signature] = opening.seq
            pair.partner[other.seq] = opening
            pair.partner[opening.seq] = other
            keys.append(key)
        for i, b in enumerate(partners.values()):
            for c in list(partners.values())[i + 1 :]:
                between = self._groups.get(_key(b.signature, c.signature))
                if b.service != c.service and between is not None and between.partner.get(b.seq) is c:
                    key = _key(signature, b.signature, c.signature)
                    self._groups.setdefault(key, _Group()).matches.append(
                        tuple(sorted((b, c, opening), key=_seq))
                    )
                    keys.append(key)
        self._recent.append(opening)
        self._by_signature.setdefault(signature, deque()).append(opening)
        self._services[signature] = service
        return opening, keys

    def _judge(self, key: Key, now: datetime) -> Cooccurring | None:
        c = self.config
        since = now - c.cooccurrence_horizon
        group = self._groups.get(key)
        if group is None:  # a pair of a triple, let go with its last co-occurrence
            return None
        group.prune(since)
        count = len(group.matches)
        if count < c.cooccurrence_min_count or self._first is None:
            return None
        if len(key) > 2 and any(self._judge(_key(a, b), now) is None for a, b in combinations(key, 2)):
            return None  # a set is a candidate only where each of its pairs is one
        span = min(c.cooccurrence_horizon, now - self._first).total_seconds()
        r = min(1.0, c.cooccurrence_window.total_seconds() / span) if span > 0 else 1.0
        k = len(key)
        expected = math.prod(len(_prune(self._by_signature.get(s, deque()), since)) for s in key) * (
            k * r ** (k - 1) - (k - 1) * r**k  # P(k independent uniform times span at most the window)
        )
        p_value = float(pdtrc(count - 1, expected))  # P(X >= count), X ~ Poisson(expected)
        if p_value > c.cooccurrence_max_p:
            return None
        incidents = sorted({o.seq: o for m in group.matches for o in m}.values(), key=_seq)
        return Cooccurring(
            signatures=key,
            services=tuple(self._services[s] for s in key),
            count=count,
            expected=expected,
            lift=count / expected,
            p_value=p_value,
            incidents=tuple(o.incident for o in incidents),
            first_at=group.matches[0][-1].at,
            last_at=group.matches[-1][-1].at,
        )


def candidates(openings: Iterable[Opening], config: ProblemConfig, now: datetime) -> list[Cooccurring]:
    """The co-occurrence candidates a history of openings raises at `now` (most significant first)."""
    tracker = Cooccurrence(config)
    tracker.load(openings)
    return tracker.candidates(now)


def _key(*signatures: str) -> Key:
    return tuple(sorted(signatures))


def _seq(o: _Opening) -> int:
    return o.seq


def _prune(openings: deque[_Opening], since: datetime) -> deque[_Opening]:
    while openings and openings[0].at < since:
        openings.popleft()
    return openings
