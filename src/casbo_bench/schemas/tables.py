"""Schemas of the aggregated tables, checked before any table is written.

The benchmark analysis (``analysis.tables.build_tables``) returns these tables; each name maps
to one schema in :data:`TABLE_SCHEMAS`:

- ``final_loss``: one row per cell (method x problem x d x K x scoring): the best-so-far
  loss at the budget (``best_*``) and the fresh-sample loss (``fresh_*``) over the complete
  runs' seeds, what the fresh samples are (``fresh_kind``: ``law`` or ``point``), and the
  counts of failed runs and failed evaluations.
- ``significance`` and ``significance_fresh``: one row per method other than the reference
  and setting (problem x d x K x scoring): the test against the reference on best-so-far,
  resp. fresh-sample, losses, Holm-adjusted over the rows of the table.
- ``ert``: one row per cell and target: the target rule and level, successes, runs and the
  expected running time; ``ert_inf_share``: per target level, the share of cells whose ERT is
  infinite, and one row of all levels.
- ``ecdf``: per method and evaluation count, the runtime ECDF over the group's (run, target)
  pairs with its bootstrap band.
- ``fixed_budget``: one row per setting, budget and method: the best-so-far at that budget.
- ``ranks``: one row per setting, budget and method compared there: its mean rank, the
  winner, the runner-up and the mark of their test.

Beyond dtypes and ranges the schemas check what must hold between columns (q25 <= median <=
q75, Holm-adjusted p >= raw p, a verdict only where the adjusted p is below alpha, ERT
infinite exactly when nothing succeeded, ...), so a bug in the aggregation stops the write.

:func:`validate_table` raises :class:`TableValidationError` naming the table and every failed
check:

>>> validate_table("ert", frame)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa

from casbo_bench.errors import UserFacingError
from casbo_bench.names import FRESH_KINDS
from casbo_bench.schemas.checks import validate_frame
from casbo_bench.schemas.trace import CELL_KEYS, KEY_COLUMNS, NON_EMPTY, SETTING_KEYS
from casbo_bench.schemas.vocabulary import (
    ABSOLUTE,
    RELATIVE,
    TARGET_RULES,
    TESTS,
    VERDICTS,
    WILCOXON,
)


class TableValidationError(UserFacingError, ValueError):
    """An aggregated table failed its schema; the message names the table and the checks."""


def _key_columns(names: Sequence[str]) -> dict[str, pa.Column]:
    columns = {**KEY_COLUMNS, "reference": pa.Column(str, NON_EMPTY)}
    return {name: columns[name] for name in names}


def _count(minimum: int) -> pa.Column:
    return pa.Column("int64", pa.Check.ge(minimum, error=f"must be >= {minimum}"))


def _real(*checks: pa.Check, nullable: bool = False) -> pa.Column:
    return pa.Column("float64", list(checks), nullable=nullable)


_not_nan = pa.Check(lambda values: ~values.isna(), error="must be a number or +-inf (not NaN)")
_finite = pa.Check(
    lambda values: pd.Series(np.isfinite(values.to_numpy(dtype=np.float64)), index=values.index),
    error="must be finite",
)
_probability = pa.Check.in_range(0.0, 1.0, error="must lie in [0, 1]")
_positive = pa.Check.gt(0.0, error="must be > 0")
_target_rule = pa.Column(
    str, pa.Check.isin(list(TARGET_RULES), error=f"must be one of {', '.join(TARGET_RULES)}")
)
_non_negative = pa.Check.ge(0.0, error="must be >= 0")


def _rows(
    columns: Sequence[str], rule: Callable[[pd.DataFrame], pd.Series], error: str
) -> pa.Check:
    """A row-wise frame check of ``rule`` (True = the row passes).

    When a needed column is missing or not numeric, the column checks already report it, so
    this check passes instead of failing a second time with an exception.
    """

    def check(frame: pd.DataFrame) -> pd.Series:
        for column in columns:
            if column not in frame.columns:
                return pd.Series(True, index=frame.index)
        return rule(frame).fillna(False).astype(bool)

    return pa.Check(check, ignore_na=False, error=error)


def _at_most(low: str, high: str, why: str = "") -> pa.Check:
    """``low <= high`` on every row where either is given (``why``, when given, is added to
    the error)."""
    reason = f" ({why})" if why else ""

    def rule(frame: pd.DataFrame) -> pd.Series:
        return (frame[low] <= frame[high]) | frame[[low, high]].isna().all(axis=1)

    return _rows([low, high], rule, f"{low} <= {high} must hold{reason}")


def _unique(keys: Sequence[str]) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return ~frame.duplicated(list(keys), keep=False)

    return _rows(keys, rule, f"each ({', '.join(keys)}) must appear on one row only")


def _ordered(low: str, middle: str, high: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        values = frame[[low, middle, high]]
        both_missing = values.isna().all(axis=1)
        return both_missing | ((values[low] <= values[middle]) & (values[middle] <= values[high]))

    return _rows([low, middle, high], rule, f"{low} <= {middle} <= {high} must hold")


def _sd_defined_iff_two(count: str, sd: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return frame[sd].notna() == (frame[count] >= 2)

    return _rows([count, sd], rule, f"{sd} must be given exactly when {count} >= 2")


def _present_iff_counted(
    count: str, prefix: str, measure: str, extra: Sequence[str] = ()
) -> pa.Check:
    """``<prefix>_median``, ``_q25``, ``_q75``, ``_mean`` (and ``extra``), the statistics of
    ``measure``, are given exactly when ``count >= 1``."""
    columns = [f"{prefix}_{name}" for name in ("median", "q25", "q75", "mean")] + list(extra)

    def rule(frame: pd.DataFrame) -> pd.Series:
        present = frame[columns].notna()
        counted = frame[count] >= 1
        return (counted & present.all(axis=1)) | (~counted & ~present.any(axis=1))

    return _rows(
        [count, *columns],
        rule,
        f"{measure} statistics must be given exactly when {count} >= 1",
    )


FINAL_LOSS_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns(CELL_KEYS),
        "n_seeds": _count(0),
        "budget": _count(1),
        "min_evaluations": _count(1),
        "best_median": _real(_finite, nullable=True),
        "best_q25": _real(_finite, nullable=True),
        "best_q75": _real(_finite, nullable=True),
        "best_mean": _real(_finite, nullable=True),
        "best_sd": _real(_non_negative, nullable=True),
        "best_ci_low": _real(_finite, nullable=True),
        "best_ci_high": _real(_finite, nullable=True),
        "fresh_kind": pa.Column(
            str, pa.Check.isin(list(FRESH_KINDS), error=f"must be one of {FRESH_KINDS}")
        ),
        "n_fresh": _count(0),
        "fresh_median": _real(nullable=True),
        "fresh_q25": _real(nullable=True),
        "fresh_q75": _real(nullable=True),
        "fresh_mean": _real(nullable=True),
        "fresh_sd": _real(_non_negative, nullable=True),
        "failed_runs": _count(0),
        "failed_evaluations": _count(0),
    },
    checks=[
        _ordered("best_q25", "best_median", "best_q75"),
        _ordered("fresh_q25", "fresh_median", "fresh_q75"),
        _unique(CELL_KEYS),
        _at_most("best_ci_low", "best_ci_high"),
        _at_most("min_evaluations", "budget"),
        _at_most("n_fresh", "n_seeds"),
        _sd_defined_iff_two("n_seeds", "best_sd"),
        _sd_defined_iff_two("n_fresh", "fresh_sd"),
        _present_iff_counted("n_seeds", "best", "best-so-far", ["best_ci_low", "best_ci_high"]),
        _present_iff_counted("n_fresh", "fresh", "fresh-sample"),
        _rows(
            ["n_seeds", "failed_runs"],
            lambda frame: frame["n_seeds"] + frame["failed_runs"] >= 1,
            "a cell must have a run: n_seeds + failed_runs >= 1",
        ),
    ],
    strict=True,
    name="final_loss",
)
"""Final loss per cell: best-so-far at the budget and fresh-sample loss over the seeds of its
complete runs; its failed runs and failed evaluations counted."""


def _pairs_match_test(frame: pd.DataFrame) -> pd.Series:
    paired = frame["test"] == WILCOXON
    same_sizes = (frame["n_pairs"] == frame["n_method"]) & (
        frame["n_method"] == frame["n_reference"]
    )
    all_pairs = frame["n_pairs"] == frame["n_method"] * frame["n_reference"]
    return (paired & same_sizes) | (~paired & all_pairs)


def _verdict_iff_significant(frame: pd.DataFrame) -> pd.Series:
    significant = frame["p_holm"] < frame["alpha"]
    called = frame["verdict"] != "no significant difference"
    return ~called | significant


def _verdict_direction(frame: pd.DataFrame) -> pd.Series:
    better = frame["verdict"] == "better"
    worse = frame["verdict"] == "worse"
    return ~(better & (frame["median_difference"] > 0)) & ~(
        worse & (frame["median_difference"] < 0)
    )


SIGNIFICANCE_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns([*SETTING_KEYS, "method", "reference"]),
        "test": pa.Column(str, pa.Check.isin(list(TESTS), error=f"must be one of {TESTS}")),
        "n_method": _count(1),
        "n_reference": _count(1),
        "n_pairs": _count(1),
        "statistic": _real(_non_negative),
        "p_value": _real(_probability),
        "min_attainable_p": _real(
            pa.Check.in_range(0.0, 1.0, include_min=False, error="must lie in (0, 1]")
        ),
        "p_holm": _real(_probability),
        "alpha": _real(pa.Check.in_range(0.0, 1.0, False, False, error="must lie in (0, 1)")),
        # +-inf when more than half the pairs have exactly one failed run (judged +inf).
        "median_difference": _real(_not_nan),
        "win_fraction": _real(_probability),
        "verdict": pa.Column(
            str, pa.Check.isin(list(VERDICTS), error=f"must be one of {VERDICTS}")
        ),
    },
    checks=[
        _unique([*SETTING_KEYS, "method"]),
        _rows(
            ["method", "reference"],
            lambda frame: frame["method"] != frame["reference"],
            "a method must not be compared with itself (method == reference)",
        ),
        _rows(
            ["p_value", "p_holm"],
            lambda frame: frame["p_holm"] >= frame["p_value"],
            "p_holm >= p_value must hold (a correction never lowers a p-value)",
        ),
        _rows(
            ["test", "n_pairs", "n_method", "n_reference"],
            _pairs_match_test,
            "n_pairs must be n (= n_method = n_reference) for the paired test and "
            "n_method * n_reference for the rank-sum test",
        ),
        _rows(
            ["verdict", "p_holm", "alpha"],
            _verdict_iff_significant,
            "a verdict other than 'no significant difference' needs p_holm < alpha",
        ),
        _rows(
            ["verdict", "median_difference"],
            _verdict_direction,
            "'better' needs median_difference <= 0 and 'worse' needs median_difference >= 0",
        ),
    ],
    strict=True,
    name="significance",
)
"""Each method against the reference per setting, Holm-adjusted over the table."""


def _ert_consistent(frame: pd.DataFrame) -> pd.Series:
    successes = frame["successes"]
    ert = frame["ert"]
    infinite = np.isposinf(ert.to_numpy(dtype=np.float64))
    expected = frame["evaluations"] / successes.where(successes > 0)
    finite_ok = np.isclose(ert, expected, rtol=1e-12, atol=0.0)
    return pd.Series(np.where(successes > 0, ~infinite & finite_ok, infinite), index=frame.index)


def _targets_follow_rule(frame: pd.DataFrame) -> pd.Series:
    relative = frame["target_rule"] == RELATIVE
    gap = frame["initial_gap"]
    scaled = np.isclose(frame["target"], frame["level"] * gap, rtol=1e-12, atol=0.0)
    as_given = (frame["target"] == frame["level"]) & gap.isna()
    absolute = frame["target_rule"] == ABSOLUTE
    return pd.Series((relative & gap.notna() & scaled) | (absolute & as_given), index=frame.index)


def _one_gap_per_setting(frame: pd.DataFrame) -> pd.Series:
    gaps = frame.groupby(list(SETTING_KEYS), dropna=False)["initial_gap"]
    return gaps.transform(lambda values: values.nunique(dropna=False) == 1).astype(bool)


ERT_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns(CELL_KEYS),
        "target_rule": _target_rule,
        "level": _real(_finite, _positive),
        "initial_gap": _real(_finite, _positive, nullable=True),
        "target": _real(_finite),
        "budget": _count(1),
        "runs": _count(1),
        "successes": _count(0),
        "evaluations": _count(1),
        "ert": _real(pa.Check.ge(1.0, error="must be >= 1 (or inf)")),
    },
    checks=[
        _unique([*CELL_KEYS, "level"]),
        _rows(
            ["target_rule", "level", "initial_gap", "target"],
            _targets_follow_rule,
            "a relative target must be level x initial_gap, an absolute one the level itself "
            "(initial_gap empty)",
        ),
        _rows(
            [*SETTING_KEYS, "initial_gap"],
            _one_gap_per_setting,
            "every method of a setting must share its initial_gap (targets never depend on "
            "the method)",
        ),
        _at_most("successes", "runs"),
        _rows(
            ["evaluations", "runs"],
            lambda frame: frame["evaluations"] >= frame["runs"],
            "evaluations >= runs must hold (every run spends at least one evaluation)",
        ),
        _rows(
            ["ert", "successes", "evaluations"],
            _ert_consistent,
            "ert must be evaluations / successes, and inf exactly when successes == 0",
        ),
    ],
    strict=True,
    name="ert",
)
"""Expected running time per cell and target."""


def _share_is_ratio(frame: pd.DataFrame) -> pd.Series:
    expected = frame["infinite"] / frame["cells"].where(frame["cells"] > 0)
    return pd.Series(np.isclose(frame["share_infinite"], expected, rtol=1e-12), index=frame.index)


def _overall_row_sums(frame: pd.DataFrame) -> pd.Series:
    overall = frame["level"].isna()
    if overall.sum() != 1:
        return pd.Series(False, index=frame.index)
    levels = frame[~overall]
    sums = (levels["cells"].sum(), levels["infinite"].sum())
    row = frame[overall].iloc[0]
    return pd.Series((int(row["cells"]), int(row["infinite"])) == sums, index=frame.index)


ERT_INF_SHARE_SCHEMA = pa.DataFrameSchema(
    columns={
        "target_rule": _target_rule,
        "level": _real(_finite, _positive, nullable=True),
        "cells": _count(0),
        "infinite": _count(0),
        "share_infinite": _real(_probability, nullable=True),
    },
    checks=[
        _at_most("infinite", "cells"),
        _rows(
            ["infinite", "cells", "share_infinite"],
            _share_is_ratio,
            "share_infinite must be infinite / cells",
        ),
        _rows(
            ["level", "cells", "infinite"],
            _overall_row_sums,
            "exactly one row (level empty) must hold all levels: its cells and infinite the "
            "sums of the other rows",
        ),
        _unique(["level"]),
    ],
    strict=True,
    name="ert_inf_share",
)
"""Per target level, the cells of the ERT table with an infinite ERT; one row of all levels."""


def _monotone_in_evaluations(frame: pd.DataFrame) -> pd.Series:
    ordered = frame.sort_values(["method", "evaluations"])
    steps = ordered.groupby("method")["fraction"].diff().fillna(0.0)
    return (steps >= -1e-12).reindex(frame.index)


ECDF_SCHEMA = pa.DataFrameSchema(
    columns={
        "method": KEY_COLUMNS["method"],
        "target_rule": _target_rule,
        "evaluations": _count(1),
        "method_budget": _count(1),
        "runs": _count(1),
        "pairs": _count(1),
        "fraction": _real(_probability),
        "ci_low": _real(_probability),
        "ci_high": _real(_probability),
        "confidence": _real(pa.Check.in_range(0.0, 1.0, False, False, error="must lie in (0, 1)")),
    },
    checks=[
        _unique(["method", "evaluations"]),
        _at_most("evaluations", "method_budget"),
        _at_most("ci_low", "ci_high"),
        _rows(
            ["pairs", "runs"],
            lambda frame: frame["pairs"] % frame["runs"] == 0,
            "pairs must be runs x targets (a multiple of runs)",
        ),
        _rows(
            ["method", "evaluations", "fraction"],
            _monotone_in_evaluations,
            "a method's fraction must not decrease with evaluations (a reached target stays "
            "reached)",
        ),
    ],
    strict=True,
    name="ecdf",
)
"""The runtime ECDF of each method over the group's (run, target) pairs, with its band."""

