"""Carrying a run's finished jobs to the next machine through the repository.

A long run (config/paper-local.yaml) outlasts the session of a machine that keeps nothing but
the repository: its results/<name>/ folder is gone the next time. :func:`store` copies the
finished jobs of a run into a tracked folder (runs/<name>/, laid out like results/<name>/);
:func:`restore` copies them back into a fresh checkout, where Snakemake finds them finished
and runs only the rest. A job is the files rule run writes for it, relative to the run's
folder::

    <job>.parquet  <job>.parquet.sha256  benchmarks/<job>.tsv  logs/<job>.log

with ``<job>`` such as ``raw/plain/turbo/sphere_d10_K1_final_s0``. Only a job whose trace is
sound (:func:`casbo_bench.traces.trace_fault`) is stored, and restored only while its bytes
still match the sha256 the store's index recorded; a file already in the results folder is
never replaced, so restoring cannot lose a finished result. The index (``index.csv``) also
says which config asked for each job (its hash), and where and how long the job ran: host
and CPU model from the trace's provenance, its finishing time, and the wall and CPU seconds
of Snakemake's benchmark record.

What is worth storing is the user's choice (``patterns``): a job's CPU time per stored byte
decides it. A TuRBO job (500 evaluations, 20 to 30 CPU-minutes) takes tens of kB, while a
rate-check job's trace is megabytes for a few CPU-minutes and is cheaper to run again.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_text_atomically
from casbo_bench.traces import SIDECAR_SUFFIX, read_provenance, trace_fault

logger = logging.getLogger(__name__)

INDEX = "index.csv"
"""The store's record of every stored job, one row each (:data:`INDEX_COLUMNS`)."""

INDEX_COLUMNS = (
    "job",
    "trace_sha256",
    "trace_bytes",
    "config_hash",
    "host",
    "cpu",
    "finished_utc",
    "wall_s",
    "cpu_s",
)

TRACE_SUFFIX = ".parquet"

# Trees below a run's folder that hold no job's trace.
_NOT_JOBS = ("benchmarks", "logs", "quarantine")


class StoreError(UserFacingError, ValueError):
    """A store or results folder cannot be used as asked; the message names the fix."""


@dataclass(frozen=True)
class Outcome:
    """What :func:`store` or :func:`restore` did, job names in each list."""

    copied: list[str]
    skipped: list[str]
    """Already there with the same trace (store: same sha256 in the index; restore: in the
    results folder)."""
    refused: list[str]
    """Left alone, each with its reason (see the log): an unsound trace, or on restore a
    different trace already in the results folder."""


def job_files(job: str) -> tuple[str, ...]:
    """The files of ``job`` relative to the run's folder, the trace first."""
    return (
        f"{job}{TRACE_SUFFIX}",
        f"{job}{TRACE_SUFFIX}{SIDECAR_SUFFIX}",
        f"benchmarks/{job}.tsv",
        f"logs/{job}.log",
    )


def finished_jobs(results: Path) -> list[str]:
    """Every job below ``results`` with both its trace and its sidecar, sorted (a job that
    is running, or was stopped, lacks one of them)."""
    jobs = []
    for sidecar in results.rglob(f"*{TRACE_SUFFIX}{SIDECAR_SUFFIX}"):
        job = sidecar.relative_to(results).as_posix()[: -len(TRACE_SUFFIX + SIDECAR_SUFFIX)]
        if job.split("/", 1)[0] not in _NOT_JOBS and (results / job_files(job)[0]).is_file():
            jobs.append(job)
    return sorted(jobs)


def _matching(jobs: Iterable[str], patterns: Sequence[str]) -> list[str]:
    return [job for job in jobs if any(fnmatch.fnmatchcase(job, p) for p in patterns)]


