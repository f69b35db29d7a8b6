"""``casbo-bench store``: a run's finished jobs carried through a tracked folder and back.

What a user resuming a long run on a fresh machine relies on: every file of a stored job comes
back byte for byte and its trace is sound, and git tracks every one of them; the index says
which config asked for the job and where and how long it ran; a damaged store is refused
before anything is copied; a trace already in the results folder is never replaced; a job
that has not finished is not stored; a pattern that matches nothing, a bbob job and a job
name that leaves the results folder are refused with the fix.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from casbo_bench.cli import main
from casbo_bench.files import sha256_file
from casbo_bench.run_store import (
    INDEX,
    INDEX_COLUMNS,
    StoreError,
    job_files,
    restore,
    store,
    summary,
)
from casbo_bench.traces import trace_fault

REPOSITORY = Path(__file__).resolve().parents[1]
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


def test_git_tracks_every_file_of_a_store(results: Path, tmp_path: Path) -> None:
    """The store is meant to be committed: no rule of .gitignore (``*.log``) may drop a file."""
    store(results, tmp_path / "runs" / "tiny")
    stored = [
        f"runs/tiny/{path.relative_to(tmp_path / 'runs' / 'tiny').as_posix()}"
        for path in (tmp_path / "runs" / "tiny").rglob("*")
        if path.is_file()
    ]
    assert any(name.endswith(".log") for name in stored)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *stored],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout == "", f"ignored by .gitignore: {ignored.stdout}"


def test_storing_again_copies_only_what_changed(results: Path, tmp_path: Path) -> None:
    store(results, tmp_path / "runs")
    again = store(results, tmp_path / "runs")
    assert again.copied == [] and again.unchanged == sorted(JOBS)


def test_a_job_that_ran_again_replaces_its_stored_copy(results: Path, tmp_path: Path) -> None:
    store(results, tmp_path / "runs")
    trace = results / job_files(JOBS[0])[0]
    arguments = ["run", "--method", "random", "--problem", "sphere", "--dim", "2"]
    assert main([*arguments, "--budget", "30", "--seeds", "0", "--out", str(trace)]) == 0
    assert store(results, tmp_path / "runs").copied == [JOBS[0]]
    fresh = tmp_path / "fresh"
    restore(tmp_path / "runs", fresh)
    assert (fresh / job_files(JOBS[0])[0]).read_bytes() == trace.read_bytes()


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
    assert outcome.kept == [JOBS[0]] and outcome.unchanged == [JOBS[1]]
    assert other.read_bytes() == b"another run's trace"


def test_a_restore_stopped_before_the_trace_is_finished_by_the_next(
    results: Path, tmp_path: Path
) -> None:
    """The trace is copied last: a restore stopped before it leaves a sidecar and a log, which
    the next restore replaces with the whole job."""
    store(results, tmp_path / "runs")
    fresh = tmp_path / "fresh"
    restore(tmp_path / "runs", fresh)
    (fresh / job_files(JOBS[1])[0]).unlink()
    (fresh / job_files(JOBS[1])[3]).write_text("an unfinished attempt's log\n")
    assert restore(tmp_path / "runs", fresh).copied == [JOBS[1]]
    assert _files(fresh) == _files(tmp_path / "runs")
    assert trace_fault(fresh / job_files(JOBS[1])[0]) is None


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["results/tiny/raw/*"], r"--jobs 'results/tiny/raw/\*' matches no finished job"),
        ([f"{JOBS[0]}.parquet"], r"without \.parquet \(e\.g\. raw/plain/random/sphere"),
    ],
)
def test_a_pattern_that_matches_no_finished_job_is_refused(
    results: Path, tmp_path: Path, patterns: list[str], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        store(results, tmp_path / "runs", patterns)
    assert not (tmp_path / "runs").exists()


def test_a_bbob_job_is_refused(results: Path, tmp_path: Path) -> None:
    """Snakemake reruns a bbob job whose COCO folder is missing, which a store cannot hold."""
    bbob = results / "raw/bbob/random/bbob-f01_d2_K1_final_s0"
    bbob.parent.mkdir(parents=True)
    for source, name in zip(job_files(JOBS[0])[:2], (".parquet", ".parquet.sha256"), strict=True):
        (results / source).rename(f"{bbob}{name}")
    with pytest.raises(StoreError, match="bbob-f01_d2_K1_final_s0 is a bbob job"):
        store(results, tmp_path / "runs")


def test_a_job_name_that_leaves_the_results_folder_is_refused(
    results: Path, tmp_path: Path
) -> None:
    store(results, tmp_path / "runs")
    index = tmp_path / "runs" / INDEX
    rows = index.read_text().splitlines()
    rows[1] = "raw/../../escape/x" + rows[1][rows[1].index(",") :]
    index.write_text("\n".join(rows) + "\n")
    with pytest.raises(StoreError, match=r"line 2: not a complete row of a stored job"):
        restore(tmp_path / "runs", tmp_path / "fresh")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "fresh").exists()
    assert len(INDEX_COLUMNS) == len(rows[1].split(","))


def test_the_command_says_what_it_did_and_refuses_a_folder_without_an_index(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["store", "--results", str(results), "--to", str(tmp_path / "runs")]
    assert main([*arguments, "--jobs", "raw/*/random/*"]) == 0
    assert "stored 1 jobs" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    assert main(["store", "--restore", str(tmp_path / "runs"), "--results", str(fresh)]) == 0
    assert "restored 1 jobs into" in capsys.readouterr().out
    assert main(["store", "--restore", str(tmp_path), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"casbo-bench store: error: {tmp_path} holds no stored job ({INDEX} missing or empty); "
        "give a folder `casbo-bench store` wrote (runs/<name>)"
    )


def test_the_summary_adds_up_the_index_per_folder_of_jobs(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store(results, tmp_path / "runs" / "tiny")
    rows = {row["jobs of"]: row for row in summary(tmp_path / "runs" / "tiny")}
    assert list(rows) == ["raw/plain/random", "raw/plain/turbo", "all"]
    assert rows["raw/plain/random"]["jobs"] == "1" and rows["all"]["jobs"] == "2"
    # Two jobs of 12.50 wall seconds and 11.75 CPU seconds each (the benchmark record).
    assert rows["all"]["wall h"] == f"{25.0 / 3600:.2f}"
    assert rows["raw/plain/turbo"]["median wall s"] == "12"  # 12.5 rounds half to even
    sizes = [(results / job_files(job)[0]).stat().st_size for job in JOBS]
    assert rows["all"]["MB"] == f"{sum(sizes) / 1e6:.1f}"
    assert main(["store", "--summary", str(tmp_path / "runs" / "tiny")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| jobs of | jobs | wall h |") and len(table) == 2 + 3
    assert main(["store", "--summary", str(tmp_path / "runs" / "tiny"), "--jobs", "x"]) == 2
    assert "--summary STORE reads the store alone" in capsys.readouterr().err
