"""The schema of a published archive's compact traces (:mod:`casbo_bench.publish`).

A compact trace keeps, of each run (:data:`~casbo_bench.schemas.trace.RUN_KEYS`), the rows
the analysis can read a value from: evaluation 1, every evaluation where ``best_so_far``
changes (inf to finite included), every failed evaluation and the last evaluation, with the
columns :data:`COMPACT_COLUMNS` (and on molecule tasks the cumulative costs ``calls`` and
``denoiser_evals``). So within a run the evaluations strictly increase from 1, best-so-far
never increases, the costs never decrease, and a complete run ends at its budget. Validated by
:func:`validate_compact_trace`, which raises :class:`ArchiveValidationError` with one line per
failed check.

An archive with molecule tasks also keeps each run's best structure
(:data:`BEST_STRUCTURE_COLUMNS`, :func:`validate_best_structures`): the molecule report's
figures draw it, and a compact trace carries no structures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from casbo_bench.errors import UserFacingError
from casbo_bench.schemas.checks import validate_frame
from casbo_bench.schemas.trace import (
    COMPLETE,
    COST_COLUMNS,
    NON_EMPTY,
    RUN_KEY_COLUMNS,
    RUN_KEYS,
    RUN_STATUSES,
    TRACE_COLUMNS,
)

COMPACT_COLUMNS: dict[str, str] = {
    name: TRACE_COLUMNS[name]
    for name in (
        *RUN_KEYS,
        "optimizer",
        "budget",
        "evaluation",
        "loss",
        "best_so_far",
        "fresh_sample_loss",
        "safeguard_events",
        "failed",
        "error",
        "status",
    )
}
"""Column -> dtype of a compact trace: what the tables, views, ERT, ledger and convergence
figures read of a trace (not ``iteration``, ``wall_time``, ``expected_loss``, details)."""


class ArchiveValidationError(UserFacingError, ValueError):
    """A published archive's file fails its schema or its recorded sha256."""


def _ordered_runs(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    ordered = frame.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    run_id = ordered.groupby(list(RUN_KEYS), sort=False).ngroup().to_numpy()
    return ordered, np.r_[True, run_id[1:] != run_id[:-1]]


def _starts_at_one(frame: pd.DataFrame) -> pd.Series:
    ordered, first = _ordered_runs(frame)
    return pd.Series(~first | (ordered["evaluation"].to_numpy() == 1), index=ordered.index)


def _evaluations_increase(frame: pd.DataFrame) -> pd.Series:
    ordered, first = _ordered_runs(frame)
    step = np.diff(ordered["evaluation"].to_numpy(), prepend=0)
    return pd.Series(first | (step > 0), index=ordered.index)


def _best_never_increases(frame: pd.DataFrame) -> pd.Series:
    ordered, first = _ordered_runs(frame)
    best = ordered["best_so_far"].to_numpy(dtype=np.float64)
    previous = np.r_[np.inf, best[:-1]]
    return pd.Series(first | (best <= previous), index=ordered.index)


def _costs_never_decrease(frame: pd.DataFrame) -> pd.Series:
    ordered, first = _ordered_runs(frame)
    sound = np.ones(len(ordered), dtype=bool)
    for name in COST_COLUMNS:
        if name in ordered.columns:
            costs = ordered[name].to_numpy(dtype=np.float64)
            sound &= first | (np.diff(costs, prepend=0.0) >= 0)
    return pd.Series(sound, index=ordered.index)


def _complete_runs_end_at_budget(frame: pd.DataFrame) -> pd.Series:
    ordered = frame.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    last = ordered.groupby(list(RUN_KEYS), sort=False).tail(1)
    sound = (last["status"] != COMPLETE) | (last["evaluation"] == last["budget"])
    return sound.reindex(frame.index, fill_value=True)


COMPACT_TRACE_SCHEMA = pa.DataFrameSchema(
    columns={
        **RUN_KEY_COLUMNS,
        "optimizer": pa.Column(str, NON_EMPTY),
        "budget": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
        "evaluation": pa.Column("int64", pa.Check.ge(1, error="must be >= 1")),
        "loss": pa.Column("float64", nullable=True),
        "best_so_far": pa.Column("float64"),
        "fresh_sample_loss": pa.Column("float64", nullable=True),
        "safeguard_events": pa.Column("int64", pa.Check.ge(0, error="must be >= 0")),
        "failed": pa.Column("bool"),
        "error": pa.Column(str),
        "status": pa.Column(
            str,
            pa.Check.isin(list(RUN_STATUSES), error=f"must be one of {', '.join(RUN_STATUSES)}"),
        ),
        # The molecule tasks' cost axes (the ledger reads their cells at equal calls).
        **{
            name: pa.Column(dtype, pa.Check.ge(0, error="must be >= 0"), required=False)
            for name, dtype in COST_COLUMNS.items()
        },
    },
    checks=[
        pa.Check(lambda frame: len(frame) > 0, error="a compact trace must have rows"),
        pa.Check(
            lambda frame: frame["evaluation"] <= frame["budget"],
            error="evaluation must be <= budget",
        ),
        pa.Check(_starts_at_one, error="every run must keep its evaluation 1"),
        pa.Check(
            _evaluations_increase,
            error="the evaluations of a run must strictly increase (a duplicate row)",
        ),
        pa.Check(_best_never_increases, error="best_so_far must not increase within a run"),
        # The molecule figures read best-so-far at a cost off the kept rows (publish).
        pa.Check(
            _costs_never_decrease,
            error="calls and denoiser_evals must not decrease within a run",
        ),
        pa.Check(
            _complete_runs_end_at_budget,
            error="a complete run must keep its last evaluation, its budget",
        ),
    ],
    strict=True,
    name="compact trace",
)
"""The pandera schema of a compact trace (module docstring)."""


def validate_compact_trace(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate ``frame`` against :data:`COMPACT_TRACE_SCHEMA` and return it unchanged.

    Raises:
        ArchiveValidationError: a check failed; the first line names ``source``.
    """
    return validate_frame(
        COMPACT_TRACE_SCHEMA,
        frame,
        f"compact trace {source}",
        ArchiveValidationError,
        COMPACT_COLUMNS,
    )


BEST_STRUCTURE_COLUMNS: dict[str, str] = {
    **{name: TRACE_COLUMNS[name] for name in RUN_KEYS},
    "best_score": "float64",
    "xyz": "str",
}
"""Column -> dtype of an archive's best structures: per complete molecule run, the score and
the xyz text of its best evaluation (:func:`casbo_bench.analysis.molecules.best_molecules`)."""

BEST_STRUCTURE_SCHEMA = pa.DataFrameSchema(
    columns={
        **RUN_KEY_COLUMNS,
        "best_score": pa.Column("float64"),
        "xyz": pa.Column(str, NON_EMPTY),
    },
    checks=[
        pa.Check(lambda frame: len(frame) > 0, error="best structures must have rows"),
        pa.Check(
            lambda frame: ~frame.duplicated(list(RUN_KEYS), keep=False),
            error="one row per run (a run listed twice)",
        ),
    ],
    strict=True,
    name="best structures",
)
"""The pandera schema of an archive's best structures."""


def validate_best_structures(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate ``frame`` against :data:`BEST_STRUCTURE_SCHEMA` and return it unchanged.

    Raises:
        ArchiveValidationError: a check failed; the first line names ``source``.
    """
    return validate_frame(
        BEST_STRUCTURE_SCHEMA,
        frame,
        f"best structures {source}",
        ArchiveValidationError,
        BEST_STRUCTURE_COLUMNS,
    )
