"""The trace schema: one row per evaluation, as the runner writes it and analysis reads it.

A *run* is one method on one problem instance at one repetition seed, identified by
:data:`RUN_KEYS` (method, problem, d, K, scoring, seed). Within a run the evaluations are
1, ..., n without gaps or duplicates, and ``wall_time`` and ``safeguard_events`` never
decrease. A *failed evaluation* (the black box returned NaN or infinity, or raised) has
``failed`` true, its one-line reason in ``error`` and a NaN ``loss``; every other evaluation
has a finite loss and an empty ``error``. ``best_so_far`` is the running minimum of the
losses of the evaluations that did not fail (``inf`` before the first of them). A run's
``status`` is :data:`COMPLETE` (it spent its whole budget: exactly ``budget`` rows) or
:data:`FAILED` (the repetition itself failed; it keeps the rows it finished, so it may end
before its budget, and the analysis leaves it out like a missing seed:
:func:`complete_runs`). The columns and their meaning are listed in
``docs/architecture.md``; :data:`TRACE_COLUMNS` holds their dtypes. A problem may add
optional, nullable side-information columns named ``detail_<name>`` (:data:`DETAIL_PREFIX`).

:func:`validate_trace` checks a frame lazily (every failure at once) and raises
:class:`TraceValidationError` with one readable line per failed check, naming the source::

    trace results/raw/sphere.parquet failed validation (2 check(s)):
      - column 'loss' must be finite (NaN only on a failed evaluation): 1 row(s) fail ...
      - best_so_far must equal the running minimum of loss within each run: 1 row(s) fail ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.typing import DataFrameGroupBy

from casbo_bench.errors import UserFacingError
from casbo_bench.names import SCORINGS
from casbo_bench.schemas.checks import validate_frame

# The vocabulary is defined without pandas for the runner; the analysis imports it from here.
from casbo_bench.schemas.trace_columns import (
    CELL_KEYS as CELL_KEYS,
)
from casbo_bench.schemas.trace_columns import (
    COMPLETE,
    COST_COLUMNS,
    DETAIL_PREFIX,
    RUN_KEYS,
    RUN_STATUSES,
    SETTING_KEYS,
    TRACE_COLUMNS,
)
from casbo_bench.schemas.trace_columns import (
    FAILED as FAILED,
)

_NUMERIC_KINDS = {"int64": "iu", "float64": "f", "bool": "b"}

RunRule = Callable[[pd.DataFrame, DataFrameGroupBy], pd.Series]
"""``rule(sorted_trace, groups_by_run) -> passes``: a boolean Series on the sorted trace."""


class TraceValidationError(UserFacingError, ValueError):
    """A trace failed its schema; the message names the source and every failed check."""


def _usable(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    """Whether ``columns`` are present, and those that hold values have a numeric (or
    boolean) dtype.

    A frame-level check needs its columns intact; when one is missing or mistyped, that
    failure is reported by the column check already, so the frame-level check passes
    rather than reporting the same problem a second time as an exception. Run keys only
    need to be present: grouping works whatever their dtype.
    """
    for column in columns:
        if column not in frame.columns:
            return False
        kinds = _NUMERIC_KINDS.get({**TRACE_COLUMNS, **COST_COLUMNS}[column])
        if column in RUN_KEYS or kinds is None:
            continue
        if frame[column].dtype.kind not in kinds:
            return False
    return True


def _run_check(rule: RunRule, columns: Sequence[str], error: str) -> pa.Check:
    """A frame-level check applying ``rule`` to the trace sorted by run and evaluation.

    The result is handed back aligned with the original index, so a failure names the
    offending rows. ``columns`` are the value columns ``rule`` reads.
    """
    needed = [*RUN_KEYS, "evaluation", *columns]

    def check(frame: pd.DataFrame) -> pd.Series:
        if not _usable(frame, needed):
            return pd.Series(True, index=frame.index)
        ordered = frame.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
        groups = ordered.groupby(list(RUN_KEYS), sort=False, dropna=False)
        return rule(ordered, groups).reindex(frame.index)

    return pa.Check(check, error=error)


def _evaluations_unique(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
    return ~ordered.duplicated([*RUN_KEYS, "evaluation"], keep=False)


def _evaluations_contiguous(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
    return ordered["evaluation"] == groups.cumcount() + 1


def _best_is_running_minimum(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
    # Exact equality: a running minimum selects one of the losses, it never rounds.
    found = ordered["loss"].where(~ordered["failed"], np.inf)
    return ordered["best_so_far"] == found.groupby(groups.ngroup()).cummin()


def _complete_runs_spend_the_budget(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
    spent = groups["evaluation"].transform("size")
    return (ordered["status"] != COMPLETE) | (spent == ordered["budget"])


def _loss_missing_iff_failed(frame: pd.DataFrame) -> pd.Series:
    if not _usable(frame, ["loss", "failed"]):
        return pd.Series(True, index=frame.index)
    return frame["loss"].isna() == frame["failed"]


def _error_iff_failed(frame: pd.DataFrame) -> pd.Series:
    if not _usable(frame, ["error", "failed"]):
        return pd.Series(True, index=frame.index)
    return (frame["error"].astype(str).str.len() > 0) == frame["failed"]


def _non_decreasing(column: str) -> RunRule:
    def rule(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
        return groups[column].diff().fillna(0) >= 0

    return rule


def _constant(column: str) -> RunRule:
    def rule(ordered: pd.DataFrame, groups: DataFrameGroupBy) -> pd.Series:
        return groups[column].transform("nunique", dropna=False) <= 1

    return rule


def _evaluation_within_budget(frame: pd.DataFrame) -> pd.Series:
    if not _usable(frame, ["evaluation", "budget"]):
        return pd.Series(True, index=frame.index)
    return frame["evaluation"] <= frame["budget"]


def _calls_cover_evaluations(frame: pd.DataFrame) -> pd.Series:
    if "calls" not in frame.columns or not _usable(frame, ["calls", "evaluation"]):
        return pd.Series(True, index=frame.index)
    return frame["calls"] >= frame["evaluation"]


def _has_rows(frame: pd.DataFrame) -> bool:
    return len(frame) > 0


def _finite(values: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(values.to_numpy(dtype=np.float64)), index=values.index)


def complete_runs(traces: pd.DataFrame) -> pd.DataFrame:
    """The rows of the complete runs (``status`` :data:`COMPLETE`) of ``traces``, a trace or
    any frame with a ``status`` column (one row per run, say).

    The one rule of the analysis for failed runs: a run whose repetition failed is left out
    of every statistic and verdict, as a missing seed is; tables count it separately.
    """
    return traces[traces["status"] == COMPLETE]


NON_EMPTY = pa.Check.str_length(min_value=1, error="must be a non-empty string")

KEY_COLUMNS: dict[str, pa.Column] = {
    "method": pa.Column(str, NON_EMPTY),
    "problem": pa.Column(str, NON_EMPTY),
    "d": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
    "K": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
    "scoring": pa.Column(
        str, pa.Check.isin(list(SCORINGS), error=f"must be one of {', '.join(SCORINGS)}")
    ),
}
"""The checks of the columns that name a cell (:data:`CELL_KEYS`), shared by every schema."""

RUN_KEY_COLUMNS: dict[str, pa.Column] = {
    "method": KEY_COLUMNS["method"],
    **{key: KEY_COLUMNS[key] for key in SETTING_KEYS},
    "seed": pa.Column("int64", pa.Check.ge(0, error="must be >= 0")),
}
"""The checks of the columns that name a run (:data:`RUN_KEYS`): the trace's, and those of
an archive's compact trace and best structures (:mod:`casbo_bench.schemas.archive`)."""

