"""The service catalog as a light CMDB: which service a series belongs to, and who depends on whom."""

from __future__ import annotations

import re
from collections.abc import Mapping

from agent.config.models import ServicesFile

UNMAPPED = "unmapped"


class ServiceMap:
    """Label selectors map series to services (first matching service in file order wins).

    >>> from agent.config.models import Service, Selector
    >>> m = ServiceMap(ServicesFile(services=[
    ...     Service(name="api", tier=1, depends_on=["db"], selectors=[Selector(match={"job": "api"})]),
    ...     Service(name="db", tier=1, selectors=[Selector(match_re={"job": "pg.*"})])]))
    >>> m.service_for({"job": "pg-main"}), sorted(m.dependencies("api")), sorted(m.dependents("db"))
    ('db', ['db'], ['api'])
    """

    def __init__(self, services: ServicesFile):
        self._services = {s.name: s for s in services.services}
        self._selectors = [
            (s.name, dict(sel.match), {k: re.compile(v) for k, v in sel.match_re.items()})
            for s in services.services
            for sel in s.selectors
        ]
        # Selectors with an exact matcher are found through one of its (label, value) pairs; the rest
        # are tried always. A lookup then tries a handful of selectors, not the whole catalog.
        self._by_pair: dict[tuple[str, str], list[int]] = {}
        self._always: list[int] = []
        for i, (_, exact, _) in enumerate(self._selectors):
            if exact:
                self._by_pair.setdefault(next(iter(exact.items())), []).append(i)
            else:
                self._always.append(i)
        self._deps = {s.name: set(s.depends_on) for s in services.services}
        reverse: dict[str, set[str]] = {}
        for name, deps in self._deps.items():
            for d in deps:
                reverse.setdefault(d, set()).add(name)
        self._upstream = {name: frozenset(self._closure(name, self._deps)) for name in self._deps}
        self._downstream = {name: frozenset(self._closure(name, reverse)) for name in self._deps}

    def known(self, service: str) -> bool:
        return service in self._services

    def service_for(self, labels: Mapping[str, str]) -> str | None:
        candidates = list(self._always)
        for pair in labels.items():
            candidates += self._by_pair.get(pair, ())
        for i in sorted(candidates):  # the first matching selector in file order wins
            name, exact, regex = self._selectors[i]
            if all(labels.get(k) == v for k, v in exact.items()) and all(
                r.fullmatch(labels.get(k, "")) for k, r in regex.items()
            ):
                return name
        return None

    def tier(self, service: str) -> int:
        svc = self._services.get(service)
        return svc.tier if svc else max((s.tier for s in self._services.values()), default=3)

    def owner(self, service: str) -> str:
        svc = self._services.get(service)
        return svc.owner if svc else ""

    def dependencies(self, service: str) -> frozenset[str]:
        """Everything `service` depends on, directly or transitively."""
        return self._upstream.get(service, frozenset())

    def dependents(self, service: str) -> frozenset[str]:
        """Everything that depends on `service`, directly or transitively."""
        return self._downstream.get(service, frozenset())

    @staticmethod
    def _closure(start: str, graph: Mapping[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen and n != start:
                seen.add(n)
                todo.extend(graph.get(n, ()))
        return seen