FIXED_BUDGET_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns(SETTING_KEYS),
        "budget": _count(1),
        "budget_names": pa.Column(str, NON_EMPTY),
        "method": KEY_COLUMNS["method"],
        "method_budget": _count(1),
        "runs": _count(1),
        "failed_runs": _count(0),
        # +inf where the median run failed or had no successful evaluation yet
        "best_median": _real(),
        "best_q25": _real(),
        "best_q75": _real(),
    },
    checks=[
        _unique([*SETTING_KEYS, "budget", "method"]),
        _at_most("budget", "method_budget", "a method is shown only within its own budget"),
        _at_most("failed_runs", "runs"),
        _ordered("best_q25", "best_median", "best_q75"),
    ],
    strict=True,
    name="fixed_budget",
)
"""Best-so-far per setting, fixed budget and method: median and interquartile range."""


def _winner_first(frame: pd.DataFrame) -> pd.Series:
    return (frame["method"] != frame["winner"]) | (frame["place"] == 1)


def _mark_iff_significant(frame: pd.DataFrame) -> pd.Series:
    return ~frame["significant"].astype(bool) | (frame["p_holm"] < frame["alpha"])


RANKS_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns(SETTING_KEYS),
        "budget": _count(1),
        "n_methods": _count(2),
        "left_out": pa.Column(str, NON_EMPTY),
        "method": KEY_COLUMNS["method"],
        "n_seeds": _count(1),
        "mean_rank": _real(pa.Check.ge(1.0, error="must be >= 1")),
        "place": _count(1),
        "winner": pa.Column(str, NON_EMPTY),
        "runner_up": pa.Column(str, NON_EMPTY),
        "p_value": _real(_probability),
        "p_holm": _real(_probability),
        "alpha": _real(pa.Check.in_range(0.0, 1.0, False, False, error="must lie in (0, 1)")),
        "significant": pa.Column("bool"),
    },
    checks=[
        _unique([*SETTING_KEYS, "budget", "method"]),
        _at_most("mean_rank", "n_methods"),
        _at_most("place", "n_methods"),
        _rows(
            ["winner", "runner_up"],
            lambda frame: frame["winner"] != frame["runner_up"],
            "the runner-up must not be the winner",
        ),
        _rows(["method", "winner", "place"], _winner_first, "the winner's place must be 1"),
        _rows(
            ["p_value", "p_holm"],
            lambda frame: frame["p_holm"] >= frame["p_value"],
            "p_holm >= p_value must hold (a correction never lowers a p-value)",
        ),
        _rows(
            ["significant", "p_holm", "alpha"],
            _mark_iff_significant,
            "significant needs p_holm < alpha",
        ),
    ],
    strict=True,
    name="ranks",
)
"""Per setting and matched budget: each method's mean rank, the winner and its mark."""

