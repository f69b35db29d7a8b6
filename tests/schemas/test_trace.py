"""Tests of the trace schema: a good trace passes, each kind of bad frame is named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from casbo_bench.schemas.trace import (
    RUN_KEYS,
    TRACE_COLUMNS,
    TraceValidationError,
    validate_trace,
)

SOURCE = "results/raw/sphere_d3_K1_final_s0.parquet"


def _run(seed: int, method: str = "casbo", budget: int = 10, batch: int = 4) -> pd.DataFrame:
    """One run of ``budget`` evaluations in batches of ``batch`` (the last one cut)."""
    rng = np.random.default_rng(seed)
    loss = rng.exponential(size=budget)
    evaluation = np.arange(1, budget + 1)
    iteration = (evaluation - 1) // batch
    return pd.DataFrame(
        {
            "method": method,
            "optimizer": method,
            "problem": "sphere",
            "d": np.int64(3),
            "K": np.int64(1),
            "scoring": "final",
            "seed": np.int64(seed),
            "budget": np.int64(budget),
            "iteration": iteration.astype(np.int64),
            "evaluation": evaluation.astype(np.int64),
            "loss": loss,
            "best_so_far": np.minimum.accumulate(loss),
            "wall_time": 0.01 * (iteration + 1.0),
            "expected_loss": np.nan,
            "fresh_sample_loss": 0.5 + seed,
            "safeguard_events": np.minimum(iteration, 2).astype(np.int64),
            "failed": False,
            "error": "",
            "status": "complete",
        }
    )


@pytest.fixture
def trace() -> pd.DataFrame:
    """Two methods x two seeds, ten evaluations each."""
    runs = [_run(seed, method) for method in ("casbo", "random") for seed in (0, 1)]
    return pd.concat(runs, ignore_index=True)


def _failure(frame: pd.DataFrame) -> str:
    with pytest.raises(TraceValidationError) as raised:
        validate_trace(frame, source=SOURCE)
    message = str(raised.value)
    assert message.splitlines()[0].startswith(f"trace {SOURCE} failed validation")
    return message


def test_good_trace_passes_unchanged(trace: pd.DataFrame) -> None:
    assert list(trace.columns) == list(TRACE_COLUMNS)
    validated = validate_trace(trace, source=SOURCE)
    pd.testing.assert_frame_equal(validated, trace)


def test_row_order_does_not_matter(trace: pd.DataFrame) -> None:
    shuffled = trace.sample(frac=1.0, random_state=np.random.default_rng(0))
    validate_trace(shuffled, source=SOURCE)


def test_object_string_columns_pass(trace: pd.DataFrame) -> None:
    """Older pandas (and some readers) hold text as object columns."""
    text = ["method", "optimizer", "problem", "scoring"]
    validate_trace(trace.astype(dict.fromkeys(text, object)), source=SOURCE)


def test_failed_evaluations_and_a_failed_run_pass(trace: pd.DataFrame) -> None:
    """A failed evaluation: NaN loss, its error, left out of best-so-far (inf before the first
    success); a failed run may stop before its budget."""
    first = trace.index[:10]
    trace.loc[first[[0, 1, 5]], ["loss", "failed", "error"]] = [np.nan, True, "loss is nan"]
    found = trace.loc[first, "loss"].where(~trace.loc[first, "failed"], np.inf)
    trace.loc[first, "best_so_far"] = np.minimum.accumulate(found.to_numpy())
    assert np.isposinf(trace.loc[first[:2], "best_so_far"]).all()
    stopped = trace.drop(index=trace.index[15:20])
    stopped.loc[stopped.index[10:15], "status"] = "failed"
    validate_trace(stopped, source=SOURCE)


def test_ties_in_best_so_far_pass(trace: pd.DataFrame) -> None:
    trace.loc[trace.index[:10], "loss"] = 1.0
    trace.loc[trace.index[:10], "best_so_far"] = 1.0
    validate_trace(trace, source=SOURCE)


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return corrupt


BAD_FRAMES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "missing column": (
        lambda frame: frame.drop(columns="wall_time"),
        "missing column 'wall_time'",
    ),
    "unexpected column": (
        lambda frame: frame.assign(note="x"),
        "unexpected column 'note'",
    ),
    "wrong dtype": (
        lambda frame: frame.astype({"d": np.float64}),
        "column 'd' has dtype float64, expected int64",
    ),
    "loss as text": (
        lambda frame: frame.astype({"loss": str}),
        "column 'loss' has dtype",
    ),
    "nan loss": (
        _set("loss", 3, np.nan),
        "column 'loss' must be NaN exactly on the failed evaluations",
    ),
    "infinite loss": (_set("loss", 3, np.inf), "column 'loss' must be finite"),
    "best_so_far not the running minimum": (
        _set("best_so_far", 5, -1.0),
        "best_so_far must equal the running minimum of loss within each run: 1 row(s) "
        "fail (rows 5)",
    ),
    "evaluation gap": (
        _set("evaluation", 9, 11),
        "the evaluations of a run must be 1..n without gaps",
    ),
    "duplicate evaluation": (
        _set("evaluation", 9, 9),
        "duplicate evaluation",
    ),
    "evaluation beyond the budget": (_set("budget", 9, 5), "evaluation must be <= budget"),
    "unknown scoring": (
        _set("scoring", 0, "best"),
        "column 'scoring' must be one of final, cumulative",
    ),
    "empty method": (_set("method", 0, ""), "column 'method' must be a non-empty string"),
    "dimension zero": (_set("d", 0, 0), "column 'd' must be >= 1"),
    "negative seed": (_set("seed", 0, -1), "column 'seed' must be >= 0"),
    "wall_time decreasing": (
        _set("wall_time", 9, 0.0),
        "wall_time must not decrease within a run",
    ),
    "negative wall_time": (_set("wall_time", 0, -1.0), "column 'wall_time' must be >= 0"),
    "safeguard_events decreasing": (
        _set("safeguard_events", 9, 0),
        "safeguard_events must not decrease within a run",
    ),
    "fresh_sample_loss varies within a run": (
        _set("fresh_sample_loss", 4, 9.0),
        "fresh_sample_loss must be the same on every row of a run",
    ),
    "no rows": (lambda frame: frame.iloc[:0], "a trace must have at least one row"),
    "failed evaluation with a loss": (
        _set("failed", 3, True),
        "column 'loss' must be NaN exactly on the failed evaluations",
    ),
    "failed evaluation without an error": (
        lambda frame: _set("failed", 3, True)(_set("loss", 3, np.nan)(frame)),
        "column 'error' must be non-empty exactly on the failed evaluations",
    ),
    "error on a successful evaluation": (
        _set("error", 3, "loss is nan"),
        "column 'error' must be non-empty exactly on the failed evaluations",
    ),
    "unknown status": (
        _set("status", 0, "done"),
        "column 'status' must be one of complete, failed",
    ),
    "status varies within a run": (
        _set("status", 4, "failed"),
        "status must be the same on every row of a run",
    ),
    "complete run short of its budget": (
        lambda frame: frame.drop(index=9),
        "a complete run (status complete) must have exactly budget evaluations",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FRAMES))
def test_bad_frame_is_rejected_naming_source_and_check(trace: pd.DataFrame, kind: str) -> None:
    corrupt, expected = BAD_FRAMES[kind]
    message = _failure(corrupt(trace.copy()))
    assert expected in message


def test_every_failure_is_reported_once_per_line(trace: pd.DataFrame) -> None:
    """Lazy validation: all failed checks at once, one readable line each."""
    trace.loc[2, "loss"] = np.inf
    trace.loc[:9, "scoring"] = "best"  # the whole first run, so it stays one run
    trace.loc[15, "best_so_far"] = -5.0
    trace = trace.drop(columns="expected_loss")
    lines = _failure(trace).splitlines()[1:]
    assert len(lines) == 4, lines
    assert all(line.startswith("  - ") for line in lines)
    joined = "\n".join(lines)
    for expected in (
        "column 'loss' must be finite",
        "column 'scoring' must be one of",
        "best_so_far must equal the running minimum",
        "missing column 'expected_loss'",
    ):
        assert expected in joined


def test_failing_rows_are_named_in_the_original_index(trace: pd.DataFrame) -> None:
    """Checks run on a sorted copy; the rows they name are the caller's rows."""
    reversed_trace = trace.iloc[::-1]
    reversed_trace.loc[17, "best_so_far"] = -1.0
    assert "(rows 17)" in _failure(reversed_trace)


