"""Log anomalies from mined lines: new templates once, rate spikes and error bursts, and their clears."""

from __future__ import annotations

from detectors.logs.miner import Match
from detectors.logs.signals import ERROR_BURST, NEW_TEMPLATE, RATE_SPIKE, LogClear, LogSignalDetector

OK = Match(1, "request <*> ok", "info", False)


def detector(**kw: float) -> LogSignalDetector:
    params = {"bucket": 10.0, "warmup": 60.0, "warmup_lines": 20, "min_age": 3, "spike_min": 10}
    return LogSignalDetector(**{**params, **kw})  # type: ignore[arg-type]


def steady(d: LogSignalDetector, until: float, every: float = 2.0, start: float = 0.0) -> list:
    out = []
    t = start
    while t < until:
        out += d.observe(t, "request 7 ok", OK)
        t += every
    return out


def test_nothing_is_reported_while_warming_up() -> None:
    d = detector()
    assert steady(d, 50.0) == []
    assert d.observe(51.0, "boom", Match(9, "boom", "error", True)) == []  # new, but still warming up


def test_a_new_template_after_warmup_is_reported_exactly_once_and_then_cleared() -> None:
    d = detector()
    steady(d, 100.0)
    novel = Match(2, "disk <*> failing", "warning", True)
    first = d.observe(100.5, "disk sda failing", novel)
    again = d.observe(101.0, "disk sdb failing", Match(2, "disk <*> failing", "warning", False))
    assert [a.kind for a in first] == [NEW_TEMPLATE] and again == []
    assert first[0].template == "disk <*> failing" and first[0].samples == ("disk sda failing",)
    assert LogClear(NEW_TEMPLATE, 110.0, 2) in d.tick(111.0)
    assert d.tick(200.0) == []  # cleared once


def test_a_rate_spike_is_reported_when_the_running_count_crosses_the_bar() -> None:
    d = detector()
    steady(d, 100.0)  # 5 lines per 10 s bucket
    found = []
    for i in range(40):  # 40 more in one bucket
        found += d.observe(100.0 + i * 0.2, "request 7 ok", OK)
    (spike,) = found
    assert spike.kind == RATE_SPIKE and spike.template_id == 1
    assert spike.count == 18 and spike.expected == 5.0  # first count >= 3x and 5 sigma above 5: 18
    assert 0.0 < spike.score <= 1.0 and len(spike.samples) == 3
    assert d.tick(111.0) == []  # the spiking bucket closes: still a spike, no clear
    steady(d, 121.0, start=111.0)
    assert LogClear(RATE_SPIKE, 120.0, 1) in d.tick(121.0)


def test_spikes_are_not_learned_into_the_baseline() -> None:
    d = detector()
    steady(d, 100.0)
    for i in range(100):
        d.observe(100.0 + i * 0.05, "request 7 ok", OK)
    d.tick(111.0)
    assert d._counters[1].baseline < 6.0


def test_an_error_burst_counts_error_lines_of_any_template() -> None:
    d = detector()
    steady(d, 100.0)
    found = []
    for i in range(12):
        found += d.observe(100.0 + i * 0.1, f"failed {i}", Match(10 + i % 3, "failed <*>", "error", False))
    assert [a.kind for a in found] == [ERROR_BURST]
    assert found[0].template_id is None and found[0].count == 10


def test_the_record_level_overrides_the_mined_one() -> None:
    d = detector()
    steady(d, 100.0)
    found = []
    for i in range(12):
        found += d.observe(100.0 + i * 0.1, "plain text", OK, level="critical")  # e.g. journald PRIORITY
    assert ERROR_BURST in [a.kind for a in found]


def test_new_templates_are_rate_limited() -> None:
    d = detector(new_templates_per_hour=3)
    steady(d, 100.0)
    found = [a for i in range(10) for a in d.observe(100.0 + i, f"x{i}", Match(100 + i, f"x{i}", None, True))]
    assert [a.kind for a in found] == [NEW_TEMPLATE] * 3


def test_a_long_silence_decays_baselines_without_walking_every_bucket() -> None:
    d = detector()
    steady(d, 100.0)
    before = d._counters[1].baseline
    d.tick(100.0 + 10.0 * 1_000_000)  # a million empty buckets, closed in constant time
    assert d._counters[1].baseline < before * 1e-6
