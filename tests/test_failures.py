"""Tests of failed evaluations and failed repetitions in the runner and ``casbo-bench run``:
the penalty rule, what the optimizer is told, the trace columns, the stop policy, and that a
failed seed never costs the job its other seeds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from casbo_bench.cli import main
from casbo_bench.errors import UserFacingError
from casbo_bench.names import DEFAULT_FAILURE_PENALTY, FAILURE_POLICIES
from casbo_bench.optimizers.base import SearchSpace
from casbo_bench.problems.base import ProblemError
from casbo_bench.runner import (
    EvaluationFailedError,
    Job,
    JobError,
    JobFailedError,
    PerStepScope,
    RepetitionSeeds,
    evaluate,
    make_scope,
    measure_fresh,
    optimize,
    penalized,
    run_job,
)
from casbo_bench.schemas.trace import validate_trace
from casbo_bench.traces import read_provenance, read_trace

from .failing import (
    EVERY,
    FailingQuadratic,
    Fault,
    RecordingLatentWalk,
    RecordingWalk,
    failing_job,
    register,
)

ROOT = Path(__file__).resolve().parents[1]
NAN = np.nan
STOP_FIX = "set on_failure: penalty (--on-failure penalty) to record it and go on"


_job = failing_job


def _run(
    faults: list[Fault], budget: int = 10, n_steps: int = 2, **options: Any
) -> tuple[Any, FailingQuadratic, RecordingWalk]:
    """``optimize`` of a RecordingWalk (batches of 4) on a failing quadratic, d = 3."""
    problem = FailingQuadratic(3, n_steps, seed=1, faults=faults)
    optimizer = RecordingWalk(SearchSpace(n_steps, 3), seed=0)
    trace = optimize(problem, optimizer, PerStepScope(n_steps, 3), budget, **options)
    return trace, problem, optimizer


# --- the penalty rule ----------------------------------------------------------------------


def test_a_failed_rollout_is_told_the_worst_step_losses_of_its_batch() -> None:
    steps = np.array([[1.0, 2.0], [NAN, 0.0], [3.0, 4.0], [0.0, 9.0]])
    told, worst = penalized(steps, np.array([False, True, False, False]), None, 1e6)
    np.testing.assert_array_equal(told, [[1.0, 2.0], [3.0, 9.0], [3.0, 4.0], [0.0, 9.0]])
    np.testing.assert_array_equal(worst, [3.0, 9.0])


def test_in_no_block_does_a_failed_rollout_look_better_than_a_success() -> None:
    """The reviewer's case: the worst rollout in total is the best in block 1."""
    steps = np.array([[0.1, 5.0], [3.0, 1.0], [NAN, NAN]])
    told, _ = penalized(steps, np.array([False, False, True]), None, 1e6)
    assert (told[2] >= told[:2]).all()
    assert told[2].sum() >= told[:2].sum(axis=1).max()


def test_the_worst_step_losses_of_earlier_batches_stay_until_worse_ones_succeed() -> None:
    earlier = np.array([0.0, 9.0])
    better = np.array([[NAN, 1.0], [1.0, 1.0]])
    told, worst = penalized(better, np.array([True, False]), earlier, 1e6)
    np.testing.assert_array_equal(told[0], [1.0, 9.0])
    np.testing.assert_array_equal(worst, [1.0, 9.0])
    worse = np.array([[5.0, 5.0], [np.inf, 0.0]])
    told, worst = penalized(worse, np.array([False, True]), worst, 1e6)
    np.testing.assert_array_equal(told[1], [5.0, 9.0])
    np.testing.assert_array_equal(worst, [5.0, 9.0])


def test_for_one_step_the_penalty_is_the_worst_finite_loss() -> None:
    steps = np.array([[1.0], [NAN], [3.0], [2.0]])
    told, worst = penalized(steps, np.array([False, True, False, False]), None, 1e6)
    np.testing.assert_array_equal(told[:, 0], [1.0, 3.0, 3.0, 2.0])
    np.testing.assert_array_equal(worst, [3.0])


def test_before_any_success_the_fallback_is_spread_over_the_steps() -> None:
    told, worst = penalized(np.full((2, 4), NAN), np.array([True, True]), None, 10.0)
    np.testing.assert_array_equal(told, np.full((2, 4), 2.5))
    assert worst is None


# --- evaluating a batch ----------------------------------------------------------------------


def test_non_finite_losses_are_failed_evaluations_named_by_their_value() -> None:
    faults = [Fault("nan", {1}), Fault("inf", {2}), Fault("-inf", {3}, step=0)]
    problem = FailingQuadratic(3, 2, faults=faults)
    noise = np.random.default_rng(0).standard_normal((4, 2, 3))
    evaluations = evaluate(problem, noise)
    assert evaluations.errors == ("loss is nan", "loss is inf", "loss is -inf", "")
    np.testing.assert_array_equal(evaluations.failed, [True, True, True, False])
    assert np.isnan(evaluations.losses[:3]).all()
    assert evaluations.losses[3] == problem.clean(noise)[3].sum()


