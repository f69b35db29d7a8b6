"""Reading traces for analysis: every file validated, every run held once.

:func:`load_traces` is the only way the analysis layer reads raw results. It validates each
Parquet file against the trace schema (:mod:`casbo_bench.schemas.trace`) and refuses a set of
files in which one run (method, problem, d, K, scoring, seed) appears twice, so nothing is
aggregated from a file that failed or counted twice. It reads everything before returning,
so a caller that writes only after it returns never writes from a partial set.

:func:`final_by_run` reduces a trace to one row per run: the values at its last evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from casbo_bench.schemas.trace import RUN_KEYS, TraceValidationError, validate_trace


class DuplicateRunError(TraceValidationError):
    """Two trace files hold the same run; the message names the run and both files."""


def read_trace(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one Parquet trace and validate it.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        TraceValidationError: the file is not readable Parquet or fails the trace schema;
            the message names the file and every failed check.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file {path} does not exist")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise TraceValidationError(
            f"trace {path} is not a readable Parquet file ({error}); re-run the job that writes it"
        ) from error
    return validate_trace(frame, source=str(path))


def load_traces(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read, validate and concatenate trace files.

    Args:
        paths: Parquet files written by ``casbo-bench run``.

    Returns:
        One frame with the trace columns, sorted by run (:data:`RUN_KEYS`) and evaluation,
        with a fresh range index.

    Raises:
        ValueError: ``paths`` is empty.
        TraceValidationError: a file is unreadable or fails the trace schema (the message
            names the file and the failed check).
        DuplicateRunError: a run appears in two files (the message names the run and both
            files).
    """
    files = [Path(path) for path in paths]
    if not files:
        raise ValueError("load_traces needs at least one trace file; none were given")
    frames: list[pd.DataFrame] = []
    owner: dict[tuple[object, ...], Path] = {}
    for path in files:
        frame = read_trace(path)
        for run in frame[list(RUN_KEYS)].drop_duplicates().itertuples(index=False, name=None):
            first = owner.setdefault(run, path)
            if first != path:
                described = ", ".join(
                    f"{key}={value}" for key, value in zip(RUN_KEYS, run, strict=True)
                )
                raise DuplicateRunError(
                    f"run ({described}) appears in two trace files: {first} and {path}; "
                    f"remove one of them (a run must be aggregated once)"
                )
        frames.append(frame)
    traces = pd.concat(frames, ignore_index=True)
    return traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable", ignore_index=True)


def final_by_run(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its values at the last evaluation it recorded.

    Args:
        traces: validated traces (see :func:`load_traces`).

    Returns:
        A frame with the :data:`RUN_KEYS` columns and ``budget``, ``evaluations`` (the last
        evaluation index: the budget for a complete run), ``best_so_far`` (the best loss at
        that point), ``fresh_sample_loss`` and ``safeguard_events``; sorted by run.
    """
    if traces.empty:
        raise ValueError("there are no traces to summarize")
    last = (
        traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
        .groupby(list(RUN_KEYS), sort=True)
        .tail(1)
    )
    columns = [
        *RUN_KEYS,
        "budget",
        "evaluation",
        "best_so_far",
        "fresh_sample_loss",
        "safeguard_events",
    ]
    return last[columns].rename(columns={"evaluation": "evaluations"}).reset_index(drop=True)
