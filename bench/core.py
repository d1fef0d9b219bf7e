"""Correlation and rules under an alert storm: signals per CPU second, old release against this tree.

The workload (bench/workload.py): 1,000 services, 61 rules, one incident per service brought active
first, then an alert storm in batches of 100 (90% repeats of known label sets, 10% new ones on
existing services, some resolutions), dry-run. Only correlation and rules are timed (CPU time of the
process, `time.process_time`), never the store:

- new: `Core.handle(AlertsReceived(...))`, then what the store would do with the decisions (ids for
  new incidents and changes, `Core.committed`, and `IncidentsStored` for the incidents it opened), as
  agent/shell/runtime.py does around its commit;
- old (066d313 from a git worktree): `to_signals`, `Correlator.observe`/`clear`, `drain`, then for each
  touched incident `RuleEngine.matches` + `blocked_by_guards` and the change planned, against an
  in-memory change history with the old store's semantics (pending, attempts, cooldown).

Alertmanager's JSON is parsed into alert records before timing, in both. Each side runs in its own
process (same interpreter, PYTHONPATH set to its tree); runs alternate old/new and medians are reported.

    .venv/bin/python -m bench.core                              # 30,000 storm signals, 3 runs each
    .venv/bin/python -m bench.core --signals 100000 --profile   # the issue's size, and hotspots
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------------------------- workers
# Run by path in a fresh interpreter against one tree: stdlib imports at module level only.


def _load_spec(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def _config(spec: dict[str, Any]) -> Any:
    """The tree's Config built in memory from the workload (the old and new config models share it)."""
    import yaml

    import agent
    from agent.config import Config
    from agent.config.models import AgentConfig, Catalog, RulesFile, ServicesFile

    root = Path(agent.__file__).resolve().parent.parent
    catalog_file = root / "runbooks" / "catalog.yaml"
    return Config(
        agent=AgentConfig.model_validate(
            {"dry_run": True, "alertmanager": {"alertnames": spec["alertnames"]}}
        ),
        services=ServicesFile.model_validate({"services": spec["services"]}),
        rules=RulesFile.model_validate({"rules": spec["rules"]}).rules,
        catalog=Catalog.model_validate(yaml.safe_load(catalog_file.read_text())),
        agent_file=root / "config" / "agent.yaml",
        catalog_file=catalog_file,
    )


def _batches(spec: dict[str, Any], key: str, limit: int | None = None) -> list[tuple[datetime, list[Any]]]:
    from integrations.alertmanager import WebhookPayload

    out = []
    n = 0
    for b in spec[key]:
        alerts = b["alerts"] if limit is None else b["alerts"][: max(0, limit - n)]
        if not alerts:
            break
        n += len(alerts)
        out.append(
            (datetime.fromisoformat(b["at"]), WebhookPayload.model_validate({"alerts": alerts}).records())
        )
    return out


def _timed(run: Any, batches: list[tuple[datetime, list[Any]]], profile: str | None) -> tuple[float, float]:
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for at, alerts in batches:
        run(at, alerts)
    if profiler is not None:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    return cpu, wall


def worker_new(spec: dict[str, Any], signals: int, profile: str | None) -> dict[str, Any]:
    from agent.core.engine import Core
    from agent.core.events import AlertsReceived, IncidentsStored

    config = _config(spec)
    core = Core(config)
    incident_ids = itertools.count(1)
    change_ids = itertools.count(1)
    totals = {"changes": 0, "entries": 0}

    def apply(event: Any, now: datetime) -> None:
        """Runtime._apply without the store: what Committer.commit sets on the records, then committed."""
        out = core.handle(event, now)
        for inc in sorted((i for i in out.incidents.values() if i.id is None), key=lambda i: i.ref):
            inc.id = next(incident_ids)
        for inc in out.incidents.values():
            parent = out.incidents.get(inc.parent_ref) if inc.parent_ref is not None else None
            if inc.parent_id is None and parent is not None:
                inc.parent_id = parent.id
        for new in out.changes:
            new.id = next(change_ids)
        core.committed(out, {}, set())
        totals["changes"] += len(out.changes)
        totals["entries"] += len(out.timeline)
        if out.opened:
            apply(IncidentsStored(tuple(inc.ref for inc in out.opened)), now)

    def run(at: datetime, alerts: list[Any]) -> None:
        apply(AlertsReceived(alerts, "api:bench"), at)

    opening = _batches(spec, "opening")
    storm = _batches(spec, "storm", signals)
    open_cpu, _ = _timed(run, opening, None)
    opened = dict(totals)
    cpu, wall = _timed(run, storm, profile)
    made = {k: totals[k] - opened[k] for k in totals}
    return _result("new", storm, (cpu, wall, open_cpu), core.correlator.active(), made)


