"""Killed runs: a SIGKILL at any point loses no finished work, and its lock is released.

Snakemake locks the folder while it runs; a SIGKILL leaves the lock behind and every later
run fails until ``snakemake --unlock``. ``make reproduce`` runs scripts/release_stale_lock.py
first: it releases a lock that no live Snakemake process holds, and refuses (naming the
process) while one does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import FAULT_CONFIG, FAULT_RESULTS, fault_tables
from tests.snakemake_runs import ENVIRONMENT, REPOSITORY, run_snakemake

pytestmark = [pytest.mark.fault("killed run"), pytest.mark.slow]

RELEASE = REPOSITORY / "scripts" / "release_stale_lock.py"
SNAKEFILE = ["--snakefile", str(REPOSITORY / "Snakefile"), "--configfile", str(FAULT_CONFIG)]


def _start(folder: Path) -> subprocess.Popen[str]:
    """The fault run started in ``folder``, in its own process group."""
    (folder / "tests").symlink_to(REPOSITORY / "tests")
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *SNAKEFILE, "--cores", "1"],
        cwd=folder,
        env=ENVIRONMENT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.2)


def _release(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RELEASE), *SNAKEFILE],
        cwd=folder,
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _locked(folder: Path) -> bool:
    locks = folder / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


@pytest.mark.parametrize("after_traces", [0, 1, 3])
def test_a_killed_run_is_released_and_finishes_like_a_clean_one(
    after_traces: int, clean_run: Path, tmp_path: Path
) -> None:
    """Killed once ``after_traces`` traces are written (0: while the first job runs)."""
    run = _start(tmp_path)
    raw = tmp_path / FAULT_RESULTS / "raw"
    _wait_for(lambda: _locked(tmp_path) and len(list(raw.rglob("*.sha256"))) >= after_traces)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert _locked(tmp_path)
    released = _release(tmp_path)
    assert released.returncode == 0, released.stderr
    assert "released the lock" in released.stderr
    finished = run_snakemake(tmp_path, "--configfile", str(FAULT_CONFIG), timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert fault_tables(tmp_path) == fault_tables(clean_run)


def test_a_live_runs_lock_is_not_released(tmp_path: Path) -> None:
    run = _start(tmp_path)
    try:
        _wait_for(lambda: _locked(tmp_path))
        refused = _release(tmp_path)
        assert refused.returncode == 1
        assert f"pid {run.pid}" in refused.stderr and "wait for it" in refused.stderr
        assert _locked(tmp_path)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def test_no_lock_no_action(tmp_path: Path) -> None:
    released = _release(tmp_path)
    assert released.returncode == 0 and released.stderr == ""
