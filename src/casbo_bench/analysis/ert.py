"""Expected running time (ERT) at targets fixed before any run, as in COCO.

A target is a loss level. Every numerical problem has f* = 0, so the loss is the optimality
gap. Targets are pre-registered in config, never derived from the budget or from how well a
method did, so a larger budget or another method never moves them. Two rules
(:class:`TargetRule`):

- **relative** (the default, ``target_fractions``): the targets of a setting (problem, d, K,
  scoring) are fractions ``f`` of its *median initial gap*

      g = median over every run of the setting, all methods pooled, of the loss of the
          run's first evaluation (a first evaluation that failed is left out),

  so target = f g, for ``f`` in :data:`DEFAULT_FRACTIONS` (1e-1 ... 1e-6). Every method's
  first evaluation is a draw from the problem's initial law (docs/method.md, section 4b), so
  ``g`` estimates the median loss of that law: one number per setting, the same for every
  method. A loss below 0 proves that f* is not 0 (a molecule task's loss is minus a score),
  so the gap is unknown there and the relative rule refuses that setting
  (:class:`RelativeTargetError`); absolute targets still apply.
- **absolute** (``targets``): the same loss levels for every setting, e.g. COCO's 1e2, 1e1,
  ..., 1e-8 (:data:`DEFAULT_TARGETS`).

A run *reaches* target t at the first evaluation whose loss is <= t (equivalently whose
best-so-far is <= t). Over the runs of one cell,

    ERT(t) = (sum over runs of the evaluations each spent until it reached t, or all the
              evaluations it spent if it never did) / (number of runs that reached t)

which is infinite when no run reached t. For a complete run "all the evaluations it spent"
is its budget. :func:`infinite_share` counts, per target, the cells whose ERT is infinite.

>>> running = expected_running_time(traces, TargetRule.relative([1e-1, 1e-3]))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.schemas.trace import CELL_KEYS, RUN_KEYS, SETTING_KEYS
from casbo_bench.schemas.vocabulary import ABSOLUTE, RELATIVE

FloatArray = NDArray[np.float64]

DEFAULT_TARGETS: tuple[float, ...] = tuple(10.0**exponent for exponent in range(2, -9, -1))
"""COCO's target loss levels 1e2, 1e1, ..., 1e-8 (f* = 0 on every numerical problem)."""

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(10.0**exponent for exponent in range(-1, -7, -1))
"""The relative targets 1e-1, ..., 1e-6: fractions of each setting's median initial gap."""


class RelativeTargetError(UserFacingError, ValueError):
    """A setting has no median initial gap, so fractions of it cannot be targets."""


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


@dataclass(frozen=True)
class TargetRule:
    """The pre-registered targets of the ERT and the runtime ECDFs.

    Attributes:
        kind: :data:`~casbo_bench.schemas.vocabulary.RELATIVE` (``levels`` are fractions
            ``f`` of each setting's median initial gap ``g``: target = f g) or
            :data:`~casbo_bench.schemas.vocabulary.ABSOLUTE` (``levels`` are the targets).
        levels: distinct positive numbers, easiest (largest) first.

    >>> TargetRule.relative([1e-3, 1e-1]).levels
    (0.1, 0.001)
    """

    kind: str
    levels: tuple[float, ...]

    @classmethod
    def relative(cls, fractions: Sequence[float] | ArrayLike = DEFAULT_FRACTIONS) -> TargetRule:
        """Targets at ``fractions`` (each in (0, 1]) of every setting's median initial gap."""
        levels = check_targets(fractions)
        if ((levels <= 0.0) | (levels > 1.0)).any():
            raise ValueError(f"target fractions must lie in (0, 1]; got {levels.tolist()}")
        return cls(RELATIVE, tuple(float(level) for level in levels))

    @classmethod
    def absolute(cls, targets: Sequence[float] | ArrayLike = DEFAULT_TARGETS) -> TargetRule:
        """The same target loss levels in every setting."""
        return cls(ABSOLUTE, tuple(float(level) for level in check_targets(targets)))

    def describe(self) -> str:
        """The rule in a few words, for titles.

        >>> TargetRule.relative().describe()
        '6 targets 1e-01 ... 1e-06 x median initial gap'
        """
        first, last = self.levels[0], self.levels[-1]
        count = len(self.levels)
        levels = f"{first:.0e}" if count == 1 else f"{first:.0e} ... {last:.0e}"
        name = "target" if count == 1 else "targets"
        if self.kind == RELATIVE:
            return f"{count} {name} {levels} x median initial gap"
        return f"{count} {name} {levels} (loss)"


DEFAULT_RULE = TargetRule.relative()
"""The default targets: :data:`DEFAULT_FRACTIONS` of each setting's median initial gap."""


