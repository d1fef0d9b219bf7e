"""One conformance suite for every detector in detectors.REGISTRY (river's test_estimators habit).

A detector added to the registry is covered automatically; it should define small `test_params` so the
suite stays fast, and keep its memory horizon (windows) within FILL points.
"""

from __future__ import annotations

import inspect
import math
import pickle
import random
import statistics
from collections.abc import Sequence

import pytest

import detectors
from detectors import Detector

FILL = 400  # points that fill any window the test params configure
DETECTOR_CLASSES = sorted(detectors.REGISTRY.values(), key=lambda cls: cls.name)
each_detector = pytest.mark.parametrize("cls", DETECTOR_CLASSES, ids=lambda cls: cls.name)


# ---------------------------------------------------------------- helpers


def make(cls: type[Detector]) -> Detector:
    return cls(**cls.test_params)


def run(detector: Detector, values: Sequence[float], start: int = 0) -> list[float]:
    return [detector.update(float(start + i), v) for i, v in enumerate(values)]


def run_warm(detector: Detector, values: Sequence[float]) -> list[float]:
    """Scores of the points judged once the detector is warm (as the detection stage reads them)."""
    out = []
    for i, v in enumerate(values):
        score = detector.update(float(i), v)
        if detector.warm:
            out.append(score)
    return out