def test_an_overflowing_rollout_loss_is_a_failed_evaluation() -> None:
    class Huge(FailingQuadratic):
        def clean(self, noise: np.ndarray) -> np.ndarray:
            return np.full(noise.shape[:2], 1e308)

    evaluations = evaluate(Huge(3, 2), np.zeros((1, 2, 3)))
    assert evaluations.errors == ("loss is inf",)


def test_a_raising_batch_is_evaluated_again_one_rollout_at_a_time() -> None:
    problem = FailingQuadratic(3, 2, faults=[Fault("ValueError", {2, 4})], details=True)
    noise = np.random.default_rng(0).standard_normal((4, 2, 3))
    evaluations = evaluate(problem, noise)
    assert problem.calls == [[1, 2, 3, 4], [1], [2], [3], [4]]
    assert evaluations.errors == (
        "",
        "ValueError: black box broke on rollout 2",
        "",
        "ValueError: black box broke on rollout 4",
    )
    clean = problem.clean(noise)
    np.testing.assert_array_equal(evaluations.step_losses[[0, 2]], clean[[0, 2]])
    assert np.isnan(evaluations.step_losses[[1, 3]]).all()
    assert evaluations.details is not None
    assert evaluations.details["number"].tolist() == [1, None, 3, None]


def test_a_batch_whose_every_rollout_raises_knows_no_details() -> None:
    problem = FailingQuadratic(3, 2, faults=[Fault("RuntimeError")], details=True)
    evaluations = evaluate(problem, np.zeros((2, 2, 3)) + np.arange(2)[:, None, None])
    assert evaluations.details is None
    assert evaluations.failed.all()


@pytest.mark.parametrize(
    ("kind", "error"),
    [("MemoryError", MemoryError), ("KeyboardInterrupt", KeyboardInterrupt)],
)
def test_memory_errors_and_interrupts_are_no_failed_evaluations(
    kind: str, error: type[BaseException]
) -> None:
    problem = FailingQuadratic(3, 2, faults=[Fault(kind, {2})])
    with pytest.raises(error):
        evaluate(problem, np.random.default_rng(0).standard_normal((3, 2, 3)))


def test_a_broken_contract_is_no_failed_evaluation() -> None:
    problem = FailingQuadratic(3, 2)
    with pytest.raises(ProblemError, match="takes noise of shape"):
        evaluate(problem, np.zeros((2, 2, 4)))

    class WrongShape(FailingQuadratic):
        def clean(self, noise: np.ndarray) -> np.ndarray:
            return super().clean(noise)[:, :1]

    with pytest.raises(ProblemError, match="step losses of shape"):
        evaluate(WrongShape(3, 2), np.zeros((2, 2, 3)))

    class UserMistake(FailingQuadratic):
        def clean(self, noise: np.ndarray) -> np.ndarray:
            raise UserFacingError("no model folder; give --models-dir")

    with pytest.raises(UserFacingError, match="no model folder"):
        evaluate(UserMistake(3, 2), np.zeros((2, 2, 3)))


# --- what the optimizer is told, and the trace -----------------------------------------------