def as_rule(targets: TargetRule | Sequence[float] | ArrayLike) -> TargetRule:
    """``targets`` as a rule: a rule as it is, loss levels as :meth:`TargetRule.absolute`."""
    return targets if isinstance(targets, TargetRule) else TargetRule.absolute(targets)


def _describe(setting: Sequence[object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(SETTING_KEYS, setting, strict=True))


def initial_gaps(traces: pd.DataFrame) -> pd.DataFrame:
    """The median initial gap ``g`` of every setting, every method's runs pooled.

    ``g`` = the median over the setting's runs of the loss of each run's first evaluation
    (evaluation 1; left out where it failed). With f* = 0 the loss is the gap.

    Args:
        traces: validated traces.

    Returns:
        One row per setting: the :data:`SETTING_KEYS`, ``initial_gap`` and ``initial_runs``
        (the runs whose first evaluation entered the median).

    Raises:
        RelativeTargetError: a setting has a loss below 0 (its optimum f* is not 0, e.g. a
            molecule task, whose loss is minus a score), no successful first evaluation, or
            a median initial gap of 0.
    """
    rows: list[dict[str, object]] = []
    for setting, runs in traces.groupby(list(SETTING_KEYS), sort=True):
        losses = runs["loss"].to_numpy(dtype=np.float64)
        if (losses[np.isfinite(losses)] < 0.0).any():
            raise RelativeTargetError(
                f"{_describe(setting)} has losses below 0, so its loss is not an optimality "
                f"gap (f* is not 0) and fractions of an initial gap cannot be its targets; "
                f"give absolute targets (--targets, config targets) or leave its traces out"
            )
        first = runs[(runs["evaluation"] == 1) & ~runs["failed"]]["loss"]
        gap = float(first.median()) if len(first) else np.nan
        if not gap > 0.0:
            raise RelativeTargetError(
                f"{_describe(setting)} has no positive median initial gap (median first loss "
                f"{gap}); give absolute targets (--targets, config targets) for it"
            )
        rows.append(
            {
                **dict(zip(SETTING_KEYS, setting, strict=True)),
                "initial_gap": gap,
                "initial_runs": len(first),
            }
        )
    return pd.DataFrame(rows).astype({"d": np.int64, "K": np.int64, "initial_runs": np.int64})


def setting_targets(traces: pd.DataFrame, rule: TargetRule) -> pd.DataFrame:
    """The targets of every setting of ``traces`` under ``rule``.

    Returns:
        One row per setting and level, easiest first: the :data:`SETTING_KEYS`,
        ``target_rule``, ``level``, ``initial_gap`` (``g``; NaN under absolute targets) and
        ``target`` (``level x g``, or ``level``).
    """
    if rule.kind == RELATIVE:
        settings = initial_gaps(traces).drop(columns="initial_runs")
    else:
        settings = traces[list(SETTING_KEYS)].drop_duplicates().assign(initial_gap=np.nan)
    levels = pd.DataFrame({"target_rule": rule.kind, "level": list(rule.levels)})
    table = settings.merge(levels, how="cross")
    gap = table["initial_gap"] if rule.kind == RELATIVE else 1.0
    table["target"] = table["level"] * gap
    columns = [*SETTING_KEYS, "target_rule", "level", "initial_gap", "target"]
    return table[columns].reset_index(drop=True)


def _running_times(traces: pd.DataFrame, levels: FloatArray) -> pd.DataFrame:
    """:func:`running_times` of ``traces`` at the loss levels ``levels``, the same for all."""
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True)
    run_id = ordered.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, run_id[1:] != run_id[:-1]])
    lengths = np.diff(np.r_[starts, run_id.size])
    best = ordered["best_so_far"].to_numpy(dtype=np.float64)
    evaluation = ordered["evaluation"].to_numpy(dtype=np.int64)
    last = starts + lengths - 1
    final_best = best[last]
    runs = ordered.loc[starts, [*RUN_KEYS, "budget"]].reset_index(drop=True)
    blocks: list[pd.DataFrame] = []
    for target in levels:
        # best-so-far never increases within a run, so the rows above the target come first
        # and the next row is where the run reached it. Evaluations are read off the rows,
        # not counted, so a compact trace (casbo_bench.publish: evaluation 1, every row where
        # best-so-far changes, the last row) gives the same times as the full one.
        above = np.add.reduceat((best > target).astype(np.int64), starts)
        reached = final_best <= target
        first_hit = evaluation[np.minimum(starts + above, last)]
        blocks.append(
            runs.assign(
                target=target,
                reached=reached,
                evaluations=np.where(reached, first_hit, evaluation[last]).astype(np.int64),
            )
        )
    return pd.concat(blocks, ignore_index=True)


