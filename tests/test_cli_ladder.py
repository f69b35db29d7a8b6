"""The error ladder's subcommands: their user errors are one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from casbo_bench.cli import main

SUBSET = Path(__file__).resolve().parent / "data" / "qm9_subset.npz"


@pytest.mark.parametrize(
    ("task", "percentile", "message"),
    [
        ("mol-qed", "90", "not a predictor task"),
        ("mol-gap", "50", "optimizes toward the p90 target"),
    ],
)
def test_ladder_molecules_refuses_a_task_without_that_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, percentile: str, message: str
) -> None:
    arguments = ["ladder-molecules", "--task", task, "--target-percentile", percentile]
    out = ["--data", str(SUBSET), "--out", str(tmp_path / "ladder.parquet")]
    assert main([*arguments, *out]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error


def test_ladder_molecules_names_the_calibration_command_when_it_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["ladder-molecules", "--task", "mol-gap", "--target-percentile", "90"]
    out = ["--data", str(SUBSET), "--out", str(tmp_path / "ladder.parquet")]
    calibration = ["--calibration", str(tmp_path / "none")]
    assert main([*arguments, *out, *calibration]) == 2
    assert "casbo-bench calibrate-xtb" in capsys.readouterr().err


def test_calibrate_xtb_writes_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "calibration"
    arguments = ["--data", str(SUBSET), "--out", str(out), "--n", "4", "--n-alpha", "0"]
    assert main(["calibrate-xtb", *arguments]) == 0
    assert {path.name for path in out.iterdir()} == {
        "calibration.json",
        "molecules.csv",
        "manifest.json",
    }
