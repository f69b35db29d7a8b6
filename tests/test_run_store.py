"""``casbo-bench store``: a run's finished jobs carried through a tracked folder and back.

What a user resuming a long run on a fresh machine relies on: every file of a stored job comes
back byte for byte and its trace is sound; the index says which config asked for the job and
where and how long it ran; a damaged store is refused before anything is copied; a trace
already in the results folder is never replaced; a job that has not finished is not stored.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from casbo_bench.cli import main
from casbo_bench.files import sha256_file
from casbo_bench.run_store import INDEX, StoreError, job_files, restore, store
from casbo_bench.traces import trace_fault

JOBS = ("raw/plain/random/sphere_d2_K1_final_s0", "raw/plain/turbo/sphere_d2_K1_final_s0")
BENCHMARK_RECORD = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    "12.50\t0:00:12\t400.1\t900.2\t300.3\t310.4\t0.00\t0.01\t95.00\t11.75\n"
)


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A run folder as rule run leaves it: two finished jobs, one stopped before its trace."""
    folder = tmp_path / "results" / "tiny"
    for seed, job in enumerate(JOBS):
        trace = folder / job_files(job)[0]
        arguments = ["run", "--method", "random", "--problem", "sphere", "--dim", "2"]
        arguments += ["--budget", "20", "--seeds", str(seed), "--config-hash", "0123abcd"]
        assert main([*arguments, "--out", str(trace)]) == 0
        (folder / "benchmarks" / job).parent.mkdir(parents=True, exist_ok=True)
        (folder / f"benchmarks/{job}.tsv").write_text(BENCHMARK_RECORD)
        (folder / f"logs/{job}.log").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"logs/{job}.log").write_text(f"log of {job}\n")
    stopped = folder / "raw/plain/turbo/ellipsoid_d2_K1_final_s0.parquet.sha256"
    stopped.write_text("0" * 64 + "  ellipsoid_d2_K1_final_s0.parquet\n")
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and path.name != INDEX
    }


def test_a_stored_run_comes_back_byte_for_byte(results: Path, tmp_path: Path) -> None:
    outcome = store(results, tmp_path / "runs" / "tiny")
    assert outcome.copied == sorted(JOBS) and not outcome.refused
    fresh = tmp_path / "fresh" / "results" / "tiny"
    assert restore(tmp_path / "runs" / "tiny", fresh).copied == sorted(JOBS)
    stopped = "raw/plain/turbo/ellipsoid_d2_K1_final_s0.parquet.sha256"
    assert _files(fresh) == {k: v for k, v in _files(results).items() if k != stopped}
    for job in JOBS:
        assert trace_fault(fresh / job_files(job)[0]) is None


def test_the_index_says_which_config_asked_and_where_and_how_long_each_job_ran(
    results: Path, tmp_path: Path
) -> None:
    store(results, tmp_path / "runs", ["raw/*/turbo/*"])
    with open(tmp_path / "runs" / INDEX, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["job"] for row in rows] == [JOBS[1]]
    (row,) = rows
    assert row["config_hash"] == "0123abcd"
    assert row["trace_sha256"] == sha256_file(results / job_files(JOBS[1])[0])
    assert (row["wall_s"], row["cpu_s"]) == ("12.50", "11.75")
    assert row["host"] and row["cpu"] and row["finished_utc"].startswith("20")


def test_storing_again_copies_only_what_changed(results: Path, tmp_path: Path) -> None:
    store(results, tmp_path / "runs")
    again = store(results, tmp_path / "runs")
    assert again.copied == [] and again.skipped == sorted(JOBS)


def test_a_damaged_trace_is_not_stored(results: Path, tmp_path: Path) -> None:
    trace = results / job_files(JOBS[0])[0]
    trace.write_bytes(trace.read_bytes()[:-1] + b"\0")
    outcome = store(results, tmp_path / "runs")
    assert outcome.refused == [JOBS[0]] and outcome.copied == [JOBS[1]]


def test_a_damaged_store_is_refused_before_anything_is_copied(
    results: Path, tmp_path: Path
) -> None:
    store(results, tmp_path / "runs")
    stored = tmp_path / "runs" / job_files(JOBS[1])[0]
    stored.write_bytes(stored.read_bytes() + b"\0")
    fresh = tmp_path / "fresh"
    with pytest.raises(StoreError, match=r"turbo/sphere_d2_K1_final_s0\.parquet: its sha256"):
        restore(tmp_path / "runs", fresh)
    assert not fresh.exists()


def test_a_trace_already_in_the_results_folder_is_never_replaced(
    results: Path, tmp_path: Path
) -> None:
    store(results, tmp_path / "runs")
    other = results / job_files(JOBS[0])[0]
    other.write_bytes(b"another run's trace")
    outcome = restore(tmp_path / "runs", results)
    assert outcome.refused == [JOBS[0]] and outcome.skipped == [JOBS[1]]
    assert other.read_bytes() == b"another run's trace"


def test_the_command_says_what_it_did_and_refuses_a_folder_without_an_index(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["store", "--results", str(results), "--to", str(tmp_path / "runs")]
    assert main([*arguments, "--jobs", "raw/*/random/*"]) == 0
    assert "stored 1 jobs" in capsys.readouterr().out
    assert main(["store", "--restore", str(tmp_path), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"casbo-bench store: error: {tmp_path} holds no {INDEX}; give a folder "
        "`casbo-bench store` wrote (runs/<name>)"
    )
