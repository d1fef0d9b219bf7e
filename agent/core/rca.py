"""Root-cause candidates: rank the services of an incident by where the trouble most likely started.

Pure: per-service evidence (onset, peak calibrated score, breadth) and the call graph in, ranked candidates with
human-readable reasons out. The live agent feeds it an incident's signals; `aiops rca` feeds it scored CSVs.
The heuristic: a fault propagates from a callee up to its callers, so the root cause is an anomalous service
whose anomalous callers it can explain, that has no anomalous callee of its own that started earlier, that
started early, and that is strongly and broadly anomalous.

>>> ev = [Evidence("web", onset=120.0, peak=0.9), Evidence("db", onset=60.0, peak=0.95)]
>>> [c.service for c in rank(ev, [("web", "db")], target="web")]
['db', 'web']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol


@dataclass(frozen=True)
class Evidence:
    """What one service showed around the symptom: first anomalous time (None: never crossed the threshold),
    peak calibrated anomaly score in [0, 1], and how many of its metrics were anomalous out of how many."""

    service: str
    onset: float | None
    peak: float
    anomalous: int = 1
    metrics: int = 1


@dataclass(frozen=True)
class Weights:
    """How much each kind of evidence counts; `threshold` is the score from which a service is anomalous.

    The defaults are what leave-one-scenario-out picked on PetShop in the folds that hold out a scenario
    with a normal run (`bench/rca.py`; the temporal folds picked breadth 0): onset order and the
    dependency direction count through the `path` and `explains` terms (an anomalous call path from the
    symptom; anomalous callers that turned anomalous no earlier), not on their own."""

    strength: float = 1.0
    breadth: float = 0.5
    onset: float = 0.0
    direction: float = 0.0
    explains: float = 1.0
    path: float = 1.0
    threshold: float = 0.9


@dataclass(frozen=True)
class Candidate:
    service: str
    score: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"service": self.service, "score": round(self.score, 4), "reasons": list(self.reasons)}


def _callees(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for caller, callee in edges:
        if caller != callee:
            out.setdefault(caller, set()).add(callee)
    return out


def _reach(start: str, nexts: dict[str, set[str]]) -> set[str]:
    """Every node reachable from `start` (not counting `start` unless on a cycle)."""
    seen: set[str] = set()
    todo = list(nexts.get(start, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(nexts.get(n, ()))
    return seen


def _anomalous_path(target: str, callees: dict[str, set[str]], bad: set[str]) -> set[str]:
    """Services reached from the target through calls whose every hop is anomalous: the ways a fault
    could have travelled up to the symptom."""
    seen = {target} if target in bad else set()
    todo = [target]
    while todo:
        for c in callees.get(todo.pop(), ()):
            if c in bad and c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def rank(
    evidence: Iterable[Evidence],
    edges: Iterable[tuple[str, str]],
    target: str | None = None,
    weights: Weights | None = None,
) -> list[Candidate]:
    """Rank services best first. With a `target` (where the symptom shows) only the target and its transitive
    callees are candidates, since a fault reaches a caller only through calls. Services that never crossed
    the threshold are ranked last, by peak score."""
    w = weights or Weights()
    callees = _callees(edges)
    callers: dict[str, set[str]] = {}
    for a, bs in callees.items():
        for b in bs:
            callers.setdefault(b, set()).add(a)
    ev = {e.service: e for e in evidence}
    scope = set(ev)
    if target is not None:
        scope &= _reach(target, callees) | {target}
    bad = {s for s in scope if ev[s].onset is not None and ev[s].peak >= w.threshold}
    onsets = sorted({o for s in bad if (o := ev[s].onset) is not None})
    connected = _anomalous_path(target, callees, bad) if target is not None else bad
    out: list[Candidate] = []
    for s in scope:
        e = ev[s]
        if s not in bad:
            out.append(Candidate(s, 0.1 * e.peak, (f"not anomalous (peak score {e.peak:.2f})",)))
            continue
        assert e.onset is not None
        reasons = [f"peak anomaly score {e.peak:.2f}"]
        breadth = e.anomalous / max(e.metrics, 1)
        if e.metrics > 1:
            reasons.append(f"{e.anomalous} of {e.metrics} metrics anomalous")
        early = 1.0 if len(onsets) < 2 else 1.0 - onsets.index(e.onset) / (len(onsets) - 1)
        if len(onsets) > 1:
            order = onsets.index(e.onset) + 1
            reasons.append("first to turn anomalous" if order == 1 else f"turned anomalous {_nth(order)}")
        deeper = [c for c in callees.get(s, ()) if c in bad]
        earlier = sorted(c for c in deeper if (ev[c].onset or 0.0) <= e.onset)
        if not deeper:
            direction = 1.0
            reasons.append("no anomalous callee")
        else:
            direction = 1.0 - len(earlier) / len(deeper)
            if earlier:
                reasons.append(f"callee {', '.join(earlier[:3])} anomalous no later")
            else:
                reasons.append("anomalous before its anomalous callees")
        up = {u for u in _reach(s, callers) & bad if (ev[u].onset or 0.0) >= e.onset}
        explains = len(up) / max(len(bad) - 1, 1)
        if up:
            reasons.append(f"explains {len(up)} later anomalous caller(s) upstream")
        if target is not None and s != target:
            reasons.append(
                f"anomalous call path from {target}"
                if s in connected
                else f"no anomalous call path from {target}"
            )
        score = (
            w.path * (s in connected)
            + w.strength * e.peak
            + w.breadth * breadth
            + w.onset * early
            + w.direction * direction
            + w.explains * explains
        )
        out.append(Candidate(s, 1.0 + score, tuple(reasons)))
    out.sort(key=lambda c: (-c.score, c.service))
    return out


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class SignalLike(Protocol):
    service: str
    first_at: datetime
    peak_score: float


def signal_evidence(signals: Iterable[SignalLike]) -> list[Evidence]:
    """An incident's signals (each already anomalous) as per-service evidence: the earliest signal's start,
    the highest peak, and the number of signals as breadth."""
    per: dict[str, list[SignalLike]] = {}
    for s in signals:
        per.setdefault(s.service, []).append(s)
    return [
        Evidence(
            service,
            onset=min(_epoch(s.first_at) for s in sigs),
            peak=max(s.peak_score for s in sigs),
            anomalous=len(sigs),
            metrics=len(sigs),
        )
        for service, sigs in per.items()
    ]


def incident_root_causes(
    signals: Iterable[SignalLike], edges: Iterable[tuple[str, str]], weights: Weights | None = None
) -> list[Candidate]:
    """The ranking shown on an incident: only when its signals (with its children's) span two or more
    services. Signals are anomalous by construction, so nothing is filtered by the threshold; their onsets
    are at poll resolution and each crossed its detector's threshold, so onset order and the callee-first
    direction count on their own too (PetShop's 5-minute windows, where they did not help, are the offline
    default's evidence)."""
    evidence = signal_evidence(signals)
    if len(evidence) < 2:
        return []
    return rank(
        evidence, edges, weights=weights or replace(Weights(), threshold=0.0, onset=0.5, direction=1.0)
    )


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
