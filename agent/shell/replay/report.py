"""What a replay found, as one JSON document (SPEC "Replay") or a summary for people, and the difference
between two rule sets replayed over the same history (shadow mode)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from agent.core.domain import ChangeStatus
from agent.shell import views
from agent.shell.replay.history import Stats
from agent.shell.replay.run import Replayed
from agent.shell.store import Store

_ALL = 1_000_000


def document(replayed: Replayed, since: float, until: float, stats: Stats) -> dict[str, Any]:
    store = replayed.store
    incidents = [
        _incident(store, row) for row in sorted(store.incidents.list(limit=_ALL), key=lambda i: i.id or 0)
    ]
    changes = [c for i in incidents for c in i["changes"]]
    statuses = Counter(c["status"] for c in changes)
    span = until - since
    return {
        "since": _iso(since),
        "until": _iso(until),
        "incidents": incidents,
        "problem_candidates": _candidates(store, datetime.fromtimestamp(until, UTC)),
        "totals": {
            "incidents": len(incidents),
            "by_priority": dict(sorted(Counter(i["priority"] for i in incidents).items())),
            "changes": len(changes),
            "changes_by_status": dict(sorted(statuses.items())),
            "would_run": sum(1 for c in changes if c["approval"] == "auto"),
            "awaiting_approval": statuses.get(ChangeStatus.AWAITING_APPROVAL.value, 0),
            "verified": statuses.get(ChangeStatus.SUCCEEDED.value, 0),
            "failed": statuses.get(ChangeStatus.FAILED.value, 0),
            "series": stats.series,
            "points": stats.points,
            "log_lines": stats.lines,
            "events": replayed.events,
            "replayed_seconds": span,
            "wall_seconds": round(replayed.wall_seconds, 3),
            "speedup": round(span / replayed.wall_seconds, 1) if replayed.wall_seconds > 0 else None,
            "skipped_sources": stats.skipped_sources,
        },
    }


def _candidates(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Costliest first, each with its cost and trend as of the end of the replay (as `aiops problems list`)."""
    rows = store.problems.list(limit=_ALL)
    incidents, changes = store.problems.costing([p.id or 0 for p in rows])
    out = []
    for p in rows:
        measured = views.problem_measures(incidents[p.id or 0], changes, now)
        out.append(_candidate(p) | {"cost": measured["cost"], "trend": measured["trend"]})
    return sorted(out, key=lambda c: -c["cost"]["total"])


def _candidate(p: Any) -> dict[str, Any]:
    out = {
        "kind": p.kind,
        "services": p.services or [p.service],
        "signatures": p.signatures or [p.signature],
        "count": p.occurrences,
        "first_seen": p.first_seen.isoformat(),
        "last_seen": p.last_seen.isoformat(),
        "title": p.title,
    }
    if p.kind == "cooccurrence":
        out |= {"expected": p.expected, "lift": p.lift, "p_value": p.p_value}
    return out


def _incident(store: Store, row: Any) -> dict[str, Any]:
    timeline = store.incidents.timeline(row.id)
    matched = sorted(
        {
            str(e.data["rule"])
            for e in timeline
            if e.kind in ("rule_matched", "remediation_skipped") and "rule" in e.data
        }
    )
    return {
        "id": row.id,
        "service": row.service,
        "signature": row.signature,
        "priority": row.priority.value,
        "title": row.title,
        "status": row.status.value,
        "opened_at": row.opened_at.isoformat(),
        "started_at": row.started_at.isoformat(),
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "resolution": row.resolution,
        "signals": [
            {
                "name": s.name,
                "labels": s.labels,
                "source": s.source,
                "detector": s.detector,
                "severity": s.severity.value,
                "first_at": s.first_at.isoformat(),
                "last_at": s.last_at.isoformat(),
                "count": s.count,
                "peak_score": s.peak_score,
            }
            for s in store.incidents.signals(row.id)
        ],
        "rules_matched": matched,
        "held_back": [e.reason for e in timeline if e.kind in ("remediation_skipped", "remediation_held")],
        "muted": sorted({e.reason for e in timeline if e.kind == "signal_muted"}),
        "changes": [
            {
                "id": c.id,
                "rule": c.rule,
                "runbook": c.runbook,
                "params": c.params,
                "change_type": c.change_type,
                "approval": "auto" if c.decided_by.startswith("agent") else "required",
                "status": c.status.value,
                "created_at": c.created_at.isoformat(),
                "outcome": c.outcome,
            }
            for c in sorted(store.changes.list(incident_id=row.id, limit=_ALL), key=lambda c: c.id or 0)
        ],
    }


