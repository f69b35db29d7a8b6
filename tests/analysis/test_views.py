"""The views of a benchmark group: best-so-far at given budgets, the win matrix at matched
budgets, the fixed-budget and rank tables and the runtime ECDF, each against a count by
hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.ert import TargetRule
from casbo_bench.analysis.stats import compare_to_reference, holm_adjust
from casbo_bench.analysis.views import (
    best_at,
    ecdf_grid,
    fixed_budget_table,
    matched_win_matrix,
    rank_table,
    runtime_ecdf,
)
from casbo_bench.schemas.tables import validate_table
from casbo_bench.schemas.trace import SETTING_KEYS, validate_trace

from .synthetic import hand_run, synthetic_traces


def traces_of(*runs: pd.DataFrame) -> pd.DataFrame:
    return validate_trace(pd.concat(runs, ignore_index=True), source="hand-made")


def capped(traces: pd.DataFrame, method: str, cap: int) -> pd.DataFrame:
    """``traces`` with ``method``'s runs cut to their first ``cap`` evaluations, budget ``cap``
    (as the runner writes a method whose budget is capped)."""
    own = traces["method"] == method
    kept = traces[~own | (traces["evaluation"] <= cap)].copy()
    kept.loc[kept["method"] == method, "budget"] = cap
    return validate_trace(kept.reset_index(drop=True), source="capped")


# --- best-so-far at given budgets ---------------------------------------------------------------


def test_best_at_reads_each_run_within_its_budget() -> None:
    traces = traces_of(
        hand_run("casbo", 0, [5.0, 3.0, 4.0, 1.0]),
        hand_run("turbo", 0, [6.0, 2.0]),
        hand_run("cmaes", 0, [5.0, 1.0], budget=4, status="failed"),
    )
    values = best_at(traces, [1, 2, 4]).set_index(["method", "at"])["value"]
    assert values.loc[("casbo", 1)] == 5.0 and values.loc[("casbo", 4)] == 1.0
    assert values.loc[("turbo", 2)] == 2.0 and ("turbo", 4) not in values.index
    # a failed run is judged worse than any value at every budget
    assert np.isposinf(values.loc["cmaes"]).all() and len(values.loc["cmaes"]) == 3


# --- the win matrix at matched budgets ----------------------------------------------------------


@pytest.fixture(scope="module")
def with_cap() -> pd.DataFrame:
    """Synthetic casbo and cmaes (40 evaluations), and "turbo": casbo's runs with their
    losses scaled by seeded noise, capped at 10 evaluations."""
    traces = synthetic_traces(methods=("casbo", "cmaes"), seeds=tuple(range(6)))
    turbo = traces[traces["method"] == "casbo"].copy()
    rng = np.random.default_rng(3)
    turbo["method"] = turbo["optimizer"] = "turbo"
    turbo["loss"] = turbo["loss"] * rng.lognormal(0.0, 1.5, len(turbo))
    turbo["best_so_far"] = turbo.groupby(["problem", "d", "K", "scoring", "seed"])["loss"].cummin()
    both = pd.concat([traces, turbo], ignore_index=True)
    return capped(validate_trace(both, "with turbo"), "turbo", 10)


def _best_at_evaluation(traces: pd.DataFrame, method: str, evaluation: int) -> pd.Series:
    rows = traces[(traces["method"] == method) & (traces["evaluation"] == evaluation)]
    return rows.set_index([*SETTING_KEYS, "seed"])["best_so_far"]


def test_a_capped_method_is_compared_at_its_cap(with_cap: pd.DataFrame) -> None:
    matrix = matched_win_matrix(with_cap, ["casbo", "cmaes", "turbo"])
    # by hand: every (setting, seed), each side's best-so-far after 10 evaluations
    mine = _best_at_evaluation(with_cap, "casbo", 10)
    theirs = _best_at_evaluation(with_cap, "turbo", 10)
    mine, theirs = mine.align(theirs, join="inner")
    by_hand = float(np.mean(mine < theirs) + 0.5 * np.mean(mine == theirs))
    assert matrix.fraction.loc["casbo", "turbo"] == pytest.approx(by_hand)
    assert matrix.fraction.loc["turbo", "casbo"] == pytest.approx(1.0 - by_hand)
    assert matrix.n_cells.loc["casbo", "turbo"] == len(mine) == 8 * 6
    # casbo at its full 40 evaluations would be judged differently: the cap matters here
    final = _best_at_evaluation(with_cap, "casbo", 40).loc[theirs.index]
    assert float(np.mean(final < theirs)) != pytest.approx(by_hand)
    # two uncapped methods are compared at their (common) full budget
    full = _best_at_evaluation(with_cap, "casbo", 40)
    other = _best_at_evaluation(with_cap, "cmaes", 40)
    assert matrix.fraction.loc["casbo", "cmaes"] == pytest.approx(float(np.mean(full < other)))


def test_a_failed_run_loses_in_the_win_matrix() -> None:
    traces = traces_of(
        hand_run("casbo", 0, [3.0, 2.0]),
        hand_run("casbo", 1, [3.0, 2.0]),
        hand_run("cmaes", 0, [3.0, 1.0]),
        hand_run("cmaes", 1, [0.5], budget=2, status="failed"),
    )
    matrix = matched_win_matrix(traces)
    assert matrix.n_cells.loc["casbo", "cmaes"] == 2
    assert matrix.fraction.loc["casbo", "cmaes"] == 0.5  # loses seed 0, wins the failed seed 1


# --- fixed budgets ------------------------------------------------------------------------------


def test_fixed_budgets_their_names_and_the_capped_method() -> None:
    traces = synthetic_traces(methods=("casbo", "cmaes"), dims=(1, 2), seeds=tuple(range(5)))
    traces = capped(traces, "cmaes", 10)
    table = fixed_budget_table(traces, ["10d", "100d"])
    validate_table("fixed_budget", table)
    names = table.groupby("d")[["budget", "budget_names"]].apply(
        lambda rows: dict(zip(rows["budget"], rows["budget_names"], strict=True))
    )
    assert names.loc[1] == {10: "10d, cap", 40: "full"}  # 100d = 100 > 40: left out
    assert names.loc[2] == {10: "cap", 20: "10d", 40: "full"}
    assert set(table.loc[table["method"] == "cmaes", "budget"]) == {10}
    row = table[
        (table["method"] == "casbo")
        & (table["problem"] == "sphere")
        & (table["d"] == 2)
        & (table["K"] == 3)
        & (table["budget"] == 20)
    ].iloc[0]
    by_hand = _best_at_evaluation(traces, "casbo", 20).xs(("sphere", 2, 3), level=[0, 1, 2])
    assert row["runs"] == 5 and row["failed_runs"] == 0
    assert row["best_median"] == pytest.approx(np.median(by_hand))
    assert row["best_q25"] == pytest.approx(np.quantile(by_hand, 0.25))
    assert row["best_q75"] == pytest.approx(np.quantile(by_hand, 0.75))


def test_a_failed_run_is_inf_in_the_fixed_budget_table() -> None:
    traces = traces_of(
        hand_run("casbo", 0, [3.0, 2.0, 1.0, 1.0]),
        hand_run("casbo", 1, [3.0, 1.0], budget=4, status="failed"),
        hand_run("casbo", 2, [4.0, 3.0, 2.0, 2.0]),
    )
    table = fixed_budget_table(traces, [2])
    validate_table("fixed_budget", table)
    at_two = table[table["budget"] == 2].iloc[0]
    assert (at_two["runs"], at_two["failed_runs"]) == (3, 1)
    assert (at_two["best_median"], at_two["best_q75"]) == (3.0, np.inf)
    assert at_two["best_q25"] == pytest.approx(2.5)
    # two failed runs of three: the upper quartile lies between two infinities
    traces = traces_of(
        hand_run("casbo", 0, [3.0, 2.0]),
        hand_run("casbo", 1, [3.0], budget=2, status="failed"),
        hand_run("casbo", 2, [4.0], budget=2, status="failed"),
    )
    row = fixed_budget_table(traces, []).iloc[0]
    assert (row["best_q25"], row["best_median"], row["best_q75"]) == (np.inf, np.inf, np.inf)


# --- ranks --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranked() -> tuple[pd.DataFrame, pd.DataFrame]:
    """a and b with budget 4, c capped at 2; eight seeds. At 2 evaluations: a < b at every
    seed but seed 7 (a tie), c worst but at seed 0; at 4 evaluations b beats a everywhere."""
    runs = []
    for seed in range(8):
        tie = seed == 7
        runs.append(hand_run("a", seed, [5.0, 1.0, 1.0, 1.0 - 0.01 * seed]))
        runs.append(hand_run("b", seed, [5.0, 1.0 if tie else 2.0, 0.5, 0.1]))
        runs.append(hand_run("c", seed, [5.0, 0.1 if seed == 0 else 3.0]))
    traces = traces_of(*runs)
    return traces, rank_table(traces, alpha=0.05)


def test_ranks_at_the_cap_then_at_the_full_budget(
    ranked: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    _, table = ranked
    validate_table("ranks", table)
    at_cap = table[table["budget"] == 2].set_index("method")
    assert (at_cap["n_methods"] == 3).all() and (at_cap["left_out"] == "none").all()
    # seed 0: c 1, a 2, b 3; seeds 1-6: a 1, b 2, c 3; seed 7: a and b tie at 1.5, c 3
    assert at_cap.loc["a", "mean_rank"] == pytest.approx((2 + 6 * 1 + 1.5) / 8)
    assert at_cap.loc["b", "mean_rank"] == pytest.approx((3 + 6 * 2 + 1.5) / 8)
    assert at_cap.loc["c", "mean_rank"] == pytest.approx((1 + 7 * 3) / 8)
    assert at_cap["place"].to_dict() == {"a": 1, "b": 2, "c": 3}
    assert (at_cap["winner"] == "a").all() and (at_cap["runner_up"] == "b").all()
    full = table[table["budget"] == 4].set_index("method")
    assert set(full.index) == {"a", "b"} and (full["left_out"] == "c").all()
    assert full.loc["b", "mean_rank"] == 1.0 and (full["winner"] == "b").all()


def test_the_mark_is_the_holm_adjusted_paired_test_of_winner_and_runner_up(
    ranked: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    traces, table = ranked
    seeds = list(range(8))
    p_values = []
    for budget, winner, runner_up in ((2, "a", "b"), (4, "b", "a")):
        mine = _best_at_evaluation(traces, winner, budget).to_numpy()
        theirs = _best_at_evaluation(traces, runner_up, budget).to_numpy()
        p_values.append(compare_to_reference(mine, seeds, theirs, seeds).p_value)
    adjusted = holm_adjust(p_values)
    for budget, p_value, p_holm in zip((2, 4), p_values, adjusted, strict=True):
        rows = table[table["budget"] == budget]
        assert (rows["p_value"] == p_value).all() and (rows["p_holm"] == p_holm).all()
        assert (rows["significant"] == (p_holm < 0.05)).all()
    # b beats a at all eight seeds at the full budget: p = 2/2^8, 2/2^8 x 2 after Holm
    assert table.loc[table["budget"] == 4, "p_holm"].iloc[0] == pytest.approx(2 * 2 / 2**8)
    assert table.loc[table["budget"] == 4, "significant"].all()


def test_a_failed_run_ranks_last() -> None:
    traces = traces_of(
        hand_run("a", 0, [1.0, 0.5]),
        hand_run("b", 0, [2.0], budget=2, status="failed"),
        hand_run("a", 1, [1.0, 0.5]),
        hand_run("b", 1, [0.1, 0.1]),
    )
    table = rank_table(traces).set_index("method")
    assert table.loc["a", "mean_rank"] == 1.5 and table.loc["b", "mean_rank"] == 1.5


# --- runtime ECDF -------------------------------------------------------------------------------


def test_ecdf_counts_run_target_pairs_by_hand() -> None:
    traces = traces_of(
        hand_run("casbo", 0, [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.005, 0.2]),
        hand_run("casbo", 1, [5.0, 3.0, 2.0, 0.9, 0.8, 0.7, 0.6, 0.5]),
        hand_run("turbo", 0, [0.9, 0.9, 0.001]),
        hand_run("turbo", 1, [2.0, 2.0, 2.0]),
    )
    ecdf = runtime_ecdf(traces, TargetRule.absolute([1.0, 1e-2]), seed=0)
    validate_table("ecdf", ecdf)
    casbo = ecdf[ecdf["method"] == "casbo"].set_index("evaluations")["fraction"]
    # seed 0 reaches 1.0 at 5 and 0.01 at 7; seed 1 reaches 1.0 at 4, never 0.01
    expected = {1: 0, 3: 0, 4: 1 / 4, 5: 2 / 4, 6: 2 / 4, 7: 3 / 4, 8: 3 / 4}
    for evaluations, fraction in expected.items():
        assert casbo.loc[evaluations] == pytest.approx(fraction)
    turbo = ecdf[ecdf["method"] == "turbo"]
    assert turbo["evaluations"].max() == 3 == turbo["method_budget"].iloc[0]
    assert turbo["fraction"].tolist() == [0.25, 0.25, 0.5]
    assert (ecdf["pairs"] == 4).all() and (ecdf["runs"] == 2).all()


def test_ecdf_band_is_seeded_and_brackets_the_curve(traces: pd.DataFrame) -> None:
    first = runtime_ecdf(traces, TargetRule.relative([0.1, 1e-3]), seed=4, n_resamples=500)
    again = runtime_ecdf(traces, TargetRule.relative([0.1, 1e-3]), seed=4, n_resamples=500)
    pd.testing.assert_frame_equal(first, again)
    validate_table("ecdf", first)
    assert (first["ci_low"] <= first["fraction"] + 1e-12).all()
    assert (first["fraction"] <= first["ci_high"] + 1e-12).all()
    # each method's band has its own generator: leaving a method out changes no other row
    # (at absolute targets; relative ones pool every method's first evaluation)
    absolute = TargetRule.absolute([1.0, 1e-3])
    every = runtime_ecdf(traces, absolute, seed=4, n_resamples=500)
    fewer = runtime_ecdf(traces[traces["method"] != "random"], absolute, seed=4, n_resamples=500)
    pd.testing.assert_frame_equal(every[every["method"] != "random"].reset_index(drop=True), fewer)


def test_ecdf_grid_holds_every_budget() -> None:
    grid = ecdf_grid([40, 300])
    assert grid[0] == 1 and grid[-1] == 300 and 40 in grid
    assert (np.diff(grid) > 0).all()
