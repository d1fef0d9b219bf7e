"""Joint detection in the stage: one signal per service, with the contributing series as evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from agent.config.models import (
    DetectorProfile,
    JointDetection,
    QueryConfig,
    Selector,
    Service,
    ServicesFile,
)
from agent.core.detection import Detected, DetectionStage, joint_name
from agent.core.domain import fingerprint
from agent.core.topology import ServiceMap
from integrations.prometheus import Matrix, Series

T0 = 1_772_366_400.0
STEP = 60.0
HISTORY = 600
SMALL = {
    "calibration": {"min_count": 30, "horizon": 300},
    "level": {"warm": 10},
    "novelty": {"warm": 30},
    "damping": 50,
    "budget": None,  # the fixed line: these tests compare joint with per-series scoring, not budgets
}
PROFILES = {"default": DetectorProfile(kind="ensemble", params=SMALL)}
SERVICES = ServiceMap(
    ServicesFile(
        services=[
            Service(name="web", selectors=[Selector(match={"job": "web"})]),
            Service(name="db", selectors=[Selector(match={"job": "db"})]),
        ]
    )
)


def matrix(x: np.ndarray, start: int, jobs: list[str]) -> Matrix:
    return Matrix.of(
        [
            Series(
                labels={"job": job, "instance": str(i)},
                points=[(T0 + STEP * (start + k), float(v)) for k, v in enumerate(x[:, i])],
            )
            for i, job in enumerate(jobs)
        ]
    )


def run(x: np.ndarray, jobs: list[str], joint: bool | None, enabled: bool = False) -> Detected:
    """Train on the first HISTORY points (history raises nothing), judge the rest live. Every onset,
    joint or per series, counts in the alarm rate /metrics reports against the budget."""
    stage = DetectionStage(PROFILES, 0.8, SERVICES, joint=JointDetection(enabled=enabled))
    q = QueryConfig(name="latency", promql="up", joint=joint)
    stage.process(q, Matrix.of([]), matrix(x[:HISTORY], 0, jobs))
    out = stage.process(q, matrix(x[HISTORY:], HISTORY, jobs))
    assert stage.alarm_rate()[0] == len(out.onsets)
    return out


def test_several_series_moving_a_little_raise_one_joint_signal() -> None:
    rng = np.random.default_rng(1)
    x = 10 + rng.normal(0, 1, (HISTORY + 30, 7))
    x[HISTORY + 10 : HISTORY + 14, :6] += 3.0  # six of web's series, three sigma each, at once
    jobs = ["web"] * 6 + ["db"]
    assert run(x, jobs, joint=False).onsets == []  # none alone crosses the threshold
    out = run(x, jobs, joint=True)
    assert [(s.name, s.service) for s in out.onsets] == [("latency:joint", "web")]
    sig = out.onsets[0]
    assert sig.detector == "joint" and sig.score >= 0.8 and sig.labels == {"service": "web"}
    assert sig.fingerprint == fingerprint(joint_name("latency"), {"service": "web"})
    assert sig.details["series"] == 6
    evidence = sig.details["evidence"]
    assert isinstance(evidence, list) and len(evidence) == 5  # JointDetection.evidence
    assert all(e["labels"]["job"] == "web" for e in evidence)
    assert [e["rarity"] for e in evidence] == sorted((e["rarity"] for e in evidence), reverse=True)
    assert json.loads(json.dumps(sig.details)) == sig.details  # stored as the signal's evidence (JSON)
    assert [c.fingerprint for c in out.clears] == [sig.fingerprint]  # one clear ends the episode


def test_one_noisy_series_among_forty_does_not_raise_the_joint_signal() -> None:
    rng = np.random.default_rng(0)
    x = 10 + rng.normal(0, 1, (HISTORY + 200, 40))
    x[HISTORY:, 0] = 10 + 3.0 * rng.normal(0, 1, 200)  # one series turns three times as noisy
    jobs = ["web"] * 40
    alone = [s.labels["instance"] for s in run(x, jobs, joint=False).onsets]
    assert alone.count("0") >= 2  # per series, it raises signals of its own
    assert run(x, jobs, joint=True).onsets == []


def test_heavy_tailed_noise_on_forty_series_raises_far_fewer_joint_signals() -> None:
    rng = np.random.default_rng(0)
    x = 10 + rng.standard_t(3, (HISTORY + 400, 40))
    jobs = ["web"] * 40
    per_series, joint = run(x, jobs, joint=False).onsets, run(x, jobs, joint=True).onsets
    assert len(per_series) >= 10
    assert len(joint) * 4 <= len(per_series)


def test_the_query_option_overrides_the_stage_default() -> None:
    rng = np.random.default_rng(1)
    x = 10 + rng.normal(0, 1, (HISTORY + 30, 7))
    x[HISTORY + 10 : HISTORY + 14, :6] += 3.0
    jobs = ["web"] * 6 + ["db"]
    assert [s.name for s in run(x, jobs, joint=None, enabled=True).onsets] == ["latency:joint"]
    assert run(x, jobs, joint=False, enabled=True).onsets == []


@pytest.mark.parametrize(
    ("options", "field"),
    [({"truncation": 0}, "truncation"), ({"evidence": 0}, "evidence"), ({"damping": 0}, "damping")],
)
def test_bad_joint_options_are_refused(options: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        JointDetection.model_validate(options)


def test_many_series_and_services_grow_together() -> None:
    """Slots and service groups grow as series arrive, poll after poll, past every growth step."""
    stage = DetectionStage(PROFILES, 0.8, SERVICES, joint=JointDetection(enabled=True))
    q = QueryConfig(name="latency", promql="up")
    rng = np.random.default_rng(3)
    for n in (5, 70, 150):
        x = 10 + rng.normal(0, 1, (3, n))
        stage.process(q, matrix(x, n, ["web", "db", "other"] * (n // 3) + ["web"] * (n % 3)))
    state = stage._queries["latency"]
    assert state.joint is not None and state.joint.names == ["web", "db", "unmapped"]
    assert state.bank is not None and len(state.group) >= state.bank.size >= 150
