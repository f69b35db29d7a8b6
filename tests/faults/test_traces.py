"""Damaged and lost traces: found before the DAG is built, quarantined, rebuilt.

Unit cases check :mod:`casbo_bench.traces` (sidecar, fault, quarantine, duplicate files);
workflow cases damage one trace of a finished run (tests/faults/workflow.yaml), run
Snakemake again, and require the trace rebuilt, the damaged file in quarantine/ and every
table equal to the clean run's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casbo_bench.files import sha256_file
from casbo_bench.traces import (
    DuplicateRunError,
    failed_seeds,
    load_traces,
    quarantine_trace,
    read_provenance,
    read_trace,
    sidecar_path,
    trace_fault,
    write_trace,
)
from tests.faults.conftest import FAULT_CONFIG as CONFIG
from tests.faults.conftest import FAULT_RESULTS as RESULTS
from tests.faults.conftest import fault_tables as _tables
from tests.snakemake_runs import run_snakemake

pytestmark = pytest.mark.fault("corrupted or deleted trace")

TRACE = RESULTS / "raw" / "plain" / "casbo" / "sphere_d2_K1_final_s1.parquet"


def _rewrite(path: Path, change: Callable[[pd.DataFrame], None]) -> None:
    """Rewrite the Parquet file ``path`` with ``change`` applied, provenance kept."""
    table = pq.read_table(path)
    frame = table.to_pandas()
    change(frame)
    rewritten = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
        table.schema.metadata
    )
    pq.write_table(rewritten, path)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _nan_loss(path: Path) -> None:
    _rewrite(path, lambda frame: frame.loc.__setitem__((3, "loss"), np.nan))


def _negative_evaluation(path: Path) -> None:
    _rewrite(path, lambda frame: frame.loc.__setitem__((0, "evaluation"), -1))


def _delete(path: Path) -> None:
    path.unlink()


def _delete_with_sidecar(path: Path) -> None:
    path.unlink()
    sidecar_path(path).unlink()


def _delete_sidecar(path: Path) -> None:
    sidecar_path(path).unlink()


DAMAGES = {
    "truncated": _truncate,
    "flipped byte": _flip_byte,
    "NaN loss": _nan_loss,
    "negative evaluation": _negative_evaluation,
    "deleted": _delete,
    "deleted with its sidecar": _delete_with_sidecar,
    "sidecar deleted": _delete_sidecar,
}


def _sound_trace(tmp_path: Path) -> Path:
    """A trace written by a one-seed run, with its sidecar."""
    from casbo_bench.runner import Job, run_job

    job = Job("random", "sphere", 2, (0,), budget=6, fresh_samples=2)
    path = tmp_path / "results" / "x" / "raw" / "t.parquet"
    write_trace(run_job(job), path, {"job": job.arguments()})
    return path


@pytest.mark.parametrize("damage", sorted(DAMAGES), ids=lambda name: name.replace(" ", "-"))
def test_a_damaged_trace_is_found(damage: str, tmp_path: Path) -> None:
    path = _sound_trace(tmp_path)
    assert trace_fault(path) is None
    assert sidecar_path(path).read_text().split() == [sha256_file(path), path.name]
    DAMAGES[damage](path)
    assert trace_fault(path) is not None


def test_a_trace_another_config_or_claims_rule_asked_for_is_stale(tmp_path: Path) -> None:
    """A trace restored from a store (`casbo-bench store`) has no Snakemake record that
    would rerun it when its config changed: the hashes in its provenance decide."""
    path = _sound_trace(tmp_path)
    write_trace(
        pq.read_table(path).to_pandas(), path, {"config_hash": "aaaa", "claims_rule_hash": "bbbb"}
    )
    assert trace_fault(path, "aaaa", "bbbb") is None
    assert trace_fault(path, "aaaa") is None and trace_fault(path) is None
    assert trace_fault(path, "cccc", "bbbb") == (
        "another config asked for it (config_hash aaaa, now cccc)"
    )
    assert trace_fault(path, "aaaa", "dddd") == (
        "another claims rule asked for it (claims_rule_hash bbbb, now dddd)"
    )


def test_quarantine_moves_the_trace_with_its_reason(tmp_path: Path) -> None:
    path = _sound_trace(tmp_path)
    results = tmp_path / "results" / "x"
    moved = quarantine_trace(path, "its bytes differ", results)
    assert not path.exists() and moved.is_file()
    assert moved.parent == results / "quarantine" / "raw"
    assert "its bytes differ" in moved.with_name(f"{moved.name}.reason").read_text()
    assert sidecar_path(path).read_text().startswith("#")
    assert trace_fault(path) == "the trace is missing"


def test_aggregating_one_file_twice_is_refused(tmp_path: Path) -> None:
    path = _sound_trace(tmp_path)
    with pytest.raises(DuplicateRunError, match="given twice"):
        load_traces([path, path])


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    ["truncated", "NaN loss", "negative evaluation", "deleted", "deleted with its sidecar"],
    ids=lambda name: name.replace(" ", "-"),
)
def test_the_workflow_rebuilds_a_damaged_trace(
    damage: str, clean_run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(clean_run, folder, symlinks=True)
    clean_tables = _tables(clean_run)
    DAMAGES[damage](folder / TRACE)
    rerun = run_snakemake(folder, "--configfile", str(CONFIG), timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{TRACE}: " in rerun.stderr  # the one line naming the trace and its fault
    assert trace_fault(folder / TRACE) is None
    assert _tables(folder) == clean_tables
    quarantined = list((folder / RESULTS / "quarantine").rglob("*.reason"))
    assert len(quarantined) == (0 if damage.startswith("deleted") else 1)
    again = run_snakemake(folder, "--configfile", str(CONFIG), "-n", timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
@pytest.mark.fault("failing black box")
def test_rerun_failed_runs_a_failed_seed_again(clean_run: Path, tmp_path: Path) -> None:
    """A trace whose seed 1 is recorded as failed (as a crashed xTB would leave it) is run
    again under CASBO_RERUN_FAILED=1 (`make rerun-failed`), and only then."""
    folder = tmp_path / "run"
    shutil.copytree(clean_run, folder, symlinks=True)
    trace = folder / TRACE
    provenance = read_provenance(trace)
    provenance["repetitions"]["1"].update(status="failed", error="RuntimeError: xtb crashed")
    written = trace.stat()
    write_trace(read_trace(trace), trace, provenance)
    for path in (trace, sidecar_path(trace)):  # as if the job had written it so, before the tables
        os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns))
    assert failed_seeds(trace) == {1: "RuntimeError: xtb crashed"}
    untouched = run_snakemake(folder, "--configfile", str(CONFIG), "-n", timeout=300)
    assert "Nothing to be done" in untouched.stdout + untouched.stderr
    rerun = run_snakemake(
        folder, "--configfile", str(CONFIG), timeout=900, environment={"CASBO_RERUN_FAILED": "1"}
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "xtb crashed" in rerun.stderr
    assert failed_seeds(trace) == {}
    assert _tables(folder) == _tables(clean_run)
