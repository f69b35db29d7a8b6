"""Tests of the runner: the scope adapter, seeds, budget, measures, errors, trace files.

Most tests use two test-only classes with known answers (a separable quadratic problem
with a closed-form J(theta), and a small Gaussian search that records what it is told);
the last ones run every registered optimizer on a registered problem.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casbo_bench import optimizers, problems, provenance
from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    SearchSpace,
)
from casbo_bench.problems.base import Problem
from casbo_bench.runner import (
    EvaluationFailedError,
    Job,
    JobError,
    LatentScope,
    PerStepScope,
    RepetitionSeeds,
    accepted_options,
    fresh_sample_loss,
    make_scope,
    optimize,
    run_job,
    run_repetition,
)
from casbo_bench.schemas.trace import TRACE_COLUMNS, TraceValidationError
from casbo_bench.seeding import derive_seed
from casbo_bench.traces import (
    PROVENANCE_KEY,
    TraceFileError,
    read_provenance,
    read_trace,
    trace_fault,
    write_trace,
)

# --- test-only problem and optimizers ------------------------------------------------


class SeparableQuadratic(Problem):
    """Step j loss ``||xi_j - t_j||^2`` with seeded targets ``t`` (``K x d``).

    J(theta) = sum_j ||m_j - t_j||^2 + tr(C_j), exactly.
    """

    name = "toy-quadratic"

    def __init__(self, dim: int, n_steps: int, seed: int) -> None:
        self.dim, self.n_steps = dim, n_steps
        self.targets = np.random.default_rng(seed).normal(size=(n_steps, dim))
        self.optimal_loss = 0.0

    def rollout(self, noise: FloatArray) -> FloatArray:
        noise = self.check_noise(noise)
        return ((noise - self.targets) ** 2).sum(axis=2)

    @property
    def has_expected_loss(self) -> bool:
        return True

    def expected_loss(self, means: FloatArray, covariances: FloatArray) -> float:
        gap = ((means - self.targets) ** 2).sum()
        return float(gap + np.trace(covariances, axis1=1, axis2=2).sum())


class NoClosedForm(SeparableQuadratic):
    name = "toy-no-closed-form"

    @property
    def has_expected_loss(self) -> bool:
        return False


class NaNAfterTen(SeparableQuadratic):
    """Returns NaN from the eleventh rollout on."""

    name = "toy-nan"

    def __init__(self, dim: int, n_steps: int, seed: int) -> None:
        super().__init__(dim, n_steps, seed)
        self.calls = 0

    def rollout(self, noise: FloatArray) -> FloatArray:
        losses = super().rollout(noise)
        index = self.calls + np.arange(len(losses))
        self.calls += len(losses)
        losses[index >= 10] = np.nan
        return losses


TOY_PROBLEMS: dict[str, type[SeparableQuadratic]] = {
    cls.name: cls for cls in (SeparableQuadratic, NoClosedForm, NaNAfterTen)
}


class GaussianWalk(Optimizer):
    """Draws ``N(mean, I)`` on every block; each complete batch moves the mean by -0.1.

    Records what it was told, and counts one safeguard event per update.
    """

    name = "toy-walk"
    scope = "per_step"
    instances: ClassVar[list[GaussianWalk]] = []

    def __init__(self, space: SearchSpace, seed: int, *, batch_size: int = 4) -> None:
        super().__init__(space, seed)
        self.batch_size = batch_size
        self.mean = np.zeros((space.n_blocks, space.dim))
        self._rng = np.random.default_rng(self.seed)
        self.told: list[tuple[FloatArray, FloatArray]] = []
        self.updates = 0
        type(self).instances.append(self)

    def _ask(self) -> FloatArray:
        shape = (self.batch_size, self.space.n_blocks, self.space.dim)
        return self.mean + self._rng.standard_normal(shape)

    def tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        self.told.append((np.array(candidates), np.array(losses)))
        super().tell(candidates, losses)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        self.mean = self.mean - 0.1
        self.updates += 1
        self.safeguard_events += 1

    def gaussian_law(self) -> GaussianLaw:
        b, d = self.space.n_blocks, self.space.dim
        return GaussianLaw(self.mean.copy(), np.broadcast_to(np.eye(d), (b, d, d)).copy())

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        return self.mean + rng.standard_normal((n, self.space.n_blocks, self.space.dim))


class LatentWalk(GaussianWalk):
    name = "toy-latent-walk"
    scope = "latent"
    instances: ClassVar[list[GaussianWalk]] = []


class LawlessWalk(GaussianWalk):
    name = "toy-lawless"
    instances: ClassVar[list[GaussianWalk]] = []

    def gaussian_law(self) -> None:  # type: ignore[override]
        return None


class DeviceWalk(GaussianWalk):
    """Takes a ``device`` option (forwarding the others), like the torch-based methods."""

    name = "toy-device"
    instances: ClassVar[list[GaussianWalk]] = []

    def __init__(self, space: SearchSpace, seed: int, *, device: str = "auto", **rest: Any) -> None:
        super().__init__(space, seed, **rest)
        self.device = device


TOY_OPTIMIZERS: dict[str, type[GaussianWalk]] = {
    cls.name: cls for cls in (GaussianWalk, LatentWalk, LawlessWalk, DeviceWalk)
}


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test-only problems and optimizers next to the real ones."""
    real_problem, real_optimizer = problems.make_problem, optimizers.get_optimizer

    def make_problem(
        name: str, dim: int, n_steps: int = 1, scoring: str = "final", seed: int = 0, **options: Any
    ) -> Problem:
        if name in TOY_PROBLEMS:
            return TOY_PROBLEMS[name](dim, n_steps, seed)
        return real_problem(name, dim, n_steps, scoring, seed, **options)

    def get_optimizer(name: str) -> type[Optimizer]:
        return TOY_OPTIMIZERS[name] if name in TOY_OPTIMIZERS else real_optimizer(name)

    monkeypatch.setattr(problems, "make_problem", make_problem)
    monkeypatch.setattr(optimizers, "get_optimizer", get_optimizer)
    for cls in TOY_OPTIMIZERS.values():
        cls.instances.clear()


