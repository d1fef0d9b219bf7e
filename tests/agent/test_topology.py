"""The service catalog as a light CMDB: selectors map series to services; depends_on is the topology."""

from __future__ import annotations

import pytest

from agent.config.models import Selector, Service, ServicesFile
from agent.core.topology import ServiceMap


def service(
    name: str, *selectors: Selector, tier: int = 2, depends_on: tuple[str, ...] = (), owner: str = ""
) -> Service:
    return Service(name=name, tier=tier, owner=owner, depends_on=list(depends_on), selectors=list(selectors))


def smap(*services: Service) -> ServiceMap:
    return ServiceMap(ServicesFile(services=list(services)))


def exact(**labels: str) -> Selector:
    return Selector(match=labels)


def regex(**patterns: str) -> Selector:
    return Selector(match_re=patterns)


# ---------------------------------------------------------------- selectors


def test_exact_selector() -> None:
    m = smap(service("web", exact(job="demo")))
    assert m.service_for({"job": "demo", "instance": "a:1"}) == "web"
    assert m.service_for({"job": "demo2"}) is None
    assert m.service_for({"instance": "a:1"}) is None


def test_every_matcher_of_a_selector_must_hold() -> None:
    sel = Selector(match={"job": "demo", "env": "prod"}, match_re={"instance": r"10\..*"})
    m = smap(service("web", sel))
    assert m.service_for({"job": "demo", "env": "prod", "instance": "10.0.0.1:80"}) == "web"
    assert m.service_for({"job": "demo", "env": "prod", "instance": "192.168.0.1:80"}) is None
    assert m.service_for({"job": "demo", "env": "dev", "instance": "10.0.0.1:80"}) is None


def test_regex_selector_is_anchored_like_promql() -> None:
    m = smap(service("monitoring", regex(job="prometheus|aiops")))
    assert m.service_for({"job": "aiops"}) == "monitoring"
    assert m.service_for({"job": "prometheus"}) == "monitoring"
    assert m.service_for({"job": "aiops-canary"}) is None
    assert m.service_for({"job": "my-prometheus"}) is None


def test_any_selector_of_a_service_may_match() -> None:
    m = smap(service("db", exact(job="postgres"), regex(job="pgbouncer-.*")))
    assert m.service_for({"job": "postgres"}) == "db"
    assert m.service_for({"job": "pgbouncer-1"}) == "db"


def test_first_matching_service_in_file_order_wins() -> None:
    specific = service("checkout", exact(job="api", handler="/checkout"))
    broad = service("api", regex(job="api"))
    assert smap(specific, broad).service_for({"job": "api", "handler": "/checkout"}) == "checkout"
    assert smap(broad, specific).service_for({"job": "api", "handler": "/checkout"}) == "api"
    assert smap(specific, broad).service_for({"job": "api", "handler": "/cart"}) == "api"


def test_service_without_selectors_maps_nothing() -> None:
    assert smap(service("lonely")).service_for({"job": "lonely"}) is None


# ---------------------------------------------------------------- tiers and owners


def test_tier_and_owner() -> None:
    m = smap(service("web", tier=1, owner="team-web"), service("batch", tier=3))
    assert (m.tier("web"), m.owner("web")) == (1, "team-web")
    assert m.tier("unknown") == 3  # unknown services count as the least critical tier in the catalog
    assert m.owner("unknown") == ""
    assert smap().tier("anything") == 3


# ---------------------------------------------------------------- topology


@pytest.fixture
def shop() -> ServiceMap:
    """web -> api -> {db, cache}; db -> storage; batch -> db; monitoring stands alone."""
    return smap(
        service("web", depends_on=("api",)),
        service("api", depends_on=("db", "cache")),
        service("db", depends_on=("storage",)),
        service("cache"),
        service("storage"),
        service("batch", depends_on=("db",)),
        service("monitoring"),
    )


def test_dependencies_are_transitive(shop: ServiceMap) -> None:
    assert shop.dependencies("web") == {"api", "db", "cache", "storage"}
    assert shop.dependencies("api") == {"db", "cache", "storage"}
    assert shop.dependencies("batch") == {"db", "storage"}
    assert shop.dependencies("storage") == set()


def test_dependents_are_transitive(shop: ServiceMap) -> None:
    assert shop.dependents("storage") == {"db", "api", "web", "batch"}
    assert shop.dependents("cache") == {"api", "web"}
    assert shop.dependents("web") == set()


def test_unrelated_and_unknown_services(shop: ServiceMap) -> None:
    assert shop.dependencies("monitoring") == shop.dependents("monitoring") == set()
    assert shop.dependencies("nope") == shop.dependents("nope") == set()


def test_closure_terminates_on_a_cycle_and_excludes_the_start() -> None:
    """check-config refuses cycles; the closure must still never loop or list a service as its own dependency."""
    m = smap(
        service("a", depends_on=("b",)), service("b", depends_on=("c",)), service("c", depends_on=("a",))
    )
    assert m.dependencies("a") == {"b", "c"}
    assert m.dependents("a") == {"b", "c"}
