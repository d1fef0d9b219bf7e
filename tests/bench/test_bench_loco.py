"""bench.loco's fold logic on synthetic per-file NAB components (no NAB needed), and its skip without data."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import loco
from bench.nab import PROFILES


def parts(raw: float, windows: int = 1) -> dict[str, tuple[float, float, float]]:
    """One file's components under every profile: `windows` windows, never firing scores -windows."""
    return {p: (raw, -float(windows), float(windows)) for p in PROFILES}


CATEGORY = {"a/1": "a", "a/2": "a", "b/1": "b", "c/1": "c", "quiet/1": "quiet"}


def table(**raws: dict[str, float]) -> dict[str, loco.FileParts]:
    return {
        name: {f: parts(r[f], windows=0 if f.startswith("quiet") else 1) for f in CATEGORY}
        for name, r in raws.items()
    }


def test_a_candidate_that_wins_elsewhere_is_chosen_and_scored_on_the_held_out_category() -> None:
    t = table(
        default={"a/1": 0.5, "a/2": 0.5, "b/1": 0.0, "c/1": 0.0, "quiet/1": 0.0},
        sharp={"a/1": -1.0, "a/2": -1.0, "b/1": 0.9, "c/1": 0.9, "quiet/1": 0.0},
    )
    pools = {c: ["default", "sharp"] for c in set(CATEGORY.values())}
    fold_list, pooled = loco.folds(t, CATEGORY, pools)
    by = {f.held_out: f for f in fold_list}
    assert by["a"].chosen == "sharp"  # best on b and c
    assert by["a"].held == pytest.approx(0.0)  # and it misses both of a's windows
    assert by["a"].default == pytest.approx(75.0)
    assert by["a"].train == pytest.approx(95.0)
    # with a among the training files, sharp's two misses there outweigh its gain on c
    assert by["b"].chosen == "default"
    assert by["b"].held == pytest.approx(50.0)
    assert by["quiet"].held is None  # no windows: no normalised score
    # pooled: a by sharp (-2), b by default (0), c by default (0), quiet by either (0)
    assert pooled == pytest.approx(100.0 * (-2.0 + 4.0) / 8.0)


def test_a_tie_keeps_the_shipped_default() -> None:
    same = {"a/1": 0.3, "a/2": 0.3, "b/1": 0.3, "c/1": 0.3, "quiet/1": 0.0}
    t = table(default=same, other=same)
    assert loco.choose(t, list(CATEGORY), ["default", "other"])[0] == "default"


def test_pairs_come_from_the_training_files_only() -> None:
    cands = [
        loco.Candidate("default", {}),
        loco.Candidate("x", {"level": {"alpha": 0.1}}, ("level.alpha",)),
        loco.Candidate("y", {"level": {"clip": 2.0}}, ("level.clip",)),
        loco.Candidate("z", {"damping": 10}, ("damping",)),
    ]
    t = table(
        default={"a/1": 0.0, "a/2": 0.0, "b/1": 0.0, "c/1": 0.0, "quiet/1": 0.0},
        x={"a/1": 0.0, "a/2": 0.0, "b/1": 0.5, "c/1": 0.5, "quiet/1": 0.0},
        y={"a/1": 0.0, "a/2": 0.0, "b/1": 0.4, "c/1": 0.0, "quiet/1": 0.0},
        z={"a/1": 0.9, "a/2": 0.9, "b/1": -1.0, "c/1": 0.0, "quiet/1": 0.0},  # good only on a
    )
    train = [f for f, c in CATEGORY.items() if c != "a"]
    (pair,) = loco.strongest(t, train, cands, 2)
    assert pair.params == {"level": {"alpha": 0.1, "clip": 2.0}}
    assert pair.knobs == ("level.alpha", "level.clip")


def test_skips_without_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(loco, "NAB", tmp_path / "nab")
    assert loco.main([]) == 0
    assert "skipped" in capsys.readouterr().out


def test_a_candidate_over_the_false_alarm_budget_is_not_chosen_however_well_it_scores() -> None:
    better = {"a/1": 0.9, "a/2": 0.9, "b/1": 0.9, "c/1": 0.9, "quiet/1": 0.0}
    t = table(default={f: 0.0 for f in CATEGORY}, noisy=better, quiet=dict(better, **{"a/1": 0.8}))
    for name, alarms in (("default", 0.0), ("noisy", 3.0), ("quiet", 0.5)):
        for f in CATEGORY:
            t[name][f][loco.FALSE_ALARMS] = (alarms, 10.0, 0.0)  # per 10 series-days
    # noisy: 0.3 alarms per series-day, over the 0.05 budget; quiet: 0.05, within it
    assert loco.choose(t, list(CATEGORY), ["default", "noisy", "quiet"])[0] == "quiet"
    assert loco.rate_on(t, "noisy", ["a/1", "b/1"]) == pytest.approx(0.3)
    # none within the budget: the one closest to it
    assert loco.choose(t, list(CATEGORY), ["noisy"])[0] == "noisy"
