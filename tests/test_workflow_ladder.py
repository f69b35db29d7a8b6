"""The workflow on a tiny config with a predictor task: molecule runs, the ladder's
molecules and the error-ladder table (naive, n-atoms, unguided, both methods, the floors,
the published values marked not comparable)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from casbo_bench.schemas.ladder import validate_ladder_molecules, validate_ladder_table
from tests.snakemake_runs import REPOSITORY, run_snakemake

pytestmark = pytest.mark.slow

TINY_LADDER = REPOSITORY / "tests" / "workflow" / "tiny-ladder.yaml"
CALIBRATION = REPOSITORY / "models" / "xtb_calibration" / "calibration.json"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CALIBRATION.is_file():
        pytest.skip("no stored xTB calibration (casbo-bench calibrate-xtb writes it)")
    workdir = tmp_path_factory.mktemp("workflow-ladder")
    (workdir / "config").mkdir()
    shutil.copy(TINY_LADDER, workdir / "config" / "config.yaml")
    (workdir / "tests" / "data").mkdir(parents=True)
    shutil.copy(REPOSITORY / "tests" / "data" / "qm9_subset.npz", workdir / "tests" / "data")
    result = run_snakemake(workdir, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_the_error_ladder_has_every_rung(finished_run: Path) -> None:
    results = finished_run / "results" / "tiny-ladder"
    table = validate_ladder_table(
        pd.read_csv(results / "tables" / "molecules" / "error_ladder.csv")
    )
    rungs = table["rung"].tolist()
    assert rungs[:5] == ["naive", "n-atoms", "unguided", "casbo", "random"]
    assert not table.loc[table["kind"] == "published", "comparable"].any()
    assert (table["target_percentile"] == 90).all()
    molecules = validate_ladder_molecules(
        pd.read_parquet(results / "molecules" / "ladder" / "mol-gap.parquet")
    )
    assert (molecules.groupby("rung").size()[["naive", "n-atoms", "unguided"]] == 4).all()
    assert (molecules.groupby("rung").size()[["casbo", "random"]] == 2).all()  # seeds 0, 1
    assert "target 8.618 eV" in (results / "tables" / "molecules" / "error_ladder.md").read_text()