def worker_old(spec: dict[str, Any], signals: int, profile: str | None) -> dict[str, Any]:
    from agent.alerts import to_signals
    from agent.correlation import Correlator
    from agent.domain import ChangeStatus, IncidentStatus, TimelineEntry
    from agent.params import ParamError
    from agent.priority import PriorityPolicy
    from agent.rules import History, RuleEngine, blocked_by_guards
    from agent.topology import ServiceMap

    config = _config(spec)
    a = config.agent
    services = ServiceMap(config.services)
    correlator = Correlator(
        services, PriorityPolicy(a.priority, a.correlation.breadth_instances), a.correlation
    )
    rules = RuleEngine(config.rules, config.catalog)
    history = _OldChanges(ChangeStatus)
    skip_notes: dict[tuple[int, str], str] = {}
    entries: list[Any] = []
    totals = {"changes": 0, "entries": 0}

    def note_skip(inc: Any, rule: str, reason: str, now: datetime) -> None:
        kind = reason.split(" ", 1)[0]
        if skip_notes.get((inc.id, rule)) == kind:
            return
        skip_notes[(inc.id, rule)] = kind
        entries.append(
            TimelineEntry(
                inc.id, now, "remediation_skipped", "agent", f"rule {rule}: {reason}", {"rule": rule}
            )
        )

    def consider_rules(inc: Any, now: datetime) -> None:
        """Agent._consider_rules of 066d313, with the store's change queries answered from memory."""
        if history.pending_for_incident(inc.id):
            return
        for rule, trigger in rules.matches(inc):
            h = History(
                pending=False,
                attempts=history.attempts(inc.id, rule.name),
                last_change_at=history.last_for(rule.name, inc.service),
            )
            blocked = blocked_by_guards(rule, h, now)
            if blocked is not None:
                note_skip(inc, rule.name, blocked, now)
                continue
            try:
                plan = rules.plan(rule, inc, trigger)
            except ParamError as e:
                note_skip(inc, rule.name, f"parameters refused: {e}", now)
                continue
            change_id = history.create(inc, plan, h.attempts + 1, now, config)
            params = ", ".join(f"{k}={v!r}" for k, v in plan.shown_params.items())
            entries.append(
                TimelineEntry(
                    inc.id,
                    now,
                    "rule_matched",
                    "agent",
                    f"rule {plan.rule.name} -> runbook {plan.runbook_name}({params})",
                    {"rule": plan.rule.name},
                )
            )
            entries.append(
                TimelineEntry(
                    inc.id,
                    now,
                    "change_created",
                    "agent",
                    f"change #{change_id}: dry-run: recorded, not executed",
                    {"change_id": change_id},
                )
            )
            totals["changes"] += 1
            return

    def run(at: datetime, alerts: list[Any]) -> None:
        """Agent.receive_alerts -> _correlate -> _commit of 066d313, without the store writes."""
        sigs, clears = to_signals(alerts, services)
        for sig in sigs:
            correlator.observe(sig, at)
        for clear in clears:
            correlator.clear(clear)
        out = correlator.drain()
        if not out:
            return
        totals["entries"] += len(out.entries)
        for inc in out.touched.values():
            if inc.status is IncidentStatus.RESOLVED:
                for key in [k for k in skip_notes if k[0] == inc.id]:
                    del skip_notes[key]
            elif inc.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
                consider_rules(inc, at)

    opening = _batches(spec, "opening")
    storm = _batches(spec, "storm", signals)
    open_cpu, _ = _timed(run, opening, None)
    totals["entries"] += len(entries)
    entries.clear()
    opened = dict(totals)
    cpu, wall = _timed(run, storm, profile)
    totals["entries"] += len(entries)
    made = {k: totals[k] - opened[k] for k in totals}
    return _result("old", storm, (cpu, wall, open_cpu), correlator.active(), made)