def test_failed_evaluations_are_recorded_and_told_the_worst_loss_so_far() -> None:
    trace, problem, optimizer = _run([Fault("nan", {2, 7})])
    candidates, told = optimizer.history()
    clean = problem.clean(candidates)
    # Batch 1 (rollouts 1-4): rollout 2 is told the worst step losses of rollouts 1, 3, 4.
    np.testing.assert_array_equal(told[1], clean[[0, 2, 3]].max(axis=0))
    # Batch 2 (5-8): rollout 7 is told the worst step losses of the successes of 1-8.
    succeeded = [0, 2, 3, 4, 5, 7]
    np.testing.assert_array_equal(told[6], clean[succeeded].max(axis=0))
    others = [i for i in range(10) if i not in (1, 6)]
    np.testing.assert_array_equal(told[others], clean[others])
    assert np.isfinite(told).all()
    assert trace["failed"].tolist() == [i in (1, 6) for i in range(10)]
    assert trace["error"].tolist() == ["loss is nan" if i in (1, 6) else "" for i in range(10)]
    assert np.isnan(trace["loss"][[1, 6]]).all()
    np.testing.assert_array_equal(trace["loss"][others], clean[others].sum(axis=1))
    # Failed evaluations count against the budget.
    assert len(trace) == 10 and optimizer.n_evaluations == 10
    assert trace["iteration"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    expected = np.minimum.accumulate(np.where(trace["failed"], np.inf, trace["loss"]))
    np.testing.assert_array_equal(trace["best_so_far"], expected)


def test_before_any_success_the_failure_penalty_is_told() -> None:
    trace, problem, optimizer = _run([Fault("nan", {1, 2, 3, 4, 6})], failure_penalty=8.0)
    candidates, told = optimizer.history()
    np.testing.assert_array_equal(told[:4], np.full((4, 2), 4.0))
    clean = problem.clean(candidates)
    succeeded = [4, 6, 7]
    np.testing.assert_array_equal(told[5], clean[succeeded][np.argmax(clean[succeeded].sum(1))])
    assert np.isposinf(trace["best_so_far"][:4]).all()
    assert trace["best_so_far"][4] == trace["loss"][4]


def test_a_latent_method_is_told_the_worst_rollout_loss() -> None:
    problem = FailingQuadratic(3, 3, seed=1, faults=[Fault("inf", {3}, step=1)])
    scope = make_scope("latent", n_steps=3, dim=3, crn_seed=5)
    optimizer = RecordingLatentWalk(scope.space, seed=0)
    trace = optimize(problem, optimizer, scope, 4)
    candidates, told = optimizer.history()
    assert told.shape == (4, 1)
    losses = problem.clean(scope.noise(candidates)).sum(axis=1)
    assert told[2, 0] == losses[[0, 1, 3]].max()
    assert trace["error"].tolist() == ["", "", "loss is inf", ""]


def test_a_raising_rollout_costs_only_itself() -> None:
    trace, problem, optimizer = _run([Fault("ZeroDivisionError", {3})], budget=4)
    assert trace["failed"].tolist() == [False, False, True, False]
    assert trace["error"][2] == "ZeroDivisionError: black box broke on rollout 3"
    candidates, told = optimizer.history()
    clean = problem.clean(candidates)
    np.testing.assert_array_equal(told[2], clean[[0, 1, 3]].max(axis=0))


def test_minus_infinity_never_becomes_the_best_so_far() -> None:
    trace, _, _ = _run([Fault("-inf", {1})], budget=4)
    assert np.isposinf(trace["best_so_far"][0])
    assert np.isfinite(trace["best_so_far"][1:]).all()


def test_failed_fresh_rollouts_are_left_out_of_the_mean_and_counted() -> None:
    problem = FailingQuadratic(3, 2, seed=1, faults=[Fault("nan", {2, 5})])
    optimizer = RecordingWalk(SearchSpace(2, 3), seed=0)
    measure = measure_fresh(problem, optimizer, PerStepScope(2, 3), 6, np.random.default_rng(3))
    noise = np.random.default_rng(3).standard_normal((6, 2, 3))
    losses = problem.clean(noise).sum(axis=1)
    assert measure.failed == 2
    assert measure.loss == pytest.approx(losses[[0, 2, 3, 5]].mean(), rel=1e-15)
    every = FailingQuadratic(3, 2, faults=[Fault("ValueError")])
    measure = measure_fresh(every, optimizer, PerStepScope(2, 3), 3, np.random.default_rng(3))
    assert np.isnan(measure.loss) and measure.failed == 3


# --- the stop policy -------------------------------------------------------------------------


def test_stop_ends_the_job_at_the_first_failure_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(monkeypatch, [Fault("nan", {7, 9})])
    with pytest.raises(EvaluationFailedError) as raised:
        run_job(_job(seeds=(4,), on_failure="stop", label="walk"))
    assert str(raised.value) == (
        f"walk on failing-quadratic (d=3, K=2, final), seed 4: evaluation 7 failed (loss is "
        f"nan); {STOP_FIX}"
    )


def test_stop_covers_the_fresh_rollouts(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, [Fault("RuntimeError", {14})])
    with pytest.raises(EvaluationFailedError, match="fresh rollout 2 of 8 failed"):
        run_job(_job(on_failure="stop"))


# --- failed repetitions ----------------------------------------------------------------------


def _breaking_seed(job: Job, seed: int) -> int:
    return RepetitionSeeds.derive(job, seed).optimizer


def test_a_failed_seed_keeps_its_rows_and_the_job_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    register(monkeypatch)
    breaking = _breaking_seed(_job(), 1)
    out = tmp_path / "trace.parquet"
    arguments = ["run", "--method", "recording-walk", "--problem", "failing-quadratic"]
    arguments += ["--dim", "3", "--steps", "2", "--seeds", "0", "1", "2", "--budget", "12"]
    arguments += ["--option", "breaks_at=2", "--option", f"breaks_for={breaking}"]
    with caplog.at_level(logging.WARNING, logger="casbo_bench.runner"):
        assert main([*arguments, "--out", str(out)]) == 0
    trace = read_trace(out)
    statuses = trace.groupby("seed")["status"].first().to_dict()
    assert statuses == {0: "complete", 1: "failed", 2: "complete"}
    assert trace.groupby("seed").size().to_dict() == {0: 12, 1: 8, 2: 12}
    assert trace.loc[trace["seed"] == 1, "fresh_sample_loss"].isna().all()
    assert not trace["failed"].any()
    record = read_provenance(out)["repetitions"]
    assert record["1"]["status"] == "failed"
    assert record["1"]["error"] == "RuntimeError: recording-walk broke"
    assert record["0"]["status"] == "complete" and record["0"]["error"] is None
    assert "seed 1: the repetition failed after 8 evaluation(s)" in caplog.text


@pytest.mark.parametrize("error", ["OptimizerError", "RuntimeError", "ZeroDivisionError"])
def test_any_optimizer_error_fails_the_seed_alone(
    monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    register(monkeypatch)
    records: dict[str, Any] = {}
    trace = run_job(_job(seeds=(0, 1), options={"breaks_at": 1, "breaks_with": error}), records)
    validate_trace(trace, "test")
    assert (trace["status"] == "failed").all()
    assert trace.groupby("seed").size().tolist() == [4, 4]
    assert records["0"]["error"] == f"{error}: recording-walk broke"


def test_a_seed_that_fails_before_its_first_evaluation_is_in_the_provenance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(monkeypatch, broken_seeds=[1])
    out = tmp_path / "trace.parquet"
    arguments = ["run", "--method", "recording-walk", "--problem", "failing-quadratic"]
    arguments += ["--dim", "3", "--seeds", "0", "1", "2", "--budget", "8", "--out", str(out)]
    assert main(arguments) == 0
    assert sorted(set(read_trace(out)["seed"])) == [0, 2]
    record = read_provenance(out)["repetitions"]["1"]
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: cannot build the instance of seed 1"
    assert record["settings"] is None
    assert "seed 1: the repetition failed after 0 evaluation(s)" in capsys.readouterr().err


def test_no_trace_when_every_seed_fails_before_its_first_evaluation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register(monkeypatch)
    out = tmp_path / "trace.parquet"
    arguments = ["run", "--method", "recording-walk", "--problem", "failing-quadratic"]
    arguments += ["--dim", "3", "--seeds", "0", "1", "--budget", "8", "--out", str(out)]
    assert main([*arguments, "--option", "breaks_at=-1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert lines == [
        "casbo-bench run: error: every seed of recording-walk on failing-quadratic (d=3, K=1, "
        "final) failed before its first evaluation (seed 0: RuntimeError: recording-walk "
        "broke); fix that error (the log names each seed's) and run the job again"
    ]
    assert not out.exists()
    with pytest.raises(JobFailedError):
        run_job(_job(options={"breaks_at": -1}))


def test_a_seed_whose_every_evaluation_fails_is_a_failed_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(monkeypatch, [Fault("nan", EVERY, seeds=[1])])
    records: dict[str, Any] = {}
    trace = run_job(_job(seeds=(0, 1)), records)
    failed = trace[trace["seed"] == 1]
    assert len(failed) == 12 and failed["failed"].all()
    assert (failed["status"] == "failed").all() and np.isposinf(failed["best_so_far"]).all()
    assert records["1"]["error"] == "none of its 12 evaluations succeeded (loss is nan)"
    assert records["1"]["failed_evaluations"] == 12
    assert records["0"]["failed_evaluations"] == 0
    # No fresh samples of a sampler tuned on nothing.
    assert failed["fresh_sample_loss"].isna().all()


# --- the job and its configuration -----------------------------------------------------------


def test_the_failure_policy_is_part_of_the_job() -> None:
    job = _job(on_failure="stop", failure_penalty=7)
    assert job.failure_penalty == 7.0 and isinstance(job.failure_penalty, float)
    arguments = job.arguments()
    assert arguments["on_failure"] == "stop" and arguments["failure_penalty"] == 7.0
    assert _job().arguments()["failure_penalty"] == DEFAULT_FAILURE_PENALTY
    with pytest.raises(JobError, match="failure_penalty must be a finite number; got inf"):
        _job(failure_penalty=float("inf"))
    with pytest.raises(JobError, match="failure_penalty must be a finite number; got True"):
        _job(failure_penalty=True)


def test_the_config_schema_states_the_same_policy_and_default() -> None:
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    properties = schema["properties"]
    assert tuple(properties["on_failure"]["enum"]) == FAILURE_POLICIES
    assert properties["on_failure"]["default"] == "penalty"
    assert float(properties["failure_penalty"]["default"]) == DEFAULT_FAILURE_PENALTY
