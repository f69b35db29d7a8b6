"""Expected running time (ERT) at fixed targets, as in COCO.

A target is a loss level. Every numerical problem has f* = 0, so the loss is the optimality
gap and the default targets are the COCO levels 1e2, 1e1, ..., 1e-8. Targets are given, never
derived from the budget or from the results, so the same target means the same thing in
every table and a larger budget never moves it.

A run *reaches* target t at the first evaluation whose loss is <= t (equivalently whose
best-so-far is <= t). Over the runs of one cell,

    ERT(t) = (sum over runs of the evaluations each spent until it reached t, or all the
              evaluations it spent if it never did) / (number of runs that reached t)

which is infinite when no run reached t. For a complete run "all the evaluations it spent"
is its budget.

>>> running = expected_running_time(traces, targets=[1e-2])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from casbo_bench.schemas.trace import CELL_KEYS, RUN_KEYS

FloatArray = NDArray[np.float64]

DEFAULT_TARGETS: tuple[float, ...] = tuple(10.0**exponent for exponent in range(2, -9, -1))
"""COCO's target loss levels 1e2, 1e1, ..., 1e-8 (f* = 0 on every numerical problem)."""


def check_targets(targets: ArrayLike) -> FloatArray:
    """``targets`` as a float64 array sorted from easiest (largest) to hardest.

    Raises:
        ValueError: no targets, a non-finite target, or a repeated target.
    """
    array = np.asarray(targets, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError("give at least one target loss level (e.g. 1e-2)")
    if not np.isfinite(array).all():
        raise ValueError(f"targets must be finite loss levels; got {array.tolist()}")
    if np.unique(array).size != array.size:
        raise ValueError(f"targets must be distinct; got {array.tolist()}")
    return np.sort(array)[::-1]


def running_times(traces: pd.DataFrame, targets: Sequence[float] | ArrayLike) -> pd.DataFrame:
    """Per run and target: whether the run reached the target, and the evaluations it spent.

    Args:
        traces: validated traces (evaluations 1..n in every run, best-so-far a running
            minimum; see :func:`casbo_bench.analysis.io.load_traces`).
        targets: loss levels.

    Returns:
        A frame with one row per run and target: the :data:`RUN_KEYS`, ``budget``,
        ``target``, ``reached`` (bool) and ``evaluations`` (the evaluation at which the run
        first reached the target, or the evaluations it spent in all if it never did).
    """
    levels = check_targets(targets)
    if traces.empty:
        raise ValueError("there are no traces to compute running times from")
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True)
    run_id = ordered.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, run_id[1:] != run_id[:-1]])
    lengths = np.diff(np.r_[starts, run_id.size])
    best = ordered["best_so_far"].to_numpy(dtype=np.float64)
    final_best = best[starts + lengths - 1]
    runs = ordered.loc[starts, [*RUN_KEYS, "budget"]].reset_index(drop=True)
    blocks: list[pd.DataFrame] = []
    for target in levels:
        # best-so-far never increases within a run, so the evaluations before the first one
        # at or below the target are exactly those above it.
        above = np.add.reduceat((best > target).astype(np.int64), starts)
        reached = final_best <= target
        blocks.append(
            runs.assign(
                target=target,
                reached=reached,
                evaluations=np.where(reached, above + 1, lengths).astype(np.int64),
            )
        )
    return pd.concat(blocks, ignore_index=True)


def expected_running_time(
    traces: pd.DataFrame, targets: Sequence[float] | ArrayLike = DEFAULT_TARGETS
) -> pd.DataFrame:
    """ERT of every cell (method x problem x d x K x scoring) at every target.

    Returns:
        A frame with the :data:`~casbo_bench.analysis.io.CELL_KEYS`, ``target``, ``budget``
        (the largest budget of the cell's runs), ``runs``, ``successes`` (runs that reached
        the target), ``evaluations`` (the numerator of the ERT) and ``ert`` (float; ``inf``
        when no run reached the target). Sorted by cell, then from the easiest target.

    >>> table = expected_running_time(traces, targets=[1e-2])  # doctest: +SKIP
    """
    times = running_times(traces, targets)
    grouped = times.groupby([*CELL_KEYS, "target"], sort=False)
    table = grouped.agg(
        budget=("budget", "max"),
        runs=("reached", "size"),
        successes=("reached", "sum"),
        evaluations=("evaluations", "sum"),
    ).reset_index()
    table = table.astype({"runs": np.int64, "successes": np.int64, "evaluations": np.int64})
    with np.errstate(divide="ignore"):
        table["ert"] = np.where(
            table["successes"] > 0,
            table["evaluations"] / table["successes"].clip(lower=1),
            np.inf,
        )
    order = [*CELL_KEYS, "target"]
    ascending = [True] * len(CELL_KEYS) + [False]
    return table.sort_values(order, ascending=ascending, ignore_index=True)
