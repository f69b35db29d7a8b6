from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.ert import (
    DEFAULT_FRACTIONS,
    DEFAULT_RULE,
    DEFAULT_TARGETS,
    RelativeTargetError,
    TargetRule,
    check_targets,
    expected_running_time,
    infinite_share,
    initial_gaps,
    running_times,
)
from casbo_bench.errors import UserFacingError
from casbo_bench.schemas.tables import validate_table
from casbo_bench.schemas.trace import (
    CELL_KEYS,
    RUN_KEYS,
    SETTING_KEYS,
    validate_trace,
)

from .synthetic import hand_run as one_run


def hand_run(seed: int, losses: list[float], budget: int, method: str = "casbo") -> pd.DataFrame:
    return one_run(method, seed, losses, budget)


@pytest.fixture
def two_runs() -> pd.DataFrame:
    """Run 0 first reaches 1e-2 at evaluation 7; run 1 never does within its budget of 10."""
    hits = [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.005, 0.2, 0.001, 0.3]
    misses = [5.0, 3.0, 2.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    frame = pd.concat([hand_run(0, hits, 10), hand_run(1, misses, 10)], ignore_index=True)
    return validate_trace(frame, source="hand-made")


def test_hand_made_ert(two_runs: pd.DataFrame) -> None:
    table = expected_running_time(two_runs, targets=[1e-2])
    row = table.iloc[0]
    assert (row["runs"], row["successes"], row["evaluations"]) == (2, 1, 17)
    assert row["ert"] == pytest.approx((7 + 10) / 1)


def test_reaching_exactly_the_target_counts(two_runs: pd.DataFrame) -> None:
    times = running_times(two_runs, targets=[0.5])
    by_seed = times.set_index("seed")
    assert by_seed.loc[0, "reached"] and by_seed.loc[0, "evaluations"] == 6
    assert by_seed.loc[1, "reached"] and by_seed.loc[1, "evaluations"] == 9


def test_no_success_is_infinite(two_runs: pd.DataFrame) -> None:
    row = expected_running_time(two_runs, targets=[1e-8]).iloc[0]
    assert row["successes"] == 0
    assert row["evaluations"] == 20
    assert np.isposinf(row["ert"])


def test_all_runs_succeed_at_an_easy_target(two_runs: pd.DataFrame) -> None:
    row = expected_running_time(two_runs, targets=[10.0]).iloc[0]
    assert (row["successes"], row["ert"]) == (2, 1.0)


@pytest.mark.parametrize("rule", [TargetRule.absolute(), TargetRule.relative()])
def test_targets_do_not_move_with_the_budget(two_runs: pd.DataFrame, rule: TargetRule) -> None:
    # the same first 10 evaluations, continued to a budget of 20: a target reached within
    # the first 10 evaluations gets the same running time, and the targets are the same
    # (relative ones come from the first evaluation alone)
    longer = pd.concat(
        [
            hand_run(0, [*two_runs.loc[two_runs["seed"] == 0, "loss"], *[0.1] * 10], 20),
            hand_run(1, [*two_runs.loc[two_runs["seed"] == 1, "loss"], *[0.1] * 10], 20),
        ],
        ignore_index=True,
    )
    short = expected_running_time(two_runs, rule)
    long = expected_running_time(longer, rule)
    np.testing.assert_array_equal(short["target"], long["target"])
    np.testing.assert_array_equal(short["level"], rule.levels)
    easiest = short["level"] == rule.levels[0]
    assert short.loc[easiest, "ert"].item() == long.loc[easiest, "ert"].item()


def test_default_targets_are_cocos() -> None:
    np.testing.assert_allclose(DEFAULT_TARGETS, [10.0**e for e in range(2, -9, -1)])


def reference_ert(traces: pd.DataFrame, target: float) -> dict[tuple[object, ...], float]:
    """ERT written as the definition reads, one run at a time."""
    spent: dict[tuple[object, ...], list[int]] = {}
    hits: dict[tuple[object, ...], int] = {}
    for run, frame in traces.groupby(list(RUN_KEYS)):
        cell = run[: len(CELL_KEYS)]
        frame = frame.sort_values("evaluation")
        reached = frame.loc[frame["loss"] <= target, "evaluation"]
        spent.setdefault(cell, []).append(
            int(reached.iloc[0]) if len(reached) else int(frame["evaluation"].max())
        )
        hits[cell] = hits.get(cell, 0) + int(len(reached) > 0)
    return {cell: (sum(spent[cell]) / hits[cell] if hits[cell] else np.inf) for cell in spent}


def test_matches_the_definition_on_synthetic_traces(traces: pd.DataFrame) -> None:
    targets = [10.0, 1e-1, 1e-4]
    table = expected_running_time(traces, targets)
    assert len(table) == traces.groupby(list(CELL_KEYS)).ngroups * len(targets)
    for target in targets:
        expected = reference_ert(traces, target)
        rows = table[table["target"] == target].set_index(list(CELL_KEYS))["ert"]
        for cell, value in expected.items():
            assert rows.loc[cell] == pytest.approx(value)


@pytest.mark.parametrize(
    ("targets", "message"),
    [([], "at least one"), ([1.0, np.nan], "finite"), ([1.0, 1.0], "distinct")],
)
def test_bad_targets(targets: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_targets(targets)


# --- relative targets -------------------------------------------------------------------------


def test_default_targets_are_the_registered_fractions() -> None:
    np.testing.assert_allclose(DEFAULT_FRACTIONS, [10.0**e for e in range(-1, -7, -1)])
    assert TargetRule.relative(DEFAULT_FRACTIONS) == DEFAULT_RULE
    assert DEFAULT_RULE.kind == "relative"


def test_relative_targets_are_fractions_of_the_pooled_median_first_loss() -> None:
    runs = [
        hand_run(0, [8.0, 1.0, 0.5], 3, "casbo"),
        hand_run(1, [2.0, 0.4, 0.01], 3, "casbo"),
        hand_run(0, [4.0, 4.0, 4.0], 3, "cmaes"),
        hand_run(1, [6.0, 0.5, 0.1], 3, "cmaes"),
    ]
    traces = validate_trace(pd.concat(runs, ignore_index=True), source="hand-made")
    gaps = initial_gaps(traces)
    assert gaps["initial_gap"].item() == np.median([8.0, 2.0, 4.0, 6.0]) == 5.0
    assert gaps["initial_runs"].item() == 4
    table = expected_running_time(traces, TargetRule.relative([0.1, 0.01]))
    assert (table["initial_gap"] == 5.0).all()
    np.testing.assert_allclose(table.loc[table["level"] == 0.1, "target"], 0.5)
    # casbo reached 0.5 at evaluation 3 (seed 0) and 2 (seed 1): ERT (3 + 2) / 2
    casbo = table[(table["method"] == "casbo") & (table["level"] == 0.1)].iloc[0]
    assert casbo["ert"] == pytest.approx(2.5)
    validate_table("ert", table)


def test_relative_targets_are_the_same_for_every_method_of_a_setting(
    traces: pd.DataFrame,
) -> None:
    table = expected_running_time(traces, DEFAULT_RULE)
    validate_table("ert", table)
    per_setting = table.groupby([*SETTING_KEYS, "level"])["target"].nunique()
    assert (per_setting == 1).all()
    # ... and the pooled median over every method's first evaluation, whichever method runs
    first = traces[traces["evaluation"] == 1].groupby(list(SETTING_KEYS))["loss"].median()
    for setting, gap in first.items():
        rows = table[(table[list(SETTING_KEYS)] == pd.Series(setting, SETTING_KEYS)).all(axis=1)]
        np.testing.assert_allclose(rows["initial_gap"], gap, rtol=0, atol=0)
        np.testing.assert_allclose(rows["target"], rows["level"] * gap, rtol=1e-15)


def test_a_method_changes_no_target_by_what_it_does_after_its_first_evaluation(
    traces: pd.DataFrame,
) -> None:
    better = traces.copy()
    later = (better["method"] == "random") & (better["evaluation"] > 1)
    better.loc[later, "loss"] *= 1e-3
    better["best_so_far"] = better.groupby(list(RUN_KEYS))["loss"].cummin()
    before = expected_running_time(traces, DEFAULT_RULE)
    after = expected_running_time(validate_trace(better, "better"), DEFAULT_RULE)
    pd.testing.assert_series_equal(before["target"], after["target"])


def test_a_failed_first_evaluation_is_left_out_of_the_initial_gap() -> None:
    run = hand_run(0, [100.0, 2.0, 1.0], 3)
    run.loc[0, ["loss", "failed", "error"]] = [np.nan, True, "loss is nan"]
    run["best_so_far"] = run["loss"].fillna(np.inf).cummin()
    other = hand_run(1, [4.0, 3.0, 1.0], 3)
    traces = validate_trace(pd.concat([run, other], ignore_index=True), "failed first")
    gaps = initial_gaps(traces)
    assert (gaps["initial_gap"].item(), gaps["initial_runs"].item()) == (4.0, 1)


def test_relative_targets_refuse_losses_below_zero_in_one_line() -> None:
    scores = validate_trace(hand_run(0, [-0.3, -0.5, -0.6], 3), "negated scores")
    with pytest.raises(RelativeTargetError) as raised:
        expected_running_time(scores, DEFAULT_RULE)
    message = str(raised.value)
    assert isinstance(raised.value, UserFacingError) and "\n" not in message
    assert "not an optimality gap" in message and "absolute targets" in message
    # absolute targets still apply (no initial gap)
    table = expected_running_time(scores, TargetRule.absolute([-0.4 + 1.0]))
    assert table["initial_gap"].isna().all()


@pytest.mark.parametrize("fractions", [[0.0, 0.1], [1.5], [0.1, 0.1]])
def test_bad_fractions(fractions: list[float]) -> None:
    with pytest.raises(ValueError):
        TargetRule.relative(fractions)


def test_infinite_share_counts_cells_per_level(two_runs: pd.DataFrame) -> None:
    table = expected_running_time(two_runs, [10.0, 1e-2, 1e-8])
    share = infinite_share(table)
    validate_table("ert_inf_share", share)
    assert share["level"].iloc[:3].tolist() == [10.0, 1e-2, 1e-8]
    assert share["infinite"].tolist() == [0, 0, 1, 1]
    assert share["cells"].tolist() == [1, 1, 1, 3]
    assert np.isnan(share["level"].iloc[3])
    assert share["share_infinite"].iloc[3] == pytest.approx(1 / 3)