TRACE_SCHEMA = pa.DataFrameSchema(
    columns={
        **RUN_KEY_COLUMNS,
        "optimizer": pa.Column(str, NON_EMPTY),
        "budget": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
        "iteration": pa.Column("int64", pa.Check.ge(0, error="must be >= 0")),
        "evaluation": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
        "loss": pa.Column(
            "float64",
            pa.Check(_finite, error="must be finite (NaN only on a failed evaluation)"),
            nullable=True,
        ),
        "best_so_far": pa.Column("float64"),
        "wall_time": pa.Column("float64", pa.Check.ge(0, error="must be >= 0")),
        "expected_loss": pa.Column("float64", nullable=True),
        "fresh_sample_loss": pa.Column("float64", nullable=True),
        "safeguard_events": pa.Column("int64", pa.Check.ge(0, error="must be >= 0")),
        "failed": pa.Column("bool"),
        "error": pa.Column(str),
        "status": pa.Column(
            str,
            pa.Check.isin(list(RUN_STATUSES), error=f"must be one of {', '.join(RUN_STATUSES)}"),
        ),
        **{
            name: pa.Column("int64", pa.Check.ge(0, error="must be >= 0"), required=False)
            for name in COST_COLUMNS
        },
        f"^{DETAIL_PREFIX}.+$": pa.Column(nullable=True, required=False, regex=True),
    },
    checks=[
        pa.Check(_has_rows, error="a trace must have at least one row"),
        pa.Check(
            _calls_cover_evaluations,
            error="calls must be >= evaluation (every completed sample costs its own call)",
        ),
        *(
            _run_check(_non_decreasing(name), [name], f"{name} must not decrease within a run")
            for name in COST_COLUMNS
        ),
        pa.Check(_evaluation_within_budget, error="evaluation must be <= budget"),
        _run_check(
            _evaluations_unique,
            [],
            "each evaluation index must appear once per run (duplicate evaluation)",
        ),
        _run_check(
            _evaluations_contiguous,
            [],
            "the evaluations of a run must be 1..n without gaps",
        ),
        pa.Check(
            _loss_missing_iff_failed,
            error="column 'loss' must be NaN exactly on the failed evaluations (failed true)",
        ),
        pa.Check(
            _error_iff_failed,
            error="column 'error' must be non-empty exactly on the failed evaluations "
            "(failed true)",
        ),
        _run_check(
            _best_is_running_minimum,
            ["loss", "best_so_far", "failed"],
            # The failed evaluations' NaN losses are skipped, and inf stands before the first.
            "best_so_far must equal the running minimum of loss within each run",
        ),
        _run_check(
            _complete_runs_spend_the_budget,
            ["budget", "status"],
            "a complete run (status complete) must have exactly budget evaluations",
        ),
        _run_check(
            _non_decreasing("iteration"),
            ["iteration"],
            "iteration must not decrease within a run",
        ),
        _run_check(
            _non_decreasing("wall_time"),
            ["wall_time"],
            "wall_time must not decrease within a run",
        ),
        _run_check(
            _non_decreasing("safeguard_events"),
            ["safeguard_events"],
            "safeguard_events must not decrease within a run",
        ),
        _run_check(
            _constant("budget"),
            ["budget"],
            "budget must be the same on every row of a run",
        ),
        _run_check(
            _constant("fresh_sample_loss"),
            ["fresh_sample_loss"],
            "fresh_sample_loss must be the same on every row of a run",
        ),
        _run_check(
            _constant("status"),
            ["status"],
            "status must be the same on every row of a run",
        ),
    ],
    strict=True,
    name="trace",
)
"""The pandera schema of a trace (see the module docstring)."""


def validate_trace(
    frame: pd.DataFrame, source: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Validate ``frame`` against :data:`TRACE_SCHEMA` and return it unchanged.

    Args:
        frame: a trace, one row per evaluation.
        source: what the frame came from (a file path), named in the error.
        columns: validate only these columns and the checks among them (a reader that
            loads only what it needs); default: the whole schema.

    Raises:
        TraceValidationError: one or more checks failed; the message has a first line
            naming ``source`` and one line per failed check.
    """
    schema = TRACE_SCHEMA if columns is None else TRACE_SCHEMA.select_columns(list(columns))
    return validate_frame(
        schema, frame, f"trace {source}", TraceValidationError, TRACE_COLUMNS, rows_by_label=True
    )
