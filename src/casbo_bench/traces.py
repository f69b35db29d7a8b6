"""Trace files: the one place that writes and reads them.

A trace is one Parquet file per job: one row per evaluation (the columns of
:mod:`casbo_bench.schemas.trace`), and in the file's key-value metadata under
:data:`PROVENANCE_KEY` the job's provenance (:mod:`casbo_bench.provenance`): versions, the
config and registration hashes, and per repetition seed its derived seeds, the optimizer's
resolved settings, ``J*`` and the frozen-law floor, so nothing downstream rebuilds a seed rule.

:func:`write_trace` validates before writing and writes atomically, then the file's sha256
sidecar ``<trace>.sha256`` (the format of ``sha256sum``, so ``sha256sum -c`` checks it too):
a trace whose bytes match its sidecar is the file that passed validation when it was
written. :func:`trace_fault` says what is wrong with a trace on disk (missing, no sidecar,
changed bytes) and :func:`quarantine_trace` moves a faulty one aside with its reason; the
workflow does both before it builds its DAG, so no job reads a damaged trace and the job
that wrote it runs again. :func:`read_trace` and
:func:`read_provenance` read one file; :func:`load_traces` is how the analysis reads many:
every file validated, and a set in which one run (method, problem, d, K, scoring, seed)
appears twice refused, so nothing is aggregated from a failed file or counted twice. It
reads everything before returning, so a caller that writes only after it returns never
writes from a partial set.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_atomically, write_text_atomically
from casbo_bench.schemas.trace import (
    FAILED,
    RUN_KEYS,
    TRACE_COLUMNS,
    TraceValidationError,
    validate_trace,
)

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
    write_atomically(path, lambda sink: pq.write_table(table, sink))
    write_text_atomically(sidecar_path(path), f"{sha256_file(path)}  {path.name}\n")
    return path


SIDECAR_SUFFIX = ".sha256"
"""Appended to a trace's file name for its sha256 sidecar."""


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The sha256 sidecar of trace ``path``: ``<path>.sha256``."""
    return Path(f"{os.fspath(path)}{SIDECAR_SUFFIX}")


def trace_fault(
    path: str | os.PathLike[str],
    config_hash: str | None = None,
    rule_hash: str | None = None,
) -> str | None:
    """What is wrong with the trace at ``path`` on disk, or None when it is sound.

    Sound means: the file exists, its sidecar exists, the file's sha256 equals the one the
    sidecar recorded when the validated trace was written, and its Parquet schema has every
    column of today's trace schema (a file written by older code is rebuilt). Where
    ``config_hash`` or ``rule_hash`` is given, the provenance must also carry it: a trace
    that another config, or another claims rule, asked for is stale (a job restored from a
    store, or copied in, has no Snakemake record that would rerun it). One hash and one
    footer read per file.
    """
    path, sidecar = Path(path), sidecar_path(path)
    if not path.is_file():
        return "the trace is missing"
    try:
        recorded = sidecar.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return f"its sha256 sidecar {sidecar.name} is missing or unreadable"
    if not recorded or recorded[0] != sha256_file(path):
        return f"its bytes differ from the sha256 in {sidecar.name} (changed or truncated)"
    schema = pq.read_schema(path)
    # Sound bytes written under another trace schema (older code) lack today's columns.
    missing = sorted(set(TRACE_COLUMNS) - set(schema.names))
    if missing:
        return f"it lacks the trace columns {missing} (written by older code)"
    try:
        provenance = json.loads((schema.metadata or {}).get(PROVENANCE_KEY.encode(), b"{}"))
    except ValueError:
        return f"its {PROVENANCE_KEY} metadata is not JSON"
    for key, expected, asker in (
        ("config_hash", config_hash, "config"),
        ("claims_rule_hash", rule_hash, "claims rule"),
    ):
        if expected is not None and provenance.get(key) != expected:
            return f"another {asker} asked for it ({key} {provenance.get(key)}, now {expected})"
    return None


def mark_for_rebuild(path: str | os.PathLike[str], reason: str) -> Path:
    """Replace the sidecar of trace ``path`` by a note saying why the trace must be rebuilt.

    The note is newer than every table made from the old trace, so Snakemake, which compares
    modification times, reruns those tables once the trace's job has written it again (that
    job's output is missing, so it runs). The note never verifies: the trace stays faulty
    until its job writes both again.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return write_text_atomically(
        sidecar_path(path), f"# {stamp}: {reason}; rule run writes this trace again\n"
    )


def quarantine_trace(
    path: str | os.PathLike[str], reason: str, results: str | os.PathLike[str]
) -> Path:
    """Move the faulty trace ``path`` to ``<results>/quarantine/`` and mark it for rebuild.

    ``results`` is the run's results folder, which holds ``path``. The trace keeps its path
    relative to ``results`` below ``quarantine/``, with a UTC time stamp and the process id
    appended (a second fault of the same trace never overwrites the first), beside a
    ``.reason`` file naming the original path and ``reason``; then :func:`mark_for_rebuild`.

    Returns:
        Where the trace now is.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = Path(results) / "quarantine" / f"{path.relative_to(results)}.{stamp}.{os.getpid()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Another invocation started at the same moment may have moved it first.
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, target)
    write_text_atomically(
        target.with_name(f"{target.name}.reason"), f"{path}: {reason}; moved here {stamp}\n"
    )
    mark_for_rebuild(path, reason)
    return target


def failed_seeds(path: str | os.PathLike[str]) -> dict[int, str]:
    """Repetition seed -> its error, for every seed of trace ``path`` whose run failed.

    Read from the provenance (``repetitions[seed]``), which records a seed that failed
    before its first evaluation too (it has no rows).
    """
    repetitions = read_provenance(path).get("repetitions", {})
    return {
        int(seed): str(record.get("error") or "failed")
        for seed, record in repetitions.items()
        if record.get("status") == FAILED
    }


def _parquet_schema(path: str | os.PathLike[str]) -> pa.Schema:
    if not Path(path).is_file():
        raise TraceFileError(f"trace file {path} does not exist; run the job that writes it")
    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise TraceFileError(
            f"trace {path} is not a readable Parquet file ({error}); re-run the job that writes it"
        ) from None


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
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
        DuplicateRunError: a file is given twice, or a run appears in two files (the message
            names the run and both files).
    """
    files = [Path(path) for path in paths]
    if not files:
        raise ValueError("load_traces needs at least one trace file; none were given")
    resolved = [path.resolve() for path in files]
    repeated = sorted(
        {str(path) for path, real in zip(files, resolved, strict=True) if resolved.count(real) > 1}
    )
    if repeated:
        raise DuplicateRunError(
            f"trace file(s) {', '.join(repeated)} given twice; give each file once (a run "
            f"must be aggregated once)"
        )
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
