"""The analysis of traces with failed evaluations and failed runs: failed runs are left out of
every statistic like missing seeds, paired tests pair the complete runs, the final-loss table
counts both kinds of failure, and failed evaluations never become a run's best."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from casbo_bench.analysis.figures import make_figures
from casbo_bench.analysis.molecules import best_molecules, run_summaries, score_table
from casbo_bench.analysis.stats import compare_to_reference
from casbo_bench.analysis.tables import build_tables
from casbo_bench.molecules.tasks import task_size
from casbo_bench.runner import Job, run_job
from casbo_bench.schemas.tables import validate_table
from casbo_bench.schemas.trace import validate_trace

from .synthetic import synthetic_traces

SETTING = {"problem": "sphere", "d": 2, "K": 1, "scoring": "final"}


def _run_of(traces: pd.DataFrame, method: str, seed: int) -> pd.Series:
    keys = pd.Series(True, index=traces.index)
    for key, value in {**SETTING, "method": method, "seed": seed}.items():
        keys &= traces[key] == value
    return keys


def fail_evaluations(traces: pd.DataFrame, run: pd.Series, evaluations: list[int]) -> pd.DataFrame:
    """``traces`` with the given evaluations of ``run`` failed (NaN loss, best recomputed)."""
    traces = traces.copy()
    hit = run & traces["evaluation"].isin(evaluations)
    traces.loc[hit, ["loss", "failed", "error"]] = [np.nan, True, "loss is nan"]
    found = traces.loc[run, "loss"].where(~traces.loc[run, "failed"], np.inf)
    traces.loc[run, "best_so_far"] = np.minimum.accumulate(found.to_numpy())
    return traces


def fail_run(traces: pd.DataFrame, run: pd.Series, kept: int) -> pd.DataFrame:
    """``traces`` with ``run`` failed after ``kept`` evaluations."""
    traces = traces[~run | (traces["evaluation"] <= kept)].copy()
    traces.loc[run, ["status", "fresh_sample_loss"]] = ["failed", np.nan]
    return traces


@pytest.fixture(scope="module")
def failing() -> pd.DataFrame:
    """Synthetic traces; on sphere, d = 2, K = 1: cmaes' seed 3 failed after 10 evaluations,
    casbo's seed 0 failed its evaluations 1-3 and 20."""
    traces = synthetic_traces()
    traces = fail_run(traces, _run_of(traces, "cmaes", 3), kept=10)
    traces = fail_evaluations(traces, _run_of(traces, "casbo", 0), [1, 2, 3, 20])
    return validate_trace(traces.reset_index(drop=True), source="failing")


