"""Tests of casbo_bench.analysis.molecules and ``casbo-bench molecule-report``: tables, figures
and SDF of a tiny molecule run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from casbo_bench.analysis.molecules import ReportError, duplicate_share, score_table
from casbo_bench.cli import main
from casbo_bench.molecules.checkpoint import load_predictor
from casbo_bench.molecules.tasks import task_size
from casbo_bench.runner import Job, run_job
from casbo_bench.schemas.molecules import BEST_COLUMNS, SCORE_COLUMNS
from casbo_bench.traces import load_traces, write_trace

ROOT = Path(__file__).resolve().parents[2]
DIM, STEPS = task_size(4, 3)
CALLS, EVALUATIONS = 12, 48  # S + 1 = 4 denoiser evaluations per rollout: 12 rollouts
# smc: x0_hat scored after transitions 1 and 2, then the finished sample: 3 calls and 4
# evaluations per sample, sweeps of 3 samples: 12 samples, 36 calls, 48 evaluations.
METHODS: dict[str, dict] = {
    "casbo": {},
    "random": {},
    "smc": {"particles": 3, "interval": 1, "start_step": 1},
}


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("traces")
    paths = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads mostly wait for each other
    try:
        for method, options in METHODS.items():
            job = Job(
                method,
                "mol-qed",
                DIM,
                (0, 1, 2),
                CALLS,
                n_steps=STEPS,
                fresh_samples=2,
                options=options,
                denoiser_budget=EVALUATIONS,
            )
            paths.append(write_trace(run_job(job), folder / f"{method}.parquet", {"test": True}))
    finally:
        torch.set_num_threads(threads)
    return paths


def test_score_table_summarizes_runs_and_compares_with_the_reference(
    trace_files: list[Path],
) -> None:
    traces = load_traces(trace_files)
    table = score_table(traces, reference="casbo", optimized=0.25)
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert table["method"].tolist() == ["casbo", "random", "smc"]
    for row in table.itertuples(index=False):
        own = traces[traces["method"] == row.method]
        best = -own.groupby("seed")["best_so_far"].last()
        assert row.best_median == pytest.approx(best.median())
        assert row.best_q25 <= row.best_median <= row.best_q75
        final = -own.groupby("seed")["fresh_sample_loss"].first()
        assert row.final_median == pytest.approx(final.median())
        last = own.groupby("seed").tail(3)  # 25% of 12 evaluations
        assert row.optimized_valid == pytest.approx(last["detail_valid"].mean())
        connected = last["detail_valid"] & (last["detail_fragments"] == 1)
        assert row.optimized_connected == pytest.approx(connected.mean())
    reference, other = table.iloc[0], table.iloc[1]
    assert reference["best_verdict"] == "reference" and np.isnan(reference["best_p_holm"])
    # Three seeds: the exact two-sided Wilcoxon test cannot go below p = 0.25.
    assert other["best_p_holm"] >= 0.25
    assert other["best_verdict"] == "no significant difference"
    with pytest.raises(ReportError, match="reference method 'cmaes'"):
        score_table(traces, reference="cmaes")


def test_report_writes_tables_figures_and_structures(
    trace_files: list[Path], tmp_path: Path
) -> None:
    tables, figures, sdf = tmp_path / "tables", tmp_path / "figures", tmp_path / "best.sdf"
    status = main(
        [
            "molecule-report",
            "--tables-dir",
            str(tables),
            "--figures-dir",
            str(figures),
            "--sdf",
            str(sdf),
            "--predictor",
            str(ROOT / "models" / "property_predictor"),
            *map(str, trace_files),
        ]
    )
    assert status == 0
    best = pd.read_csv(tables / "molecule_best.csv")
    assert list(best.columns) == list(BEST_COLUMNS)
    assert len(best) == 9  # three methods x three seeds
    scores = pd.read_csv(tables / "molecule_scores.csv")
    assert {"calls", "denoiser_evals", "compute_median", "duplicate_share"} <= set(scores.columns)
    valid = best["valid"].to_numpy(dtype=bool)
    assert np.isfinite(best.loc[valid, ["predicted_alpha", "predicted_mu"]].to_numpy()).all()
    for name in ("molecule_scores", "molecule_best"):
        assert (tables / f"{name}.md").read_text().startswith("# Molecule benchmark")
    for name in ("score_mol-qed.pdf", "score_mol-qed.png", "best_molecules_mol-qed.png"):
        assert (figures / name).stat().st_size > 1000, name
    assert not list(figures.glob("*.svg"))
    molecules = [mol for mol in Chem.SDMolSupplier(str(sdf)) if mol is not None]
    assert len(molecules) == int(valid.sum())
    scores = sorted(float(mol.GetProp("best_score")) for mol in molecules)
    assert scores == pytest.approx(sorted(best.loc[valid, "best_score"]))
    predictor = load_predictor(ROOT / "models" / "property_predictor").model
    assert predictor.properties == ("alpha", "gap", "mu")


def test_traces_without_molecule_details_are_refused(tmp_path: Path) -> None:
    path = write_trace(
        run_job(Job("random", "sphere", 2, (0,), 8, fresh_samples=2)),
        tmp_path / "sphere.parquet",
        {"test": True},
    )
    with pytest.raises(ReportError, match="not molecule-task traces"):
        score_table(load_traces([path]))


def test_runs_of_two_checkpoints_are_not_reported_together(trace_files: list[Path]) -> None:
    traces = load_traces(trace_files)
    score_table(traces)
    other = traces["method"] == "random"
    traces.loc[other, "detail_checkpoint"] = "f" * 64
    with pytest.raises(ReportError, match=r"from 2 EDM checkpoints .* ffffffffffff"):
        score_table(traces)


def test_a_missing_reference_is_one_error_line(
    trace_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["molecule-report", "--tables-dir", str(tmp_path / "t"), "--figures-dir"]
    arguments += [str(tmp_path / "f"), "--sdf", str(tmp_path / "b.sdf"), "--reference", "cmaes"]
    arguments += ["--models-dir", str(ROOT / "models")]
    assert main([*arguments, *map(str, trace_files)]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert line.startswith("casbo-bench molecule-report: error: reference method 'cmaes'")
    assert not (tmp_path / "t" / "molecule_scores.csv").exists()


def test_the_table_reads_every_method_at_equal_calls_and_equal_denoiser_evaluations(
    trace_files: list[Path],
) -> None:
    traces = load_traces(trace_files)
    budgets = {"calls": CALLS, "denoiser_evals": EVALUATIONS}
    table = score_table(traces, reference="casbo", budgets=budgets).set_index("method")
    assert (table["calls"] == CALLS).all() and (table["denoiser_evals"] == EVALUATIONS).all()
    smc = traces[traces["method"] == "smc"]
    # at 12 calls smc has completed only its first sweep (9 calls): 3 samples per seed
    within = smc[smc["calls"] <= CALLS]
    assert (within.groupby("seed").size() == 3).all()
    assert table.loc["smc", "best_median"] == pytest.approx(
        (-within.groupby("seed")["loss"].min()).median()
    )
    # at 48 denoiser evaluations every one of its 12 samples counts
    assert table.loc["smc", "compute_median"] == pytest.approx(
        (-smc.groupby("seed")["loss"].min()).median()
    )
    # ask/tell methods: one call per rollout, so both axes read the same rows
    casbo = table.loc["casbo"]
    assert casbo["best_median"] == casbo["compute_median"]
    assert ((table["duplicate_share"] >= 0) & (table["duplicate_share"] <= 1)).all()


def test_duplicate_share_counts_repeats_of_valid_smiles() -> None:
    assert duplicate_share(["CC", "CO", "CC", "CC", None]) == pytest.approx(0.5)
    assert duplicate_share([None, None]) == 0.0


def test_the_default_config_runs_the_steering_baselines_on_both_cost_axes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from casbo_bench.config_checks import check_config, read_config, resolve_config

    monkeypatch.chdir(ROOT)
    config = resolve_config(read_config(ROOT / "config" / "config.yaml"), None, read_config)
    check_config(config, read_config(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    block = config["molecules"]
    assert block["budget"] >= 1 and block["denoiser_budget"] >= 1
    optimizers = {method["optimizer"] for method in config["methods"]}
    assert {"smc", "svdd"} <= optimizers
    assert [task["count_in_claims"] for task in block["tasks"]] == [False]  # QED saturates
    records = {record["id"]: record for record in config["claims"]["claims"]}
    baselines = records["beats-steering"]["comparisons"][0]["baselines"]
    assert set(baselines) == {"random", "random-latent", "smc", "svdd"}
