from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.tables import final_by_run
from casbo_bench.schemas.trace import RUN_KEYS, TraceValidationError
from casbo_bench.traces import DuplicateRunError, TraceFileError, load_traces


def write_jobs(traces: pd.DataFrame, folder: Path) -> list[Path]:
    """One Parquet file per method and problem, as the workflow's jobs write them."""
    paths = []
    for (method, problem), frame in traces.groupby(["method", "problem"]):
        path = folder / f"{method}_{problem}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def test_round_trip(traces: pd.DataFrame, tmp_path: Path) -> None:
    loaded = load_traces(write_jobs(traces, tmp_path))
    expected = traces.sort_values([*RUN_KEYS, "evaluation"], ignore_index=True)
    pd.testing.assert_frame_equal(loaded, expected)


def test_failing_file_is_named_with_its_check(traces: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_jobs(traces, tmp_path)
    broken = pd.read_parquet(paths[1])
    broken.loc[5, "best_so_far"] = broken.loc[5, "best_so_far"] * 0.5
    broken.to_parquet(paths[1], index=False)
    with pytest.raises(TraceValidationError) as error:
        load_traces(paths)
    message = str(error.value)
    assert str(paths[1]) in message
    assert "best_so_far must equal the running minimum" in message


def test_duplicate_runs_across_files_name_both(traces: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_jobs(traces, tmp_path)
    copy = tmp_path / "copy.parquet"
    one_run = pd.read_parquet(paths[0]).query("seed == 3 and d == 2 and K == 1")
    one_run.to_parquet(copy, index=False)
    with pytest.raises(DuplicateRunError) as error:
        load_traces([*paths, copy])
    message = str(error.value)
    assert str(paths[0]) in message and str(copy) in message
    assert "seed=3" in message


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "not-parquet.parquet"
    path.write_text("this is not parquet")
    with pytest.raises(TraceFileError, match=r"not-parquet\.parquet is not a readable Parquet"):
        load_traces([path])


def test_missing_file_and_no_files(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match=r"absent\.parquet does not exist"):
        load_traces([tmp_path / "absent.parquet"])
    with pytest.raises(ValueError, match="at least one"):
        load_traces([])


def test_final_by_run(traces: pd.DataFrame) -> None:
    finals = final_by_run(traces)
    runs = traces.groupby(list(RUN_KEYS))
    assert len(finals) == runs.ngroups
    minimum = runs["loss"].min().reset_index(drop=True)
    np.testing.assert_array_equal(finals["best_so_far"], minimum)
    assert (finals["evaluations"] == finals["budget"]).all()