def _job(**changes: Any) -> Job:
    settings: dict[str, Any] = {
        "optimizer": "toy-walk",
        "problem": "toy-quadratic",
        "dim": 3,
        "n_steps": 2,
        "seeds": (0,),
        "budget": 10,
        "fresh_samples": 16,
    }
    return Job(**{**settings, **changes})


# --- the run loop and the scope adapter ----------------------------------------------


def test_per_step_budget_and_truncated_final_batch() -> None:
    problem = SeparableQuadratic(dim=3, n_steps=2, seed=1)
    optimizer = GaussianWalk(SearchSpace(2, 3), seed=0, batch_size=4)
    steps = optimize(problem, optimizer, PerStepScope(2, 3), budget=10)

    assert len(steps) == 10
    assert steps["evaluation"].tolist() == list(range(1, 11))
    assert steps["iteration"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    # The cut batch of 2 is recorded but not learned from.
    assert [len(candidates) for candidates, _ in optimizer.told] == [4, 4, 2]
    assert optimizer.updates == 2
    assert optimizer.n_evaluations == 10
    # Per-step scope: the candidates are the noises and the step losses are told back.
    candidates = np.concatenate([c for c, _ in optimizer.told])
    told = np.concatenate([losses for _, losses in optimizer.told])
    np.testing.assert_array_equal(told, problem.rollout(candidates))
    np.testing.assert_array_equal(steps["loss"], told.sum(axis=1))
    np.testing.assert_array_equal(steps["best_so_far"], np.minimum.accumulate(steps["loss"]))
    assert steps["best_so_far"].iloc[-1] == optimizer.best_loss
    # Cumulative safeguard count, read after each tell.
    assert steps["safeguard_events"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert (steps["wall_time"] >= 0).all()
    assert steps["wall_time"].is_monotonic_increasing


def test_latent_scope_fixes_the_later_noises() -> None:
    problem = SeparableQuadratic(dim=3, n_steps=4, seed=1)
    scope = make_scope("latent", n_steps=4, dim=3, crn_seed=99)
    assert isinstance(scope, LatentScope)
    assert scope.space == SearchSpace(1, 3)
    np.testing.assert_array_equal(
        scope.common_noise, np.random.default_rng(99).standard_normal((3, 3))
    )
    optimizer = LatentWalk(scope.space, seed=0, batch_size=4)
    steps = optimize(problem, optimizer, scope, budget=7)

    for candidates, losses in optimizer.told:
        noise = scope.noise(candidates)
        np.testing.assert_array_equal(noise[:, 0], candidates[:, 0])
        np.testing.assert_array_equal(
            noise[:, 1:], np.broadcast_to(scope.common_noise, (len(noise), 3, 3))
        )
        # The optimizer is told the rollout loss as an n x 1 array.
        assert losses.shape == (len(candidates), 1)
        np.testing.assert_allclose(losses[:, 0], problem.loss(noise), rtol=1e-15)
    assert len(steps) == 7


def test_expected_loss_is_that_of_the_law_that_proposed_the_batch() -> None:
    problem = SeparableQuadratic(dim=3, n_steps=2, seed=1)
    optimizer = GaussianWalk(SearchSpace(2, 3), seed=0, batch_size=4)
    steps = optimize(problem, optimizer, PerStepScope(2, 3), 10, record_expected_loss=True)
    covariances = np.broadcast_to(np.eye(3), (2, 3, 3))
    for iteration, shift in ((0, 0.0), (1, -0.1), (2, -0.2)):
        expected = problem.expected_loss(np.full((2, 3), shift), covariances)
        recorded = steps.loc[steps["iteration"] == iteration, "expected_loss"]
        np.testing.assert_allclose(recorded, expected, rtol=1e-14)


def test_expected_loss_in_latent_scope_has_point_masses_on_the_later_noises() -> None:
    problem = SeparableQuadratic(dim=3, n_steps=3, seed=1)
    scope = make_scope("latent", n_steps=3, dim=3, crn_seed=5)
    optimizer = LatentWalk(scope.space, seed=0, batch_size=4)
    steps = optimize(problem, optimizer, scope, 4, record_expected_loss=True)
    later = problem.targets[1:] - scope.common_noise
    expected = (problem.targets[0] ** 2).sum() + 3.0 + (later**2).sum()
    np.testing.assert_allclose(steps["expected_loss"], expected, rtol=1e-14)


def test_expected_loss_is_nan_unless_asked_for_and_available() -> None:
    space, scope = SearchSpace(2, 3), PerStepScope(2, 3)
    quadratic = SeparableQuadratic(dim=3, n_steps=2, seed=1)
    cases = [
        (quadratic, GaussianWalk(space, seed=0), False),
        (NoClosedForm(dim=3, n_steps=2, seed=1), GaussianWalk(space, seed=0), True),
        (quadratic, LawlessWalk(space, seed=0), True),
    ]
    for problem, optimizer, wanted in cases:
        steps = optimize(problem, optimizer, scope, 6, record_expected_loss=wanted)
        assert steps["expected_loss"].isna().all()


def test_fresh_samples_come_from_the_fresh_stream() -> None:
    problem = SeparableQuadratic(dim=3, n_steps=3, seed=1)
    per_step = GaussianWalk(SearchSpace(3, 3), seed=0)
    value = fresh_sample_loss(problem, per_step, PerStepScope(3, 3), 50, np.random.default_rng(7))
    noise = np.random.default_rng(7).standard_normal((50, 3, 3))
    assert value == pytest.approx(problem.loss(noise).mean(), rel=1e-15)

    scope = make_scope("latent", n_steps=3, dim=3, crn_seed=5)
    latent = LatentWalk(scope.space, seed=0)
    value = fresh_sample_loss(problem, latent, scope, 50, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    first = rng.standard_normal((50, 1, 3))
    noise = np.concatenate([first, rng.standard_normal((50, 2, 3))], axis=1)
    assert value == pytest.approx(problem.loss(noise).mean(), rel=1e-15)


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(JobError, match="per_step or latent"):
        make_scope("joint", n_steps=2, dim=3, crn_seed=0)


# --- seeds ---------------------------------------------------------------------------


def test_seed_streams_follow_the_architecture_table() -> None:
    job = _job(scoring="cumulative")
    seeds = RepetitionSeeds.derive(job, 3)
    axes = ("toy-quadratic", 3, 2, "cumulative", 3)
    assert seeds == RepetitionSeeds(
        instance=derive_seed("instance", *axes),
        crn=derive_seed("crn", *axes),
        optimizer=derive_seed("optimizer", "toy-walk", *axes),
        fresh=derive_seed("fresh", *axes),
    )
    other_method = RepetitionSeeds.derive(_job(scoring="cumulative", label="variant"), 3)
    assert other_method.instance == seeds.instance
    assert other_method.crn == seeds.crn
    assert other_method.fresh == seeds.fresh
    assert other_method.optimizer != seeds.optimizer
    assert RepetitionSeeds.derive(job, 4).instance != seeds.instance


@pytest.mark.usefixtures("toys")
def test_methods_meet_the_same_instance_and_common_noise() -> None:
    first = run_repetition(_job(optimizer="toy-latent-walk", n_steps=3), seed=2)
    second = run_repetition(_job(optimizer="toy-latent-walk", n_steps=3, label="other"), 2)
    # Different optimizer streams, so different candidates and losses ...
    assert not np.array_equal(first["loss"], second["loss"])
    walks = LatentWalk.instances
    assert walks[0].seed != walks[1].seed
    # ... on the same instance with the same fixed later noises.
    crn = np.random.default_rng(derive_seed("crn", "toy-quadratic", 3, 3, "final", 2))
    problem = SeparableQuadratic(3, 3, derive_seed("instance", "toy-quadratic", 3, 3, "final", 2))
    common = crn.standard_normal((2, 3))
    for walk, frame in zip(walks, (first, second), strict=True):
        candidates = np.concatenate([c for c, _ in walk.told])
        noise = np.concatenate([candidates, np.broadcast_to(common, (10, 2, 3))], axis=1)
        np.testing.assert_allclose(frame["loss"], problem.loss(noise), rtol=1e-15)


# --- jobs ------------------------------------------------------------------------------


@pytest.mark.usefixtures("toys")
def test_run_job_writes_the_trace_columns(caplog: pytest.LogCaptureFixture) -> None:
    job = _job(seeds=(0, 5), label="walk-a", record_expected_loss=True)
    with caplog.at_level(logging.INFO, logger="casbo_bench.runner"):
        trace = run_job(job)
    assert list(trace.columns) == list(TRACE_COLUMNS)
    assert trace.dtypes.astype(str).tolist() == [
        "str" if kind == "str" else kind for kind in TRACE_COLUMNS.values()
    ]
    assert len(trace) == 20
    assert set(trace["method"]) == {"walk-a"}
    assert set(trace["optimizer"]) == {"toy-walk"}
    assert trace.groupby("seed")["fresh_sample_loss"].nunique().eq(1).all()
    assert trace["expected_loss"].notna().all()
    seed_lines = [r.getMessage() for r in caplog.records if "best-so-far" in r.getMessage()]
    assert len(seed_lines) == 2
    assert "walk-a on toy-quadratic (d=3, K=2, final), seed 5" in seed_lines[1]


@pytest.mark.usefixtures("toys")
def test_same_seed_same_trace() -> None:
    first = run_job(_job(seeds=(0, 1), record_expected_loss=True))
    second = run_job(_job(seeds=(0, 1), record_expected_loss=True))
    pd.testing.assert_frame_equal(first.drop(columns="wall_time"), second.drop(columns="wall_time"))


@pytest.mark.usefixtures("toys")
def test_device_goes_only_to_optimizers_that_take_it() -> None:
    run_job(_job(optimizer="toy-device", device="cuda", budget=4))
    assert DeviceWalk.instances[0].device == "cuda"
    assert accepted_options(DeviceWalk) == ["device", "batch_size"]
    # GaussianWalk takes no device: passing one would be a TypeError.
    run_job(_job(optimizer="toy-walk", device="cuda", budget=4))


@pytest.mark.usefixtures("toys")
def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(OptimizerError, match=r"no option\(s\) \['bach_size'\]; .* batch_size"):
        run_job(_job(options={"bach_size": 3}))


@pytest.mark.usefixtures("toys")
def test_options_reach_the_optimizer() -> None:
    trace = run_job(_job(options={"batch_size": 3}, budget=7))
    assert trace["iteration"].tolist() == [0, 0, 0, 1, 1, 1, 2]


@pytest.mark.usefixtures("toys")
def test_a_failed_evaluation_under_stop_names_the_job() -> None:
    with pytest.raises(EvaluationFailedError) as raised:
        run_job(_job(problem="toy-nan", seeds=(4,), budget=20, label="walk", on_failure="stop"))
    message = str(raised.value)
    for part in ("walk", "toy-nan", "d=3", "K=2", "final", "seed 4", "evaluation 11", "nan"):
        assert part in message
    assert message.endswith("set on_failure: penalty (--on-failure penalty) to record it and go on")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"dim": 0}, "dim must be an integer >= 1"),
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
        ({"budget": 0}, "budget must be an integer >= 1"),
        ({"fresh_samples": 0}, "fresh_samples must be an integer >= 1"),
        ({"seeds": ()}, "at least one repetition seed"),
        ({"seeds": (0, -1)}, "seeds must be integers >= 0"),
        ({"seeds": (1, 1)}, "seeds must be distinct"),
        ({"scoring": "best"}, "scoring must be one of final, cumulative"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
        ({"label": ""}, "label must be a non-empty string"),
        ({"options": {"device": "cuda"}}, "give the device"),
        ({"on_failure": "ignore"}, "on_failure must be one of penalty, stop; got 'ignore'"),
        ({"failure_penalty": float("nan")}, "failure_penalty must be a finite number"),
        ({"failure_penalty": "high"}, "failure_penalty must be a finite number"),
    ],
)
def test_impossible_jobs_are_refused(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(JobError, match=expected):
        _job(**changes)


def test_job_arguments_are_plain_data() -> None:
    arguments = _job(options={"batch_size": 2}, label="x").arguments()
    assert arguments["method"] == "x"
    assert arguments["options"] == {"batch_size": 2}
    assert arguments["seeds"] == [0]


# --- trace files -------------------------------------------------------------------


WRITTEN = ["trace.parquet", "trace.parquet.sha256"]
"""What write_trace leaves in an empty folder: the trace and its sha256 sidecar."""


@pytest.fixture
def trace(toys: None) -> pd.DataFrame:
    return run_job(_job(seeds=(0, 1)))


def test_write_trace_round_trip_with_provenance(trace: pd.DataFrame, tmp_path: Path) -> None:
    record = provenance.collect("cafe", _job().arguments())
    path = write_trace(trace, tmp_path / "trace.parquet", record)
    pd.testing.assert_frame_equal(read_trace(path), trace)
    assert read_provenance(path) == record
    assert sorted(os.listdir(tmp_path)) == WRITTEN
    assert trace_fault(path) is None


def test_invalid_trace_is_not_written(trace: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "trace.parquet"
    write_trace(trace, path, {"run": 1})
    before = path.read_bytes()
    broken = trace.assign(best_so_far=trace["loss"])
    with pytest.raises(TraceValidationError, match=str(path)):
        write_trace(broken, path, {"run": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == WRITTEN
    assert trace_fault(path) is None


def test_interrupted_write_leaves_no_partial_file(
    trace: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trace.parquet"
    write_trace(trace, path, {"run": 1})
    before = path.read_bytes()

    def interrupted(table: pa.Table, sink: Any, **_: Any) -> None:
        sink.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_trace(trace, path, {"run": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == WRITTEN
    assert trace_fault(path) is None
    with pytest.raises(KeyboardInterrupt):
        write_trace(trace, tmp_path / "new.parquet", {"run": 3})
    assert sorted(os.listdir(tmp_path)) == WRITTEN


def test_unwritable_folder_raises_os_error(trace: pd.DataFrame, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        write_trace(trace, blocker / "trace.parquet", {})


def test_reading_files_that_are_not_traces(trace: pd.DataFrame, tmp_path: Path) -> None:
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.Table.from_pandas(trace, preserve_index=False), bare)
    with pytest.raises(TraceFileError, match=f"{bare} has no {PROVENANCE_KEY}"):
        read_provenance(bare)
    text = tmp_path / "notes.parquet"
    text.write_text("hello")
    with pytest.raises(TraceFileError, match="is not a readable Parquet file"):
        read_trace(text)
    with pytest.raises(TraceFileError, match="does not exist; run the job"):
        read_provenance(tmp_path / "missing.parquet")


# --- every registered optimizer on a registered problem ------------------------------

REGISTERED = optimizers.ask_tell_optimizers()  # steering methods: tests below
SLOW_OPTIMIZERS = {"turbo"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_OPTIMIZERS else [])
        for name in REGISTERED
    ],
)
def test_registered_optimizer_is_reproducible_and_writes_a_valid_file(
    name: str, tmp_path: Path
) -> None:
    budget = 10 if name in SLOW_OPTIMIZERS else 24
    job = Job(
        optimizer=name,
        problem="sphere",
        dim=2,
        n_steps=2,
        scoring="cumulative",
        seeds=(0,),
        budget=budget,
        fresh_samples=8,
        record_expected_loss=True,
    )
    first, second = run_job(job), run_job(job)
    pd.testing.assert_frame_equal(first.drop(columns="wall_time"), second.drop(columns="wall_time"))
    assert len(first) == budget
    path = write_trace(
        first, tmp_path / f"{name}.parquet", provenance.collect(None, job.arguments())
    )
    read_trace(path)
    assert read_provenance(path)["arguments"]["optimizer"] == name


# --- steering methods and the two cost axes (docs/method.md section 7b) -----------------------


def _molecule_job(method: str, **settings: Any) -> Job:
    from casbo_bench.molecules.tasks import task_size

    dim, steps = task_size(4, 3)
    base: dict[str, Any] = dict(
        optimizer=method, problem="mol-qed", dim=dim, n_steps=steps, seeds=(0,), fresh_samples=2
    )
    return Job(**{**base, **settings})


def test_a_steering_run_spends_both_budgets_and_records_its_costs() -> None:
    from casbo_bench.schemas.trace import validate_trace

    options = {"particles": 3, "interval": 1, "start_step": 1}
    job = _molecule_job("smc", budget=30, denoiser_budget=50, options=options)
    trace = run_job(job)
    validate_trace(trace, "smc")
    # S = 3: x0_hat scored after transitions 1 and 2, and the finished sample: 3 calls each;
    # S + 1 = 4 denoiser evaluations each; sweeps of 3 until 30 calls and 50 evaluations
    assert trace["calls"].iloc[-1] >= 30 and trace["denoiser_evals"].iloc[-1] >= 50
    sweeps = trace.groupby("iteration")
    assert (sweeps.size() == 3).all()
    np.testing.assert_array_equal(sweeps["calls"].max(), 9 * np.arange(1, sweeps.ngroups + 1))
    np.testing.assert_array_equal(
        sweeps["denoiser_evals"].max(), 12 * np.arange(1, sweeps.ngroups + 1)
    )
    assert trace["budget"].iloc[0] == len(trace)  # a complete run: every completed sample
    assert trace["fresh_sample_loss"].notna().all()
    again = run_job(job)
    pd.testing.assert_frame_equal(trace.drop(columns="wall_time"), again.drop(columns="wall_time"))


def test_an_ask_tell_molecule_run_spends_both_budgets() -> None:
    # S + 1 = 4 evaluations per rollout: 50 evaluations need 13 rollouts > 10 calls
    trace = run_job(_molecule_job("random", budget=10, denoiser_budget=50))
    assert len(trace) == 13 and trace["budget"].iloc[0] == 13
    np.testing.assert_array_equal(trace["calls"], trace["evaluation"])
    np.testing.assert_array_equal(trace["denoiser_evals"], 4 * trace["evaluation"])
    plain = run_job(_molecule_job("random", budget=10))
    assert len(plain) == 10


def test_a_steering_method_on_a_problem_without_a_stepwise_sampler_is_refused() -> None:
    job = Job(optimizer="svdd", problem="sphere", dim=2, seeds=(0,), budget=4)
    with pytest.raises(JobError, match="no stepwise sampler"):
        run_job(job)


def test_steering_and_ask_tell_registries_do_not_mix() -> None:
    with pytest.raises(OptimizerError, match="steering method"):
        optimizers.get_optimizer("smc")
    with pytest.raises(OptimizerError, match="no steering method"):
        optimizers.get_steering("casbo")
    assert set(optimizers.steering_methods()) == {"smc", "svdd"}