def noisy_sine(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [10.0 + 2.0 * math.sin(2 * math.pi * t / 50) + rng.gauss(0.0, 0.3) for t in range(n)]


def flat(n: int) -> list[float]:
    return [5.0] * n


def quantised(n: int, seed: int = 0) -> list[float]:
    """A gauge that only takes integer values (replicas, queue length)."""
    rng = random.Random(seed)
    return [float(rng.choice((3, 4, 5))) for _ in range(n)]


def wobble(n: int, seed: int = 0) -> list[float]:
    """A p99 that sits near one histogram bucket's edge: it moves by hundredths of a percent."""
    rng = random.Random(seed)
    return [0.0994 + rng.choice((-3, -2, -1, 0, 1, 2, 3)) * 1e-5 for _ in range(n)]


def spiky(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    out = noisy_sine(n, seed)
    for _ in range(n // 40):
        out[rng.randrange(n)] += rng.choice((-1.0, 1.0)) * rng.uniform(5.0, 500.0)
    return out


def extreme(n: int) -> list[float]:
    return [(-1.0) ** t * 10.0 ** (t % 13) for t in range(n)]


def level_shift(n: int) -> list[float]:
    return noisy_sine(n // 2) + [x + 40.0 for x in noisy_sine(n - n // 2, seed=1)]


def settles(n: int, seed: int = 0) -> list[float]:
    """Noise, then a constant long enough to fill any window: rolling sums of squares cancel a hair below
    zero there (river's variance went negative and its sigma complex)."""
    rng = random.Random(seed)
    return [0.7 + rng.gauss(0.0, 0.35) for _ in range(n // 4)] + [0.7] * (n - n // 4)


def scaled(n: int, factor: float) -> list[float]:
    """A noisy sine at another magnitude: 1e300 brushes the float range (squares overflow), 1e-300 its floor."""
    return [factor * x for x in noisy_sine(n)]


def mixed_signs(n: int, seed: int = 0) -> list[float]:
    """Huge values of both signs around zero: sums and differences overflow to inf."""
    rng = random.Random(seed)
    return [rng.choice((-1.0, 1.0)) * rng.uniform(1e307, 1.7e308) for _ in range(n)]


STREAMS = {
    "noisy_sine": noisy_sine(FILL),
    "flat": flat(FILL),
    "quantised": quantised(FILL),
    "spiky": spiky(FILL),
    "extreme": extreme(FILL),
    "level_shift": level_shift(FILL),
    "settles": settles(FILL),
    "huge": scaled(FILL, 1e300),
    "tiny": scaled(FILL, 1e-300),
    "mixed_signs": mixed_signs(FILL),
}


# ---------------------------------------------------------------- the registry


@each_detector
def test_registry_name_and_build(cls: type[Detector]) -> None:
    assert detectors.REGISTRY[cls.name] is cls
    built = detectors.build(cls.name, dict(cls.test_params))
    assert type(built) is cls
    assert built.params == make(cls).params


def test_build_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"unknown detector kind 'nope'.*robust"):
        detectors.build("nope")
    with pytest.raises(ValueError, match="bad parameters for detector 'robust'"):
        detectors.build("robust", {"windw": 10})


# ---------------------------------------------------------------- the contract


@each_detector
@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_scores_are_in_unit_interval(cls: type[Detector], stream: str) -> None:
    scores = run(make(cls), STREAMS[stream])
    assert all(0.0 <= s <= 1.0 for s in scores), [s for s in scores if not 0.0 <= s <= 1.0][:5]


@each_detector
def test_nan_only_series_scores_nothing_and_learns_nothing(cls: type[Detector]) -> None:
    detector = make(cls)
    assert run(detector, [math.nan] * FILL) == [0.0] * FILL
    assert detector.n_seen == 0 and not detector.warm


@each_detector
def test_deterministic(cls: type[Detector]) -> None:
    values = spiky(FILL, seed=3)
    assert run(make(cls), values) == run(make(cls), values)


@each_detector
def test_clone_is_fresh_and_identically_configured(cls: type[Detector]) -> None:
    values = spiky(FILL, seed=4)
    original = make(cls)
    run(original, values[:150])
    twin = make(cls)
    run(twin, values[:150])

    clone = original.clone()
    assert type(clone) is cls
    assert clone is not original
    assert clone.params == original.params
    assert clone.n_seen == 0
    assert run(clone, values) == run(make(cls), values)
    # Feeding the clone did not touch the original: it continues exactly like its twin.
    assert run(original, values[150:], start=150) == run(twin, values[150:], start=150)


@each_detector
def test_params_round_trip_through_the_constructor(cls: type[Detector]) -> None:
    detector = make(cls)
    params = detector.params
    constructor_args = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(params) == constructor_args
    assert all(params[k] == v for k, v in cls.test_params.items())
    assert cls(**params).params == params
    params["__mutated__"] = 1
    assert "__mutated__" not in detector.params


@each_detector
def test_warm_after_its_warmup(cls: type[Detector]) -> None:
    detector = make(cls)
    assert detector.warmup > 0
    assert not detector.warm
    run(detector, noisy_sine(detector.warmup))
    assert detector.warm


@each_detector
def test_memory_is_bounded(cls: type[Detector]) -> None:
    detector = make(cls)
    values = noisy_sine(21 * FILL, seed=5)
    run(detector, values[:FILL])
    filled = len(pickle.dumps(detector))
    run(detector, values[FILL:], start=FILL)
    assert len(pickle.dumps(detector)) <= 1.05 * filled + 64


@each_detector
def test_no_look_ahead(cls: type[Detector]) -> None:
    values = spiky(FILL, seed=6)
    full = run(make(cls), values)
    for cut in (50, 200, FILL - 1):
        assert run(make(cls), values[:cut]) == full[:cut]


@each_detector
def test_non_finite_points_are_skipped(cls: type[Detector]) -> None:
    values = noisy_sine(FILL, seed=7)
    clean = run(make(cls), values)
    detector = make(cls)
    gaps = {30: math.nan, 150: math.inf, 151: -math.inf, 300: math.nan}
    dirty: list[float] = []
    for i, v in enumerate(values):
        if i in gaps:
            assert detector.update(float(i) - 0.5, gaps[i]) == 0.0
        dirty.append(detector.update(float(i), v))
    assert dirty == clean
    assert detector.n_seen == len(values)


# ---------------------------------------------------------------- judgement


@each_detector
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_anomaly_stands_out(cls: type[Detector], seed: int) -> None:
    """A spike (or, for change-point detectors, a lasting step) scores above the 95th percentile of its
    surroundings: for a step, the best score within 30 points of the change counts; for a spike, the
    best within the detector's `lag`."""
    detector = make(cls)
    at = detector.warmup + 200
    values = noisy_sine(at + 50, seed=seed)
    if cls.plants == "shift":
        values[at:] = [v + 3.0 for v in values[at:]]  # ten noise sigmas, for good
        scores = run(detector, values)
        assert max(scores[at : at + 30]) > statistics.quantiles(scores[at - 150 : at], n=20)[-1]
    else:
        values[at] += 12.0  # 40 noise sigmas above the sine
        scores = run(detector, values)
        after = at + cls.lag + 1
        surroundings = scores[at - 150 : at] + scores[after:]
        assert max(scores[at:after]) > statistics.quantiles(surroundings, n=20)[-1]  # the 95th percentile


@each_detector
@pytest.mark.parametrize("value", [0.0, 0.7, -3.3, 1e300, -1e300, 1e-300, 1.7e308])
def test_constant_series_raise_no_alarm(cls: type[Detector], value: float) -> None:
    scores = run(make(cls), [value] * FILL)
    assert max(scores) < 0.5, max(scores)


@each_detector
def test_a_series_that_settles_raises_no_alarm_once_settled(cls: type[Detector]) -> None:
    """Once the noise has left the detector's memory (FILL / 2 points later), a constant is calm."""
    scores = run(make(cls), settles(2 * FILL))
    assert max(scores[FILL:]) < 0.5, max(scores[FILL:])


@each_detector
@pytest.mark.parametrize(
    "factor", [1e300, -1e300, 1e-15, 1e-300], ids=["huge", "huge_negative", "below_floors", "tiny"]
)
def test_magnitude_does_not_change_judgement(cls: type[Detector], factor: float) -> None:
    """Near the ends of the float range a series is judged as it is at ordinary magnitudes."""
    values = [math.copysign(1.0, factor) * v for v in spiky(FILL, seed=8)]
    plain = run(make(cls), values)
    scaled = run(make(cls), [abs(factor) * v for v in values])
    assert max(abs(a - b) for a, b in zip(plain, scaled, strict=True)) < 1e-6


@each_detector
@pytest.mark.parametrize(
    "series",
    [flat(FILL), quantised(FILL), noisy_sine(FILL), wobble(FILL)],
    ids=["flat", "quantised", "noisy_sine", "wobble"],
)
def test_calm_series_stay_calm(cls: type[Detector], series: list[float]) -> None:
    """Zero spread (flat), steps of exactly one unit (quantised), plain noise and a wobble far below
    anything an operator acts on are no anomalies."""
    scores = run_warm(make(cls), series)
    assert len(scores) >= 100
    calm = sum(s < 0.5 for s in scores) / len(scores)
    assert calm >= 0.9, f"only {calm:.0%} of warm scores below 0.5"
