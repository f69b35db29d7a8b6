from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.ert import (
    DEFAULT_TARGETS,
    check_targets,
    expected_running_time,
    running_times,
)
from casbo_bench.schemas.trace import CELL_KEYS, RUN_KEYS, TRACE_COLUMNS, validate_trace


def hand_run(seed: int, losses: list[float], budget: int) -> pd.DataFrame:
    evaluation = np.arange(1, len(losses) + 1)
    return pd.DataFrame(
        {
            "method": "casbo",
            "optimizer": "casbo",
            "problem": "sphere",
            "d": 2,
            "K": 1,
            "scoring": "final",
            "seed": seed,
            "budget": budget,
            "iteration": evaluation - 1,
            "evaluation": evaluation,
            "loss": losses,
            "best_so_far": np.minimum.accumulate(losses),
            "wall_time": 0.1 * evaluation,
            "expected_loss": np.nan,
            "fresh_sample_loss": np.nan,
            "safeguard_events": 0,
            "failed": False,
            "error": "",
            "status": "complete",
        }
    ).astype(TRACE_COLUMNS)


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


def test_targets_do_not_move_with_the_budget(two_runs: pd.DataFrame) -> None:
    # the same first 10 evaluations, continued to a budget of 20: a target reached within
    # the first 10 evaluations gets the same running time, and the targets are the same
    longer = pd.concat(
        [
            hand_run(0, [*two_runs.loc[two_runs["seed"] == 0, "loss"], *[0.1] * 10], 20),
            hand_run(1, [*two_runs.loc[two_runs["seed"] == 1, "loss"], *[0.1] * 10], 20),
        ],
        ignore_index=True,
    )
    short = expected_running_time(two_runs)
    long = expected_running_time(longer)
    np.testing.assert_array_equal(short["target"], long["target"])
    np.testing.assert_array_equal(short["target"], sorted(DEFAULT_TARGETS, reverse=True))
    assert (
        short.loc[short["target"] == 1.0, "ert"].item()
        == long.loc[long["target"] == 1.0, "ert"].item()
    )


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