def _read_index(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / INDEX
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if rows and set(rows[0]) != set(INDEX_COLUMNS):
        raise StoreError(
            f"{path}: columns {sorted(rows[0])} are not a run store's index "
            f"({', '.join(INDEX_COLUMNS)}); give the folder `casbo-bench store` wrote"
        )
    return {row["job"]: row for row in rows}


def _write_index(folder: Path, rows: dict[str, dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[job] for job in sorted(rows))
    write_text_atomically(folder / INDEX, text.getvalue())


def _benchmark_seconds(path: Path) -> tuple[str, str]:
    """Wall and CPU seconds of a Snakemake benchmark record (``s``, ``cpu_time``), as text;
    empty where the record is missing."""
    if not path.is_file():
        return "", ""
    with open(path, newline="", encoding="utf-8") as stream:
        row = next(csv.DictReader(stream, delimiter="\t"), None) or {}
    return row.get("s", ""), row.get("cpu_time", "")


def _index_row(results: Path, job: str, trace_sha256: str) -> dict[str, str]:
    trace = results / job_files(job)[0]
    provenance = read_provenance(trace)
    wall, cpu = _benchmark_seconds(results / job_files(job)[2])
    return {
        "job": job,
        "trace_sha256": trace_sha256,
        "trace_bytes": str(trace.stat().st_size),
        "config_hash": str(provenance.get("config_hash") or ""),
        "host": str(provenance.get("host", "")),
        "cpu": str((provenance.get("device") or {}).get("cpu", "")),
        "finished_utc": str(provenance.get("time_utc", "")),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def _sidecar_sha256(trace: Path) -> str:
    return Path(f"{trace}{SIDECAR_SUFFIX}").read_text(encoding="utf-8").split()[0]


def store(results: Path, folder: Path, patterns: Sequence[str] = ("*",)) -> Outcome:
    """Copy the finished jobs of ``results`` whose names match ``patterns`` into ``folder``.

    Args:
        results: the run's folder, results/<name>.
        folder: the store, runs/<name> (created if missing); its index is updated.
        patterns: shell-style patterns over job names (``fnmatch``, ``*`` crossing ``/``),
            e.g. ``raw/*/turbo/*``; every finished job by default.

    Returns:
        The jobs copied, those the store already held with the same trace, and those refused
        (an unsound trace: :func:`~casbo_bench.traces.trace_fault` names the fault).
    """
    if not results.is_dir():
        raise StoreError(f"{results} is not a folder; give the run's results/<name>")
    index = _read_index(folder)
    copied, skipped, refused = [], [], []
    for job in _matching(finished_jobs(results), patterns):
        trace = results / job_files(job)[0]
        fault = trace_fault(trace)
        if fault is not None:
            logger.warning("not storing %s: %s", job, fault)
            refused.append(job)
            continue
        digest = _sidecar_sha256(trace)
        if index.get(job, {}).get("trace_sha256") == digest:
            skipped.append(job)
            continue
        for name in job_files(job):
            if (results / name).is_file():
                _copy_into_place(results / name, folder / name)
        index[job] = _index_row(results, job, digest)
        copied.append(job)
    if copied:
        _write_index(folder, index)
    return Outcome(copied, skipped, refused)


def restore(folder: Path, results: Path) -> Outcome:
    """Copy every job of store ``folder`` into ``results`` where it is not there yet.

    A stored trace must still match the sha256 its index row recorded and its sidecar;
    otherwise nothing is copied (the store is damaged: the error names the job). A job whose
    trace is already in ``results`` is left as it is: skipped with the same bytes, refused
    (and reported) with different ones. A job without its trace there gets all its files,
    replacing what an unfinished attempt left (a sidecar, a log), the trace last.
    """
    index = _read_index(folder)
    if not index:
        raise StoreError(
            f"{folder} holds no {INDEX}; give a folder `casbo-bench store` wrote (runs/<name>)"
        )
    for job, row in index.items():
        trace = folder / job_files(job)[0]
        try:
            digest = sha256_file(trace)
            sidecar = _sidecar_sha256(trace)
        except OSError as error:
            raise StoreError(
                f"{folder}: job {job} is incomplete ({error.strerror}: {error.filename}); "
                f"restore the store from git (git checkout -- {folder})"
            ) from None
        if not digest == sidecar == row["trace_sha256"]:
            raise StoreError(
                f"{trace}: its sha256 no longer matches {INDEX} and its sidecar; restore the "
                f"store from git (git checkout -- {folder}) or remove the job's row and files"
            )
    copied, skipped, refused = [], [], []
    for job, row in sorted(index.items()):
        target = results / job_files(job)[0]
        if target.exists():
            if target.is_file() and sha256_file(target) == row["trace_sha256"]:
                skipped.append(job)
            else:
                logger.warning("not restoring %s: %s holds another trace", job, target)
                refused.append(job)
            continue
        for name in job_files(job)[1:] + job_files(job)[:1]:  # the trace last: it marks done
            if (folder / name).is_file():
                _copy_into_place(folder / name, results / name)
        copied.append(job)
    return Outcome(copied, skipped, refused)


def _copy_into_place(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` under a temporary name, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


__all__ = [
    "INDEX",
    "INDEX_COLUMNS",
    "Outcome",
    "StoreError",
    "finished_jobs",
    "job_files",
    "restore",
    "store",
]
