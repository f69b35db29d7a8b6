"""Fault suite: black boxes that return NaN or infinity, or raise, and optimizers that break.

Each case injects one fault into a job (budget 12 in batches of 4, two seeds unless it says
otherwise) and asserts what the runner promises: the job finishes, the trace validates and is
written, a failed evaluation is a recorded row (``failed``, ``error``, NaN loss) that counts
against the budget and never enters best-so-far or the fresh-sample loss, the optimizer is
only ever told finite losses, a failed repetition keeps its rows (``status`` failed) and
never costs the other seeds theirs; ``on_failure: stop`` ends the job in one line; a
MemoryError or an interrupt is never taken for a failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from casbo_bench import provenance
from casbo_bench.cli import main
from casbo_bench.runner import EvaluationFailedError, Job, run_job
from casbo_bench.traces import read_provenance, read_trace, write_trace

from ..failing import EVERY, TEST_OPTIMIZERS, Fault, failing_job, register

pytestmark = pytest.mark.fault("failing black box")

BUDGET, FRESH = 12, 8
AFTER_BUDGET = range(BUDGET + 1, 10**9)


@dataclass(frozen=True)
class Case:
    """One injected fault and what the trace must show.

    Attributes:
        faults: the black box's faults.
        job: changes to the job (optimizer, options, K, scoring, seeds).
        failed: repetition seed -> its failed evaluations (1-based); a seed not named has
            none.
        failed_runs: seed -> the error of its failed repetition; the other seeds complete.
        fresh_failed: seed -> its failed fresh rollouts.
        rows: seed -> its rows, where not the budget.
        details: the black box returns a rollout detail.
    """

    faults: Sequence[Fault] = ()
    job: Mapping[str, Any] = field(default_factory=dict)
    failed: Mapping[int, Sequence[int]] = field(default_factory=dict)
    failed_runs: Mapping[int, str] = field(default_factory=dict)
    fresh_failed: Mapping[int, int] = field(default_factory=dict)
    rows: Mapping[int, int] = field(default_factory=dict)
    details: bool = False


BOTH = (0, 1)
ALL = range(1, BUDGET + 1)
RECORDED: dict[str, Case] = {
    "nan at the first evaluation": Case([Fault("nan", {1})], failed=dict.fromkeys(BOTH, (1,))),
    "nan mid-run": Case([Fault("nan", {6})], failed=dict.fromkeys(BOTH, (6,))),
    "inf": Case([Fault("inf", {5})], failed=dict.fromkeys(BOTH, (5,))),
    "-inf": Case([Fault("-inf", {2}, step=0)], failed=dict.fromkeys(BOTH, (2,))),
    "raise ValueError": Case([Fault("ValueError", {3})], failed=dict.fromkeys(BOTH, (3,))),
    "raise RuntimeError twice": Case(
        [Fault("RuntimeError", {9, 10})], failed=dict.fromkeys(BOTH, (9, 10))
    ),
    "raise in every rollout of a batch": Case(
        [Fault("ZeroDivisionError", {5, 6, 7, 8})], failed=dict.fromkeys(BOTH, (5, 6, 7, 8))
    ),
    "nan and a raise in one batch": Case(
        [Fault("nan", {1}), Fault("ValueError", {2})], failed=dict.fromkeys(BOTH, (1, 2))
    ),
    "nan in one seed only": Case([Fault("nan", {4, 8}, seeds=[1])], failed={1: [4, 8]}),
    "nan in every evaluation": Case(
        [Fault("nan")],
        failed=dict.fromkeys(BOTH, ALL),
        failed_runs=dict.fromkeys(BOTH, "none of its 12 evaluations succeeded (loss is nan)"),
    ),
    "raise in every evaluation": Case(
        [Fault("RuntimeError")],
        failed=dict.fromkeys(BOTH, ALL),
        failed_runs=dict.fromkeys(
            BOTH, "none of its 12 evaluations succeeded (RuntimeError: black box broke on"
        ),
    ),
    "nan in fresh samples": Case([Fault("nan", {13, 15})], fresh_failed=dict.fromkeys(BOTH, 2)),
    "raise in every fresh sample": Case(
        [Fault("ValueError", AFTER_BUDGET)], fresh_failed=dict.fromkeys(BOTH, FRESH)
    ),
    "per-step scope, a middle step of K = 3 is nan": Case(
        [Fault("nan", {2, 3}, step=1)],
        job={"n_steps": 3, "scoring": "cumulative"},
        failed=dict.fromkeys(BOTH, (2, 3)),
    ),
    "latent scope, inf": Case(
        [Fault("inf", {4, 11})],
        job={"optimizer": "recording-latent-walk", "n_steps": 3},
        failed=dict.fromkeys(BOTH, (4, 11)),
    ),
    "a raising rollout with rollout details": Case(
        [Fault("ValueError", {6})], failed=dict.fromkeys(BOTH, (6,)), details=True
    ),
    "optimizer raising mid-run": Case(
        job={"options": {"breaks_at": 2}},
        failed_runs=dict.fromkeys(BOTH, "RuntimeError: recording-walk broke"),
        rows=dict.fromkeys(BOTH, 8),
    ),
    "optimizer raising its OptimizerError after a failed evaluation": Case(
        [Fault("nan", {2})],
        job={"options": {"breaks_at": 1, "breaks_with": "OptimizerError"}},
        failed=dict.fromkeys(BOTH, (2,)),
        failed_runs=dict.fromkeys(BOTH, "OptimizerError: recording-walk broke"),
        rows=dict.fromkeys(BOTH, 4),
    ),
}


def _job(**changes: Any) -> Job:
    return failing_job(**{"seeds": BOTH, "budget": BUDGET, "fresh_samples": FRESH, **changes})


@pytest.mark.parametrize("name", list(RECORDED))
def test_a_failing_black_box_is_recorded(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case = RECORDED[name]
    register(monkeypatch, case.faults, details=case.details)
    job = _job(**case.job)
    records: dict[str, Any] = {}
    trace = run_job(job, records)
    path = write_trace(
        trace, tmp_path / "trace.parquet", provenance.collect(None, {}, repetitions=records)
    )
    trace = read_trace(path)
    for seed in job.seeds:
        run = trace[trace["seed"] == seed].sort_values("evaluation")
        record = records[str(seed)]
        assert len(run) == case.rows.get(seed, BUDGET)
        failed = list(case.failed.get(seed, []))
        assert run.loc[run["failed"], "evaluation"].tolist() == failed
        assert run["loss"].isna().tolist() == run["failed"].tolist()
        assert (run.loc[run["failed"], "error"] != "").all()
        assert (run.loc[~run["failed"], "error"] == "").all()
        best = np.minimum.accumulate(np.where(run["failed"], np.inf, run["loss"]))
        np.testing.assert_array_equal(run["best_so_far"], best)
        assert record["failed_evaluations"] == len(failed)
        assert record["failed_fresh_samples"] == case.fresh_failed.get(seed, 0)
        if seed in case.failed_runs:
            assert (run["status"] == "failed").all()
            assert record["status"] == "failed"
            assert record["error"].startswith(case.failed_runs[seed])
            assert run["fresh_sample_loss"].isna().all()
        else:
            assert (run["status"] == "complete").all()
            assert record["status"] == "complete" and record["error"] is None
            fresh_failed = case.fresh_failed.get(seed, 0)
            assert run["fresh_sample_loss"].isna().all() == (fresh_failed == FRESH)
    for optimizer in TEST_OPTIMIZERS[job.optimizer].instances:
        if optimizer.told:
            assert np.isfinite(optimizer.history()[1]).all()
    if case.details:
        numbers = trace["detail_number"]
        assert numbers[trace["failed"]].isna().all() and numbers[~trace["failed"]].notna().all()


STOPPED: dict[str, tuple[Fault, str]] = {
    "stop at a nan": (Fault("nan", {6}), "evaluation 6 failed (loss is nan)"),
    "stop at a raise": (
        Fault("ValueError", {2}),
        "evaluation 2 failed (ValueError: black box broke on rollout 2)",
    ),
    "stop at a failed fresh sample": (
        Fault("inf", {BUDGET + 3}),
        f"fresh rollout 3 of {FRESH} failed (loss is inf)",
    ),
}


@pytest.mark.parametrize("name", list(STOPPED))
def test_stop_ends_the_job_in_one_line(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fault, expected = STOPPED[name]
    register(monkeypatch, [fault])
    with pytest.raises(EvaluationFailedError) as raised:
        run_job(_job(on_failure="stop"))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("recording-walk on failing-quadratic (d=3, K=2, final), seed 0: ")
    assert expected in message
    assert message.endswith("set on_failure: penalty (--on-failure penalty) to record it and go on")


@pytest.mark.parametrize(
    ("kind", "error"), [("MemoryError", MemoryError), ("KeyboardInterrupt", KeyboardInterrupt)]
)
def test_no_failure_but_a_stop(
    kind: str, error: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch, [Fault(kind, {5})])
    with pytest.raises(error):
        run_job(_job())


# --- through the command line ----------------------------------------------------------------

RUN = ["run", "--method", "recording-walk", "--problem", "failing-quadratic", "--dim", "3"]
RUN += ["--budget", str(BUDGET), "--fresh-samples", str(FRESH)]


def test_nan_in_seed_2_of_seeds_0_1_2_keeps_every_seed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    register(monkeypatch, [Fault("nan", {3, 10}, seeds=[2])])
    out = tmp_path / "trace.parquet"
    assert main([*RUN, "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    trace = read_trace(out)
    assert trace.groupby("seed").size().to_dict() == {0: BUDGET, 1: BUDGET, 2: BUDGET}
    assert trace.groupby("seed")["failed"].sum().to_dict() == {0: 0, 1: 0, 2: 2}
    assert (trace["status"] == "complete").all()
    assert read_provenance(out)["repetitions"]["2"]["failed_evaluations"] == 2


def test_a_seed_whose_instance_cannot_be_built_leaves_the_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    register(monkeypatch, broken_seeds=[1])
    out = tmp_path / "trace.parquet"
    assert main([*RUN, "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    assert sorted(set(read_trace(out)["seed"])) == [0, 2]
    assert read_provenance(out)["repetitions"]["1"]["status"] == "failed"


def test_every_seed_failing_before_its_first_evaluation_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(monkeypatch, broken_seeds=[0, 1])
    out = tmp_path / "trace.parquet"
    assert main([*RUN, "--seeds", "0", "1", "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "every seed of recording-walk" in errors[0]
    assert "(seed 0: RuntimeError: cannot build the instance of seed 0)" in errors[0]
    assert not out.exists()


def test_the_tables_count_failed_runs_and_evaluations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    register(monkeypatch, [Fault("nan", {2, 3}, seeds=[0]), Fault("ValueError", EVERY, seeds=[1])])
    out = tmp_path / "trace.parquet"
    assert main([*RUN, "--seeds", "0", "1", "2", "--out", str(out)]) == 0
    tables = tmp_path / "tables"
    aggregate = ["aggregate", "--reference", "recording-walk", "--out-dir", str(tables)]
    assert main([*aggregate, str(out)]) == 0
    final = pd.read_csv(tables / "final_loss.csv").iloc[0]
    assert (final["n_seeds"], final["failed_runs"]) == (2, 1)
    assert final["failed_evaluations"] == 2 + BUDGET
    ert = pd.read_csv(tables / "ert.csv")
    assert (ert["runs"] == 3).all()  # the failed run is an unsuccessful run in the ERT