class _OldChanges:
    """The old ChangeRepo's answers to the rule guards (pending, attempts, last_for), from memory."""

    def __init__(self, status: Any):
        self.S = status
        self.pending = {status.AWAITING_APPROVAL, status.APPROVED, status.RUNNING, status.VERIFYING}
        self.not_attempts = {status.REJECTED, status.CANCELLED, status.DRY_RUN}
        self.by_incident: dict[int, list[tuple[str, Any]]] = {}
        self.last: dict[tuple[str, str], datetime] = {}
        self.records: list[dict[str, Any]] = []

    def pending_for_incident(self, incident_id: int) -> list[tuple[str, Any]]:
        return [c for c in self.by_incident.get(incident_id, []) if c[1] in self.pending]

    def attempts(self, incident_id: int, rule: str) -> int:
        return sum(
            1 for r, s in self.by_incident.get(incident_id, []) if r == rule and s not in self.not_attempts
        )

    def last_for(self, rule: str, service: str) -> datetime | None:
        return self.last.get((rule, service))

    def create(self, inc: Any, plan: Any, attempt: int, now: datetime, config: Any) -> int:
        status = self.S.DRY_RUN
        self.records.append(
            {
                "incident_id": inc.id,
                "rule": plan.rule.name,
                "service": inc.service,
                "runbook": plan.runbook_name,
                "playbook": str(config.playbook_path(plan.runbook.playbook)),
                "change_type": plan.change_type.value,
                "risk": plan.runbook.risk,
                "status": status.value,
                "attempt": attempt,
                "params": plan.shown_params,
                "reason": f"rule {plan.rule.name} matched signal {plan.trigger.name} (priority {inc.priority})",
                "created_at": now,
                "verify_promql": plan.verify.promql,
                "verify_deadline_s": plan.verify.deadline.total_seconds(),
            }
        )
        self.by_incident.setdefault(inc.id, []).append((plan.rule.name, status))
        self.last[(plan.rule.name, inc.service)] = now
        return len(self.records)


def _result(
    side: str,
    storm: list[tuple[datetime, list[Any]]],
    seconds: tuple[float, float, float],
    active: list[Any],
    made: dict[str, int],
) -> dict[str, Any]:
    """The numbers of one side: `seconds` is (storm CPU, storm wall, opening CPU); `active` the
    incidents still open, each with its `signals`."""
    cpu, wall, open_cpu = seconds
    n = sum(len(alerts) for _, alerts in storm)
    return {
        "side": side,
        "signals": n,
        "cpu_s": cpu,
        "wall_s": wall,
        "signals_per_cpu_s": n / cpu if cpu else float("inf"),
        "opening_cpu_s": open_cpu,
        "active_incidents": len(active),
        "signals_held": sum(len(i.signals) for i in active),
        "changes_made": made["changes"],
        "timeline_entries": made["entries"],
    }


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["old", "new"], required=True)
    p.add_argument("--spec", required=True)
    p.add_argument("--signals", type=int, required=True)
    p.add_argument("--profile")
    args = p.parse_args(argv)
    spec = _load_spec(args.spec)
    run = worker_new if args.worker == "new" else worker_old
    print(json.dumps(run(spec, args.signals, args.profile)))


# ---------------------------------------------------------------------------------------- parent