def running_times(
    traces: pd.DataFrame, targets: TargetRule | Sequence[float] | ArrayLike = DEFAULT_RULE
) -> pd.DataFrame:
    """Per run and target: whether the run reached the target, and the evaluations it spent.

    Args:
        traces: validated traces (evaluations 1..n in every run, best-so-far a running
            minimum; see :func:`casbo_bench.traces.load_traces`).
        targets: a :class:`TargetRule`, or loss levels (absolute targets).

    Returns:
        A frame with one row per run and target: the :data:`RUN_KEYS`, ``budget``,
        ``target_rule``, ``level``, ``initial_gap``, ``target`` (the loss level),
        ``reached`` (bool) and ``evaluations`` (the evaluation at which the run first reached
        the target, or the evaluations it spent in all if it never did).
    """
    rule = as_rule(targets)
    if traces.empty:
        raise ValueError("there are no traces to compute running times from")
    targets_of = dict(list(setting_targets(traces, rule).groupby(list(SETTING_KEYS))))
    blocks: list[pd.DataFrame] = []
    for setting, runs in traces.groupby(list(SETTING_KEYS), sort=True):
        own = targets_of[setting]
        times = _running_times(runs, own["target"].to_numpy(dtype=np.float64))
        described = own[["target_rule", "level", "initial_gap", "target"]]
        # the targets of one setting are distinct (distinct levels, g > 0), so they key it
        blocks.append(times.merge(described, on="target", how="left", validate="many_to_one"))
    columns = [*RUN_KEYS, "budget", "target_rule", "level", "initial_gap", "target"]
    return pd.concat(blocks, ignore_index=True)[[*columns, "reached", "evaluations"]]


def expected_running_time(
    traces: pd.DataFrame, targets: TargetRule | Sequence[float] | ArrayLike = DEFAULT_RULE
) -> pd.DataFrame:
    """ERT of every cell (method x problem x d x K x scoring) at every target.

    Args:
        traces: validated traces.
        targets: a :class:`TargetRule` (default: :data:`DEFAULT_RULE`, relative), or loss
            levels (absolute targets).

    Returns:
        A frame with the :data:`~casbo_bench.schemas.trace.CELL_KEYS`, ``target_rule``,
        ``level`` (the pre-registered number: a fraction of the initial gap, or the target),
        ``initial_gap`` (the setting's ``g``; NaN under absolute targets), ``target`` (the
        loss level), ``budget`` (the largest budget of the cell's runs), ``runs``,
        ``successes`` (runs that reached the target), ``evaluations`` (the numerator of the
        ERT) and ``ert`` (float; ``inf`` when no run reached the target). Sorted by cell,
        then from the easiest target.

    >>> table = expected_running_time(traces, targets=[1e-2])  # doctest: +SKIP
    """
    times = running_times(traces, targets)
    described = ["target_rule", "level", "initial_gap", "target"]
    grouped = times.groupby([*CELL_KEYS, "level"], sort=False)
    table = grouped.agg(
        **{column: (column, "first") for column in described if column != "level"},
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
    order = [*CELL_KEYS, "level"]
    ascending = [True] * len(CELL_KEYS) + [False]
    columns = [*CELL_KEYS, *described, "budget", "runs", "successes", "evaluations", "ert"]
    return table.sort_values(order, ascending=ascending, ignore_index=True)[columns]


def infinite_share(ert: pd.DataFrame) -> pd.DataFrame:
    """Per target level, the share of cells whose ERT is infinite (no run reached it).

    Args:
        ert: an ERT table (:func:`expected_running_time`).

    Returns:
        One row per level, easiest first, then one row of all levels (``level`` NaN):
        ``target_rule``, ``level``, ``cells``, ``infinite`` (cells with ERT = inf) and
        ``share_infinite`` (= infinite / cells).
    """
    infinite = np.isposinf(ert["ert"].to_numpy(dtype=np.float64))
    counted = ert[["target_rule", "level"]].assign(cells=1, infinite=infinite.astype(np.int64))
    per_level = (
        counted.groupby(["target_rule", "level"], sort=False)[["cells", "infinite"]]
        .sum()
        .reset_index()
        .sort_values("level", ascending=False, ignore_index=True)
    )
    overall = pd.DataFrame(
        {
            "target_rule": [", ".join(sorted(set(ert["target_rule"])))],
            "level": [np.nan],
            "cells": [len(ert)],
            "infinite": [int(infinite.sum())],
        }
    )
    table = pd.concat([per_level, overall], ignore_index=True)
    table = table.astype({"level": np.float64, "cells": np.int64, "infinite": np.int64})
    with np.errstate(invalid="ignore", divide="ignore"):
        table["share_infinite"] = table["infinite"] / table["cells"]
    return table
