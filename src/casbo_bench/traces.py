"""Trace files: the one place that writes and reads them.

A trace is one Parquet file per job: one row per evaluation (the columns of
:mod:`casbo_bench.schemas.trace`), and in the file's key-value metadata under
:data:`PROVENANCE_KEY` the job's provenance (:mod:`casbo_bench.provenance`): versions, the
config and registration hashes, and per repetition seed its derived seeds, the optimizer's
resolved settings, ``J*`` and the frozen-law floor, so nothing downstream rebuilds a seed rule.

:func:`write_trace` validates before writing and writes atomically; :func:`read_trace` and
:func:`read_provenance` read one file; :func:`load_traces` is how the analysis reads many:
every file validated, and a set in which one run (method, problem, d, K, scoring, seed)
appears twice refused, so nothing is aggregated from a failed file or counted twice. It
reads everything before returning, so a caller that writes only after it returns never
writes from a partial set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_atomically
from casbo_bench.schemas.trace import RUN_KEYS, TraceValidationError, validate_trace

PROVENANCE_KEY = "casbo_bench.provenance"
"""The Parquet metadata key of a trace's provenance JSON."""


class TraceFileError(UserFacingError, ValueError):
    """A trace file is missing, is not Parquet, or carries no provenance."""


class DuplicateRunError(TraceValidationError):
    """Two trace files hold the same run; the message names the run and both files."""


def write_trace(frame: pd.DataFrame, path: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Validate ``frame`` and write it to ``path`` as Parquet, with ``provenance``.

    The file is written to a temporary file in the same folder and renamed into place, so
    a failed or interrupted write never leaves a partial file and never replaces a
    finished one. The provenance JSON goes in the key-value metadata under
    :data:`PROVENANCE_KEY`.

    Raises:
        TraceValidationError: the frame fails the trace schema (nothing is written).
        OSError: the folder cannot be written.
    """
    path = Path(path)
    validate_trace(frame, source=str(path))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PROVENANCE_KEY.encode()] = json.dumps(provenance, sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    return write_atomically(path, lambda sink: pq.write_table(table, sink))


def _parquet_schema(path: str | Path) -> pa.Schema:
    if not Path(path).is_file():
        raise TraceFileError(f"trace file {path} does not exist; run the job that writes it")
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise TraceFileError(
            f"trace {path} is not a readable Parquet file ({error}); re-run the job that writes it"
        ) from None


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance dict stored in trace file ``path``.

    Raises:
        TraceFileError: the file is not Parquet or carries no provenance.
    """
    metadata = _parquet_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY.encode())
    if raw is None:
        raise TraceFileError(
            f"trace {path} has no {PROVENANCE_KEY} metadata; write it with "
            f"casbo_bench.traces.write_trace"
        )
    provenance: dict[str, Any] = json.loads(raw)
    return provenance


def read_trace(path: str | Path) -> pd.DataFrame:
    """The validated trace stored in ``path``.

    Raises:
        TraceFileError: there is no file at ``path``, or it is not Parquet.
        TraceValidationError: it fails the trace schema; the message names the file and
            every failed check.
    """
    _parquet_schema(path)
    return validate_trace(pd.read_parquet(path), source=str(path))


def load_traces(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read, validate and concatenate trace files.

    Args:
        paths: Parquet files written by ``casbo-bench run``.

    Returns:
        One frame with the trace columns, sorted by run (:data:`RUN_KEYS`) and evaluation,
        with a fresh range index.

    Raises:
        ValueError: ``paths`` is empty.
        TraceFileError: a file is missing or is not Parquet (the message names it).
        TraceValidationError: a file fails the trace schema (the message names the file and
            the failed check).
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
