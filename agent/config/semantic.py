"""Second validation stage: cross-references between files, run only on a schema-valid config."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import detectors
from agent.config import yamlsrc
from agent.config.bundle import Config
from agent.core.detection import joint_enabled, joint_name
from agent.core.known_errors import WORKAROUND_RUNBOOK
from agent.core.params import ParamError, coerce, placeholders
from agent.errors import ConfigIssue
from integrations.actions import ACTIONS

LOG_SIGNALS = ("log_new_template", "log_rate_spike", "log_error_burst")

_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_semantics(config: Config, sources: dict[str, yamlsrc.Source]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    issues += _check_agent(config, sources["agent"])
    issues += _check_services(config, sources["services"])
    issues += _check_catalog(config, sources["catalog"])
    issues += _check_rules(config, sources["rules"])
    return issues


def _duplicates(names: Iterable[str]) -> set[str]:
    return {n for n, c in Counter(names).items() if c > 1}


def _check_agent(config: Config, src: yamlsrc.Source) -> list[ConfigIssue]:
    a = config.agent
    out = []
    dup = _duplicates(q.name for q in a.queries)
    service_names = {s.name for s in config.services.services}
    for i, q in enumerate(a.queries):
        if q.name in dup:
            out.append(src.issue(("queries", i, "name"), f"query name {q.name!r} is used more than once"))
        if q.detector is not None and q.detector not in a.detectors:
            known = ", ".join(sorted(a.detectors)) or "none"
            out.append(
                src.issue(
                    ("queries", i, "detector"), f"no detector profile {q.detector!r} (defined: {known})"
                )
            )
        if q.detector is None and not q.thresholds:
            out.append(src.issue(("queries", i), "query has neither a detector nor static thresholds"))
        if q.detector is None and q.joint:
            out.append(src.issue(("queries", i, "joint"), "joint scoring needs a detector; set `detector`"))
        if q.service is not None and q.service not in service_names:
            out.append(src.issue(("queries", i, "service"), f"unknown service {q.service!r}"))
        step = q.step or a.prometheus.step
        if step.total_seconds() <= 0:
            out.append(src.issue(("queries", i, "step"), "step must be positive"))
        interval = q.interval or a.prometheus.poll_interval
        if interval.total_seconds() <= 0:
            out.append(src.issue(("queries", i, "interval"), "interval must be positive"))
    source_dup = _duplicates(src_cfg.name for src_cfg in a.log_sources)
    query_names = {q.name for q in a.queries}
    for i, ls in enumerate(a.log_sources):
        if ls.name in source_dup:
            out.append(
                src.issue(("log_sources", i, "name"), f"log source name {ls.name!r} is used more than once")
            )
        if ls.name in query_names:
            out.append(
                src.issue(
                    ("log_sources", i, "name"), f"{ls.name!r} is also a query name; names must be unique"
                )
            )
        if ls.service is not None and ls.service not in service_names:
            out.append(src.issue(("log_sources", i, "service"), f"unknown service {ls.service!r}"))
    for name, profile in a.detectors.items():
        try:
            detectors.build(profile.kind, profile.params)
        except ValueError as e:
            out.append(src.issue(("detectors", name), str(e)))
    sink_dup = _duplicates(n.name for n in a.notifications)
    for i, sink in enumerate(a.notifications):
        if sink.name in sink_dup:
            out.append(
                src.issue(("notifications", i, "name"), f"sink name {sink.name!r} is used more than once")
            )
    secrets = [t.token.get_secret_value() for t in a.api.tokens]
    for i, t in enumerate(a.api.tokens):
        if secrets.count(t.token.get_secret_value()) > 1:
            out.append(src.issue(("api", "tokens", i, "token"), f"token of {t.name!r} is not unique"))
    for tier in {s.tier for s in config.services.services} - set(a.priority.tier_impact):
        out.append(
            src.issue(("priority", "tier_impact"), f"no impact level for tier {tier} used in services")
        )
    return out


def _check_services(config: Config, src: yamlsrc.Source) -> list[ConfigIssue]:
    services = config.services.services
    names = {s.name for s in services}
    out = []
    dup = _duplicates(s.name for s in services)
    for i, s in enumerate(services):
        if s.name in dup:
            out.append(src.issue(("services", i, "name"), f"service name {s.name!r} is used more than once"))
        for j, dep in enumerate(s.depends_on):
            if dep not in names:
                out.append(src.issue(("services", i, "depends_on", j), f"unknown service {dep!r}"))
            elif dep == s.name:
                out.append(src.issue(("services", i, "depends_on", j), "a service cannot depend on itself"))
        for j, sel in enumerate(s.selectors):
            if not sel.match and not sel.match_re:
                out.append(
                    src.issue(("services", i, "selectors", j), "empty selector would match every series")
                )
    cycle = _find_cycle({s.name: [d for d in s.depends_on if d in names] for s in services})
    if cycle:
        i = next(i for i, s in enumerate(services) if s.name == cycle[0])
        out.append(src.issue(("services", i, "depends_on"), f"dependency cycle: {' -> '.join(cycle)}"))
    return out


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def _check_catalog(config: Config, src: yamlsrc.Source) -> list[ConfigIssue]:
    out = []
    for name, rb in config.catalog.runbooks.items():
        if rb.action not in ACTIONS:
            known = ", ".join(sorted(ACTIONS))
            out.append(
                src.issue(("runbooks", name, "action"), f"unknown action {rb.action!r} (known: {known})")
            )
        for key in ("playbook", "rollback"):
            rel = getattr(rb, key)
            if rel is not None and not config.playbook_path(rel).is_file():
                path = config.playbook_path(rel)
                out.append(src.issue(("runbooks", name, key), f"playbook file not found: {path}"))
        for pname, spec in rb.params.items():
            if not _PARAM_NAME.match(pname) or pname.startswith("ansible_"):
                out.append(
                    src.issue(
                        ("runbooks", name, "params", pname),
                        "parameter names must be lower_snake_case and must not start with `ansible_` "
                        "(they become Ansible variables and could override connection settings)",
                    )
                )
            if spec.default is not None:
                try:
                    coerce(pname, spec.default, spec)
                except ParamError as e:
                    out.append(src.issue(("runbooks", name, "params", pname, "default"), str(e)))
    return out


def _check_rules(config: Config, src: yamlsrc.Source) -> list[ConfigIssue]:
    out = []
    services = {s.name for s in config.services.services}
    a = config.agent
    signals = {q.name for q in a.queries} | set(LOG_SIGNALS) | set(a.alertmanager.alertnames)
    signals |= {joint_name(q.name) for q in a.queries if joint_enabled(q, a.detection.joint)}
    dup = _duplicates(r.name for r in config.rules)
    for i, rule in enumerate(config.rules):
        at = ("rules", i)
        if rule.name in dup:
            out.append(src.issue((*at, "name"), f"rule name {rule.name!r} is used more than once"))
        for svc in rule.match.services:
            if svc not in services:
                out.append(src.issue((*at, "match", "service"), f"unknown service {svc!r}"))
        for j, sig in enumerate(rule.match.signals):
            if sig not in signals:
                known = ", ".join(sorted(signals))
                out.append(
                    src.issue(
                        (*at, "match", "signals", j),
                        f"no signal named {sig!r} (known: {known}; an Alertmanager alert's name goes "
                        "under alertmanager.alertnames in agent.yaml)",
                    )
                )
        if rule.runbook == WORKAROUND_RUNBOOK:
            continue  # the runbook is the known error's, checked against the catalog when recorded
        rb = config.catalog.runbooks.get(rule.runbook)
        if rb is None:
            known = ", ".join(sorted(config.catalog.runbooks)) or "none"
            out.append(
                src.issue(
                    (*at, "runbook"),
                    f"unknown runbook {rule.runbook!r} (catalog has: {known}; or {WORKAROUND_RUNBOOK}, "
                    "the workaround runbook of the incident's known error)",
                )
            )
            continue
        for pname, value in rule.params.items():
            spec = rb.params.get(pname)
            if spec is None:
                known = ", ".join(sorted(rb.params)) or "none"
                out.append(
                    src.issue(
                        (*at, "params", pname),
                        f"runbook {rule.runbook!r} takes no such parameter (takes: {known})",
                    )
                )
                continue
            try:
                if isinstance(value, str) and placeholders(value):
                    continue
                coerce(pname, value, spec)
            except ParamError as e:
                out.append(src.issue((*at, "params", pname), str(e)))
        for pname, spec in rb.params.items():
            if spec.required and spec.default is None and pname not in rule.params:
                out.append(src.issue((*at, "params"), f"runbook {rule.runbook!r} needs parameter {pname!r}"))
        if rule.verify is None and rb.verify is None:
            out.append(src.issue(at, f"no verification: set `verify` here or in runbook {rule.runbook!r}"))
    return out