def test_runs_are_told_apart_by_their_keys(trace: pd.DataFrame) -> None:
    """Two runs that differ in one key only are separate runs, each 1..n."""
    for key in RUN_KEYS:
        other = trace[(trace["method"] == "casbo") & (trace["seed"] == 0)].copy()
        base = trace[(trace["method"] == "casbo") & (trace["seed"] == 0)]
        value = other[key].iloc[0]
        other[key] = value + 7 if isinstance(value, np.integer | int) else f"{value}-b"
        if key == "scoring":
            other[key] = "cumulative"
        validate_trace(pd.concat([base, other], ignore_index=True), source=SOURCE)


def test_error_is_a_value_error() -> None:
    assert issubclass(TraceValidationError, ValueError)


def _with_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the molecule tasks' cost columns: one call and 4 denoiser evaluations
    per rollout."""
    return frame.assign(calls=frame["evaluation"], denoiser_evals=4 * frame["evaluation"])


def test_cost_columns_pass_and_are_optional(trace: pd.DataFrame) -> None:
    validate_trace(_with_costs(trace), "costs")
    validate_trace(trace, "no costs")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(calls=f["evaluation"] - 1), "calls must be >= evaluation"),
        (lambda f: f.assign(denoiser_evals=-f["denoiser_evals"]), "denoiser_evals"),
        (
            lambda f: f.assign(calls=np.where(f["evaluation"] == 3, 100, f["calls"])),
            "calls must not decrease within a run",
        ),
    ],
)
def test_bad_cost_columns_are_refused(trace: pd.DataFrame, change: Any, message: str) -> None:
    with pytest.raises(TraceValidationError, match=message):
        validate_trace(change(_with_costs(trace)), "costs")