def write_spec(path: Path, services: int, signals: int, batch: int, selector_share: float) -> None:
    from bench.workload import ALERTNAMES, Workload

    w = Workload(services=services, signals=signals, batch=batch, selector_share=selector_share)
    spec = {
        "alertnames": ALERTNAMES,
        "services": w.services(),
        "rules": w.rules(),
        "opening": [{"at": b.at.isoformat(), "alerts": b.alerts} for b in w.opening()],
        "storm": [{"at": b.at.isoformat(), "alerts": b.alerts} for b in w.storm()],
    }
    path.write_text(json.dumps(spec))


def shorten(text: str) -> str:
    """Profile output with paths relative to the repo or to site-packages."""
    import re

    text = text.replace(str(HERE.parent.parent) + "/", "")
    return re.sub(r"\S*/(site-packages|lib/python3\.\d+)/", "", text)


def print_profile(path: str, top: int) -> dict[str, list[str]]:
    import io
    import pstats

    out: dict[str, list[str]] = {}
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(path, stream=buf).sort_stats(key).print_stats(top)
        text = shorten(buf.getvalue())
        start = text.find("   ncalls")
        print(f"\nnew code, top {top} by {key}:\n{text[start:].rstrip()}")
        out[key] = text[start:].rstrip().splitlines()
    return out


def main() -> None:
    from bench.baseline import alternate, comparison_parser, medians, ratio, run_worker, trees_or_skip

    p = comparison_parser(__doc__)
    p.add_argument("--services", type=int, default=1_000)
    p.add_argument("--signals", type=int, default=30_000, help="storm signals (the issue's size: 100,000)")
    p.add_argument(
        "--old-signals", type=int, help="storm signals for the old code, a prefix (default: the same)"
    )
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--selector-share", type=float, default=0.0, help="alerts mapped by selectors, not a label"
    )
    p.add_argument(
        "--profile", nargs="?", const="-", help="cProfile the new code's storm (FILE.prof to keep)"
    )
    args = p.parse_args()
    args.old_signals = args.old_signals or args.signals
    both = trees_or_skip(args)
    if both is None:
        return
    old, new = both
    with tempfile.TemporaryDirectory(prefix="aiops-bench-core-") as tmp:
        spec = Path(tmp) / "spec.json"
        write_spec(spec, args.services, max(args.signals, args.old_signals), args.batch, args.selector_share)
        print(
            f"{args.services:,} services, 61 rules, {args.services:,} incidents opened first, then an alert "
            f"storm in batches of {args.batch}: new {args.signals:,} signals, old ({old.revision}) "
            f"{args.old_signals:,}; {args.repeat} run(s) each, alternating",
            flush=True,
        )
        runs = alternate(
            args.repeat,
            [(old, args.old_signals), (new, args.signals)],
            lambda tree, n, _: run_worker(
                tree, HERE, ["--worker", tree.name, "--spec", str(spec), "--signals", str(n)]
            ),
            lambda r: (
                f"{r['signals_per_cpu_s']:,.0f} signals/s ({r['signals']:,} in {r['cpu_s']:.2f} s CPU; "
                f"{r['active_incidents']:,} active incidents, {r['signals_held']:,} signals held, "
                f"{r['changes_made']} changes)"
            ),
        )
        result: dict[str, Any] = {"runs": runs}
        if args.repeat:
            med = medians(runs, "signals_per_cpu_s")
            print(
                f"\nmedian signals per CPU second: old {med['old']:,.0f}, new {med['new']:,.0f}, "
                f"ratio {ratio(med['new'], med['old']):.1f}x (target >= 50,000)"
            )
            result.update(median=med, ratio=ratio(med["new"], med["old"]))
        if args.profile:
            prof = str(Path(tmp) / "core.prof") if args.profile == "-" else args.profile
            run_worker(
                new,
                HERE,
                ["--worker", "new", "--spec", str(spec), "--signals", str(args.signals), "--profile", prof],
            )
            result["profile"] = print_profile(prof, args.top)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main(sys.argv[1:])
    else:
        main()