@pytest.fixture(scope="module")
def tables(failing: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return build_tables(failing, targets=(1.0, 1e-3))


def _row(table: pd.DataFrame, method: str) -> pd.Series:
    rows = table[(table["method"] == method) & (table["problem"] == "sphere")]
    rows = rows[(rows["d"] == 2) & (rows["K"] == 1)]
    assert len(rows) >= 1
    return rows.iloc[0]


def test_the_final_loss_table_counts_failures(tables: dict[str, pd.DataFrame]) -> None:
    final = tables["final_loss"]
    validate_table("final_loss", final)
    cmaes, casbo = _row(final, "cmaes"), _row(final, "casbo")
    assert (cmaes["n_seeds"], cmaes["failed_runs"], cmaes["failed_evaluations"]) == (9, 1, 0)
    assert cmaes["min_evaluations"] == 10 and cmaes["n_fresh"] == 9
    assert (casbo["n_seeds"], casbo["failed_runs"], casbo["failed_evaluations"]) == (10, 0, 4)
    others = final[(final["method"] == "random") | (final["d"] == 5)]
    assert (others["failed_runs"] == 0).all() and (others["failed_evaluations"] == 0).all()


def test_a_failed_run_is_summarized_like_a_missing_seed_and_counted(
    failing: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    """The final-loss summary is over complete runs (the failed one is counted beside it);
    the ERT keeps the failed run as an unsuccessful run of the evaluations it spent, so it
    can only get worse than with the run left out."""
    missing = failing[~_run_of(failing, "cmaes", 3)]
    without = build_tables(missing, targets=(1.0, 1e-3))
    columns = [c for c in tables["final_loss"] if c not in ("failed_runs", "min_evaluations")]
    pd.testing.assert_series_equal(
        _row(tables["final_loss"], "cmaes")[columns], _row(without["final_loss"], "cmaes")[columns]
    )
    ert, ert_without = tables["ert"], without["ert"]
    cmaes = ert["method"] == "cmaes"
    for key, value in SETTING.items():
        cmaes &= ert[key] == value
    assert (ert.loc[cmaes, "runs"] == ert_without.loc[cmaes, "runs"] + 1).all()
    assert (ert.loc[cmaes, "evaluations"] >= ert_without.loc[cmaes, "evaluations"]).all()
    assert (ert.loc[cmaes, "ert"] >= ert_without.loc[cmaes, "ert"]).all()
    others = ~cmaes
    pd.testing.assert_frame_equal(ert[others], ert_without[others])


def test_a_failed_run_is_judged_worse_than_any_value(
    failing: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    """Paired on all ten seeds, cmaes's failed seed 3 counts as +inf: leaving it out would
    drop exactly the method's lost run."""
    row = _row(tables["significance"], "cmaes")
    assert row["test"] == "wilcoxon signed-rank" and row["n_pairs"] == 10
    finals = failing[failing["evaluation"] == failing["budget"]]
    seeds = list(range(10))

    def best(method: str) -> list[float]:
        return [
            finals.loc[_run_of(finals, method, s), "best_so_far"].item()
            if _run_of(finals, method, s).any()
            else np.inf
            for s in seeds
        ]

    assert np.isinf(best("cmaes")[3])
    expected = compare_to_reference(best("cmaes"), seeds, best("casbo"), seeds)
    assert row["p_value"] == expected.p_value
    assert row["median_difference"] == expected.median_difference
    assert _row(tables["significance"], "random")["n_pairs"] == 10


def test_a_method_whose_every_run_failed_is_judged_worse() -> None:
    traces = synthetic_traces(methods=("casbo", "cmaes"), problems=("sphere",), dims=(2,))
    for seed in range(10):
        traces = fail_run(traces, _run_of(traces, "cmaes", seed), kept=5)
    built = build_tables(validate_trace(traces.reset_index(drop=True), "test"))
    final = built["final_loss"]
    validate_table("final_loss", final)
    cmaes = _row(final, "cmaes")
    assert (cmaes["n_seeds"], cmaes["failed_runs"]) == (0, 10)
    assert np.isnan(cmaes[["best_median", "best_ci_low", "fresh_median"]].to_numpy(float)).all()
    tested = built["significance"]
    validate_table("significance", tested)
    row = tested[(tested["K"] == 1) & (tested["method"] == "cmaes")].iloc[0]
    assert row["win_fraction"] == 0.0 and row["verdict"] == "worse"


def test_figures_start_where_every_run_has_found_a_loss(
    failing: pd.DataFrame, tmp_path: Path
) -> None:
    paths = make_figures(failing[failing["problem"] == "sphere"], tmp_path)
    assert paths and all(path.stat().st_size > 0 for path in paths)


# --- molecule tasks ----------------------------------------------------------------------------

DIM, STEPS = task_size(4, 3)


@pytest.fixture(scope="module")
def molecule_trace() -> pd.DataFrame:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        casbo = run_job(Job("casbo", "mol-qed", DIM, (0, 1, 2), 12, n_steps=STEPS, fresh_samples=2))
        random = run_job(
            Job("random", "mol-qed", DIM, (0, 1, 2), 12, n_steps=STEPS, fresh_samples=2)
        )
    finally:
        torch.set_num_threads(threads)
    return pd.concat([casbo, random], ignore_index=True)


def test_an_invalid_molecule_is_a_scored_outcome_not_a_failure(
    molecule_trace: pd.DataFrame,
) -> None:
    assert not molecule_trace["failed"].any()
    assert (molecule_trace["status"] == "complete").all()
    assert np.isfinite(molecule_trace["loss"]).all()


def test_molecule_tables_skip_failed_evaluations_and_runs(molecule_trace: pd.DataFrame) -> None:
    trace = molecule_trace.copy()
    casbo = trace["method"] == "casbo"
    # casbo, seed 0: its best evaluation and the last one failed; random, seed 2: a failed run.
    run = casbo & (trace["seed"] == 0)
    best = trace.loc[run, "loss"].idxmin()
    details = [column for column in trace if column.startswith("detail_")]
    trace[details] = trace[details].astype(object)  # as the runner writes a raising rollout's
    for row in (best, trace.index[run][-1]):
        trace.loc[row, ["loss", "failed", "error"]] = [np.nan, True, "RuntimeError: no molecule"]
        trace.loc[row, details] = None
    found = trace.loc[run, "loss"].where(~trace.loc[run, "failed"], np.inf)
    trace.loc[run, "best_so_far"] = np.minimum.accumulate(found.to_numpy())
    broken = (trace["method"] == "random") & (trace["seed"] == 2)
    trace.loc[broken, "status"] = "failed"
    trace = validate_trace(trace, "test")
    summaries = run_summaries(trace, 0.25).set_index(["method", "seed"])
    assert ("random", 2) not in summaries.index
    assert summaries.loc[("casbo", 0), "n_optimized"] == 2  # 3 evaluations, 1 failed
    assert summaries.loc[("casbo", 0), "best_evaluation"] != trace.loc[best, "evaluation"]
    molecules = best_molecules(trace)
    assert len(molecules) == 5 and molecules["best_score"].notna().all()
    table = score_table(trace, reference="casbo").set_index("method")
    assert table.loc["random", "n_seeds"] == 2 and table.loc["casbo", "n_seeds"] == 3


def test_two_runs_still_at_infinity_tie_in_the_paired_differences() -> None:
    """Before either run's first successful evaluation both best-so-far values are +inf (the
    ledger's secondary budgets can fall there): a tie, not NaN; one infinite side is the
    largest difference."""
    from casbo_bench.analysis.stats import paired_differences

    inf = float("inf")
    assert paired_differences([inf, 1.0, inf], [inf, 2.0, 3.0]).tolist() == [0.0, -1.0, inf]
    assert paired_differences([1.0], [inf]).tolist() == [-inf]