def shadow(baseline: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """How the candidate rule set's plans differ from the baseline's, incident by incident (incidents are
    matched by service, signature and first signal: the same anomalies under both rule sets)."""

    def key(i: dict[str, Any]) -> tuple[str, str, str]:
        return (i["service"], i["signature"], i["started_at"])

    def plans(i: dict[str, Any]) -> list[str]:
        return [f"{c['runbook']} ({c['rule']}, {c['approval']})" for c in i["changes"]]

    before = {key(i): i for i in baseline["incidents"]}
    after = {key(i): i for i in candidate["incidents"]}
    differences = []
    for k in sorted(before.keys() | after.keys(), key=lambda k: (k[2], k[0])):
        old, new = before.get(k), after.get(k)
        old_plans, new_plans = plans(old) if old else [], plans(new) if new else []
        if old_plans != new_plans or (old is None) != (new is None):
            differences.append(
                {
                    "service": k[0],
                    "started_at": k[2],
                    "baseline": old_plans if old else None,
                    "candidate": new_plans if new else None,
                }
            )
    return {"baseline_totals": baseline["totals"], "differences": differences}


def summary(doc: dict[str, Any]) -> str:
    """The document for people: one line per incident and its plans, then the totals."""
    t = doc["totals"]
    out = [
        f"replay {doc['since']} .. {doc['until']}: {t['incidents']} incidents, {t['changes']} changes planned"
    ]
    for i in doc["incidents"]:
        resolved = f"resolved {i['resolved_at']}" if i["resolved_at"] else i["status"]
        out.append(
            f"  #{i['id']} [{i['priority']}] {i['service']}: {i['title']} (opened {i['opened_at']}, {resolved})"
        )
        for c in i["changes"]:
            out.append(
                f"      {c['rule']} -> {c['runbook']} {c['params']} [{c['approval']}] {c['status']}: {c['outcome']}"
            )
        for held in i["held_back"]:
            out.append(f"      held back: {held}")
    for p in doc["problem_candidates"]:
        out.append(f"  problem candidate ({p['kind']}): {p['title']}")
        if p["kind"] == "cooccurrence":
            out.append(
                f"      {' + '.join(p['services'])}: {p['count']} co-occurrences, {p['expected']:.3g} "
                f"expected, lift {p['lift']:.1f}, p-value {p['p_value']:.2e}"
            )
    out.append(
        f"totals: by priority {t['by_priority'] or '-'}; would run {t['would_run']}, await approval "
        f"{t['awaiting_approval']}, verified on history {t['verified']}, failed {t['failed']}; "
        f"{t['series']} series, {t['points']} points, {t['log_lines']} log lines in {t['wall_seconds']}s "
        f"({t['speedup']}x real time)"
    )
    for skipped in t["skipped_sources"]:
        out.append(f"not replayed: {skipped}")
    if t.get("silences_applied") or t.get("switches_applied"):
        out.append(
            f"applied as recorded in the live store: {t['silences_applied']} silence(s), "
            f"{t['switches_applied']} pause/resume(s)"
        )
    out += doc.get("notes", [])
    if "shadow" in doc:
        diffs = doc["shadow"]["differences"]
        out.append(f"shadow: {len(diffs)} incident(s) planned differently by the candidate rules")
        for d in diffs:
            out.append(f"  {d['service']} at {d['started_at']}: {d['baseline']} -> {d['candidate']}")
    return "\n".join(out)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
