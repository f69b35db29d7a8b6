"""Carrying a run's finished jobs to the next machine through the repository.

A long run (config/paper-local.yaml) outlasts the session of a machine that keeps nothing but
the repository: its results/<name>/ folder is gone the next time. :func:`store` copies the
finished jobs of a run into a tracked folder (runs/<name>/, laid out like results/<name>/);
:func:`restore` copies them back into a fresh checkout, where Snakemake finds them finished
and runs only the rest. A job is the files rule run writes for it, relative to the run's
folder::

    <job>.parquet  <job>.parquet.sha256  benchmarks/<job>.tsv  logs/<job>.log

with ``<job>`` such as ``raw/plain/turbo/sphere_d10_K1_final_s0`` (it begins with one of
:data:`~casbo_bench.names.JOB_FOLDERS`). Only a job whose trace is sound
(:func:`casbo_bench.traces.trace_fault`) is stored, and restored only while its bytes still
match the sha256 the store's index recorded; a file already in the results folder is never
replaced, so restoring cannot lose a finished result. A bbob job is not stored: Snakemake
also needs its COCO folder, which would make it run again. Once the config changes, the
workflow takes no restored trace for the new config's (its provenance names the config hash
that asked for it), as it reruns every job then.

The index (``index.csv``) also says which config asked for each job (its hash), and where
and how long the job ran: host and CPU model from the trace's provenance, its finishing
time, and the wall and CPU seconds of Snakemake's benchmark record. With the trace's size
beside them, it shows what storing a job costs against running it again: the user's choice
of ``patterns``.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import logging
import re
import shutil
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_atomically, write_text_atomically
from casbo_bench.names import JOB_FOLDERS
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

_JOB_NAME = re.compile(
    r"(?:" + "|".join(re.escape(folder) for folder in JOB_FOLDERS) + r")/[\w.+=-]+(?:/[\w.+=-]+)*"
)
# The file name of a job's trace: <problem>_d<d>_K<K>_<scoring>_s<chunk>.
_PROBLEM = re.compile(r"(?P<problem>.+)_d\d+_K\d+_[a-z]+_s\d+")


class StoreError(UserFacingError, ValueError):
    """A store or results folder cannot be used as asked; the message names the fix."""


@dataclass(frozen=True)
class Outcome:
    """What :func:`store` or :func:`restore` did, job names in each list.

    Attributes:
        copied: the jobs copied.
        unchanged: already there with the same trace (store: the index's sha256; restore:
            the results folder's file).
        kept: restore only: the results folder holds another trace of the job (a run there
            wrote it, e.g. after the config changed), which stays.
        refused: store only: an unsound trace, not stored (the log says why).
    """

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def job_files(job: str) -> tuple[str, ...]:
    """The files of ``job`` relative to the run's folder, the trace first."""
    return (
        f"{job}{TRACE_SUFFIX}",
        f"{job}{TRACE_SUFFIX}{SIDECAR_SUFFIX}",
        f"benchmarks/{job}.tsv",
        f"logs/{job}.log",
    )


def is_job_name(name: str) -> bool:
    """Whether ``name`` is a job of rule run: below one of the job folders, no ``..``."""
    return _JOB_NAME.fullmatch(name) is not None and ".." not in PurePosixPath(name).parts


def finished_jobs(results: Path) -> list[str]:
    """Every job below ``results`` with both its trace and its sidecar, sorted (a job that
    is running, or was stopped, lacks one of them)."""
    jobs = []
    for folder in JOB_FOLDERS:
        for sidecar in (results / folder).rglob(f"*{TRACE_SUFFIX}{SIDECAR_SUFFIX}"):
            job = sidecar.relative_to(results).as_posix()[: -len(TRACE_SUFFIX + SIDECAR_SUFFIX)]
            if (results / job_files(job)[0]).is_file():
                jobs.append(job)
    return sorted(jobs)


def _writes_coco_folder(job: str) -> bool:
    from casbo_bench.problems import writes_coco_data

    match = _PROBLEM.fullmatch(PurePosixPath(job).name)
    return match is not None and writes_coco_data(match["problem"])


def _matching(jobs: Sequence[str], patterns: Sequence[str], results: Path) -> list[str]:
    chosen = []
    for pattern in patterns:
        matched = [job for job in jobs if fnmatch.fnmatchcase(job, pattern)]
        if not matched:
            example = f" (e.g. {jobs[0]})" if jobs else ""
            raise StoreError(
                f"--jobs {pattern!r} matches no finished job of {results}; patterns match job "
                f"names relative to the run's folder, without .parquet{example}"
            )
        chosen += [job for job in matched if job not in chosen]
    coco = [job for job in chosen if _writes_coco_folder(job)]
    if coco:
        raise StoreError(
            f"{coco[0]} is a bbob job: its COCO folder cannot be stored, so Snakemake would run "
            f"it again; give --jobs patterns that leave out the bbob-* problems"
        )
    return sorted(chosen)


def _read_index(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / INDEX
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        if reader.fieldnames is not None and tuple(reader.fieldnames) != INDEX_COLUMNS:
            raise StoreError(
                f"{path}: columns {reader.fieldnames} are not a run store's index "
                f"({', '.join(INDEX_COLUMNS)}); give the folder `casbo-bench store` wrote"
            )
        rows = list(reader)
    for number, row in enumerate(rows, 2):
        if None in row.values() or None in row or not is_job_name(row["job"]):
            raise StoreError(
                f"{path}, line {number}: not a complete row of a stored job (a job name below "
                f"{', '.join(JOB_FOLDERS)}, then {len(INDEX_COLUMNS) - 1} fields); restore the "
                f"file from git (git checkout -- {path})"
            )
    return {row["job"]: row for row in rows}


def _stored_index(folder: Path) -> dict[str, dict[str, str]]:
    """The index of store ``folder``, which must hold a job (restore, summary)."""
    index = _read_index(folder)
    if not index:
        raise StoreError(
            f"{folder} holds no stored job ({INDEX} missing or empty); give a folder "
            f"`casbo-bench store` wrote (runs/<name>)"
        )
    return index


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
    return row.get("s") or "", row.get("cpu_time") or ""


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
    """The sha256 a trace's sidecar records (empty where the sidecar is empty)."""
    words = Path(f"{trace}{SIDECAR_SUFFIX}").read_text(encoding="utf-8").split()
    return words[0] if words else ""


def _copy(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` atomically (:func:`casbo_bench.files.write_atomically`)."""
    with open(source, "rb") as stream:
        write_atomically(target, lambda out: shutil.copyfileobj(stream, out))


def store(results: Path, folder: Path, patterns: Sequence[str] = ("*",)) -> Outcome:
    """Copy the finished jobs of ``results`` whose names match ``patterns`` into ``folder``.

    A job stored before with another trace (it ran again) loses its index row before its new
    files are copied and gets its new row after, so a store stopped half-way holds no row
    that disagrees with its files.

    Args:
        results: the run's folder, results/<name>.
        folder: the store, runs/<name> (created if missing); its index is updated.
        patterns: shell-style patterns over job names (``fnmatch``, ``*`` crossing ``/``),
            e.g. ``raw/*/turbo/*``; every finished job by default. Each must match a
            finished job.

    Returns:
        The jobs copied, those the store already held with the same trace, and those refused
        (an unsound trace: :func:`~casbo_bench.traces.trace_fault` names the fault).
    """
    if not results.is_dir():
        raise StoreError(f"{results} is not a folder; give the run's results/<name>")
    index = _read_index(folder)
    outcome = Outcome()
    for job in _matching(finished_jobs(results), patterns, results):
        trace = results / job_files(job)[0]
        fault = trace_fault(trace)
        if fault is not None:
            logger.warning("not storing %s: %s; run its job again", job, fault)
            outcome.refused.append(job)
            continue
        digest = _sidecar_sha256(trace)
        if index.get(job, {}).get("trace_sha256") == digest:
            outcome.unchanged.append(job)
            continue
        if index.pop(job, None) is not None:
            _write_index(folder, index)
        for name in job_files(job):
            if (results / name).is_file():
                _copy(results / name, folder / name)
        index[job] = _index_row(results, job, digest)
        _write_index(folder, index)
        outcome.copied.append(job)
    return outcome


def restore(folder: Path, results: Path) -> Outcome:
    """Copy every job of store ``folder`` into ``results`` where its trace is not there yet.

    A stored trace must still match the sha256 its index row recorded and its sidecar;
    otherwise nothing is copied (the store is damaged: the error names the job). A job whose
    trace is already in ``results`` stays as it is: unchanged with the same bytes, kept with
    others. A job without its trace there gets all its files, replacing what an unfinished
    attempt left (a sidecar, a log), the trace last: a restore stopped half-way leaves no
    trace whose job did not come back whole.
    """
    index = _stored_index(folder)
    for job, row in index.items():
        trace = folder / job_files(job)[0]
        try:
            digest, sidecar = sha256_file(trace), _sidecar_sha256(trace)
        except OSError as error:
            raise StoreError(
                f"{folder}: stored job {job} lacks {error.filename}; restore the store from "
                f"git (git checkout -- {folder})"
            ) from None
        if not digest == sidecar == row["trace_sha256"]:
            raise StoreError(
                f"{trace}: its sha256 no longer matches {INDEX} and its sidecar; restore the "
                f"store from git (git checkout -- {folder}) or remove the job's row and files"
            )
    outcome = Outcome()
    for job, row in sorted(index.items()):
        target = results / job_files(job)[0]
        if target.exists():
            same = target.is_file() and sha256_file(target) == row["trace_sha256"]
            (outcome.unchanged if same else outcome.kept).append(job)
            continue
        for name in job_files(job)[1:] + job_files(job)[:1]:
            if (folder / name).is_file():
                _copy(folder / name, results / name)
        outcome.copied.append(job)
    return outcome


def stored_jobs(folder: Path) -> Iterable[dict[str, str]]:
    """The index rows of store ``folder``, sorted by job."""
    index = _read_index(folder)
    return [index[job] for job in sorted(index)]


SUMMARY_COLUMNS = (
    "jobs of",
    "jobs",
    "wall h",
    "CPU h",
    "MB",
    "median wall s",
    "median kB",
    "hosts",
    "finished (UTC)",
)
"""The columns of :func:`summary`: per folder of jobs (``raw/plain/turbo``), then in all."""


def _summary_row(name: str, rows: Sequence[dict[str, str]]) -> dict[str, str]:
    """One line of :func:`summary` over the index ``rows`` (a missing time counts as none)."""
    wall = [float(row["wall_s"]) for row in rows if row["wall_s"]]
    cpu = [float(row["cpu_s"]) for row in rows if row["cpu_s"]]
    sizes = [int(row["trace_bytes"]) for row in rows]
    finished = sorted(row["finished_utc"][:10] for row in rows if row["finished_utc"])
    return dict(
        zip(
            SUMMARY_COLUMNS,
            (
                name,
                str(len(rows)),
                f"{sum(wall) / 3600:.2f}",
                f"{sum(cpu) / 3600:.2f}",
                f"{sum(sizes) / 1e6:.1f}",
                f"{statistics.median(wall):.0f}" if wall else "",
                f"{statistics.median(sizes) / 1e3:.0f}",
                ", ".join(sorted({row["host"] for row in rows})),
                " to ".join(dict.fromkeys([finished[0], finished[-1]])) if finished else "",
            ),
            strict=True,
        )
    )


def summary(folder: Path) -> list[dict[str, str]]:
    """What store ``folder`` holds and what it cost, from its index: per folder of jobs (a
    job's name without its file: ``raw/plain/turbo``), then ``all``, the columns of
    :data:`SUMMARY_COLUMNS`. Wall seconds are Snakemake's ``s`` (one thread a job, so
    job-seconds); CPU seconds its ``cpu_time``, sampled every 30 s after a job's first 15 s,
    so a lower bound that reads 0 for a short job.

    Raises:
        StoreError: ``folder`` holds no stored job, or its index is damaged.
    """
    index = _stored_index(folder)
    groups: dict[str, list[dict[str, str]]] = {}
    for job in sorted(index):
        groups.setdefault(str(PurePosixPath(job).parent), []).append(index[job])
    return [
        *(_summary_row(name, rows) for name, rows in groups.items()),
        _summary_row("all", list(index.values())),
    ]


__all__ = [
    "INDEX",
    "INDEX_COLUMNS",
    "SUMMARY_COLUMNS",
    "Outcome",
    "StoreError",
    "finished_jobs",
    "is_job_name",
    "job_files",
    "restore",
    "store",
    "stored_jobs",
    "summary",
]