TABLE_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "final_loss": FINAL_LOSS_SCHEMA,
    "significance": SIGNIFICANCE_SCHEMA,
    "significance_fresh": SIGNIFICANCE_SCHEMA,
    "ert": ERT_SCHEMA,
    "ert_inf_share": ERT_INF_SHARE_SCHEMA,
    "ecdf": ECDF_SCHEMA,
    "fixed_budget": FIXED_BUDGET_SCHEMA,
    "ranks": RANKS_SCHEMA,
}
"""Table name (as returned by ``build_tables``) -> its schema."""


def validate_named(
    schemas: Mapping[str, pa.DataFrameSchema], name: str, frame: pd.DataFrame
) -> pd.DataFrame:
    """Validate ``frame`` against ``schemas[name]`` and return it unchanged.

    Raises:
        TableValidationError: ``schemas`` has no ``name``, or one or more checks failed (one
            line per failed check).
    """
    if name not in schemas:
        raise TableValidationError(
            f"there is no schema for a table named {name!r}; known tables: {', '.join(schemas)}"
        )
    return validate_frame(schemas[name], frame, f"table {name}", TableValidationError)


def validate_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate ``frame`` against the schema of table ``name`` (:data:`TABLE_SCHEMAS`) and
    return it unchanged (:func:`validate_named`)."""
    return validate_named(TABLE_SCHEMAS, name, frame)
