"""bench.joint end to end on the tiny PetShop-shaped dataset of the rca bench test, and its skip without data."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import joint
from tests.bench.test_bench_rca import dataset


def test_bench_runs_and_reports_every_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert joint.main(["--data", str(dataset(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "max @0.8" in out and "joint @0.8" in out and "all (pooled)" in out
    low = next(line for line in out.splitlines() if line.startswith("low_traffic"))
    assert "joint (truncation, damping)" in low


def test_bench_skips_cleanly_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert joint.main(["--data", str(tmp_path / "absent")]) == 0
    assert capsys.readouterr().out.startswith("skipped: PetShop data not found")
