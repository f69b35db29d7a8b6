"""Tests of the molecule problem (casbo_bench.molecules.problem), its registration in
casbo_bench.problems, and a molecule run through the runner."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from casbo_bench.molecules.data import format_xyz, parse_xyz
from casbo_bench.molecules.diffusion import MoleculeSamples, SamplingSchedule
from casbo_bench.molecules.problem import (
    PREDICTOR_PENALTY_SIGMAS,
    SCORERS,
    XTB_PENALTY,
    MoleculeProblem,
    PredictorScorer,
)
from casbo_bench.molecules.rebuild import rebuild_molecule
from casbo_bench.molecules.scores import QED_PENALTY
from casbo_bench.molecules.tasks import MOLECULE_TASKS, sampler_size, task_size
from casbo_bench.problems import available_problems, make_problem
from casbo_bench.problems.base import ProblemError
from casbo_bench.runner import Job, run_job
from casbo_bench.schemas.trace import COST_COLUMNS, DETAIL_PREFIX, TRACE_COLUMNS, validate_trace
from casbo_bench.traces import read_trace, write_trace
from tests.molecules.structures import copy_checkpoint

# Small sizes keep each rollout to a few milliseconds: 4 heavy atoms, S = 3 sampler steps.
N_ATOMS, SAMPLER_STEPS = 4, 3
DIM, STEPS = task_size(N_ATOMS, SAMPLER_STEPS)
DETAIL_KEYS = {
    "score",
    "value",
    "valid",
    "valid_table",
    "stable",
    "fragments",
    "n_atoms",
    "smiles",
    "xyz",
    "checkpoint",
}


def test_every_task_is_registered_with_the_sizes_rule() -> None:
    assert set(MOLECULE_TASKS) <= set(available_problems())
    assert task_size() == (63, 22)
    assert sampler_size("mol-qed", 63, 22) == (9, 20)
    assert (DIM, STEPS) == (28, 5)


def test_every_task_kind_has_a_scorer() -> None:
    assert {task.kind for task in MOLECULE_TASKS.values()} <= set(SCORERS)


@pytest.mark.parametrize(
    ("name", "dim", "steps", "scoring", "message"),
    [
        ("mol-qed", 60, 22, "final", "dim = 7 n"),
        ("mol-qed", 70, 22, "final", "dim = 7 n"),
        ("mol-qed", 63, 2, "final", "S \\+ 2"),
        ("mol-qed", 63, 22, "cumulative", "scoring 'final'"),
    ],
)
def test_impossible_sizes_and_scorings_are_refused(
    name: str, dim: int, steps: int, scoring: str, message: str
) -> None:
    with pytest.raises(ProblemError, match=message):
        make_problem(name, dim, steps, scoring)


def test_a_missing_checkpoint_is_a_problem_error(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="cannot load the molecule sampler"):
        make_problem("mol-qed", DIM, STEPS, checkpoint=str(tmp_path))
    with pytest.raises(ProblemError, match=r"cannot load the molecule sampler.*train-edm"):
        make_problem("mol-qed", DIM, STEPS, models_dir=str(tmp_path))


def test_the_models_are_found_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProblemError, match=re.escape(str(tmp_path / "models" / "edm_qm9_heavy"))):
        make_problem("mol-qed", DIM, STEPS)


def test_a_missing_predictor_is_a_problem_error(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match=r"cannot load the property predictor.*train-predictor"):
        make_problem("mol-alpha", DIM, STEPS, predictor=str(tmp_path))


@pytest.fixture(scope="module")
def qed_problem() -> MoleculeProblem:
    problem = make_problem("mol-qed", DIM, STEPS)
    assert isinstance(problem, MoleculeProblem)
    return problem


def test_rollout_shapes_losses_and_details(qed_problem: MoleculeProblem) -> None:
    noise = np.random.default_rng(0).standard_normal((6, STEPS, DIM))
    losses, details = qed_problem.rollout_details(noise)
    assert losses.shape == (6, STEPS)
    assert np.isfinite(losses).all()
    assert (losses[:, :-1] == 0).all()  # final scoring: only the molecule is scored
    np.testing.assert_array_equal(losses[:, -1], -details["score"])
    assert set(details) == DETAIL_KEYS
    assert all(np.shape(values) == (6,) for values in details.values())
    assert ((details["score"] >= 0) & (details["score"] <= 1)).all()
    scored = details["valid"] & (details["fragments"] == 1)
    for valid, smiles in zip(details["valid"], details["smiles"], strict=True):
        assert (smiles is not None) == valid
    np.testing.assert_array_equal(details["score"][scored], details["value"][scored])
    assert (details["score"][~scored] == QED_PENALTY).all()
    assert np.isnan(details["value"][~scored]).all()
    assert (details["n_atoms"] == N_ATOMS).all()
    for text, valid in zip(details["xyz"], details["valid"], strict=True):
        positions, types = parse_xyz(text)
        assert positions.shape == (N_ATOMS, 3)
        assert rebuild_molecule(positions, types).ok == valid
    np.testing.assert_array_equal(qed_problem.rollout(noise), losses)


def test_rollouts_are_deterministic_and_row_independent(qed_problem: MoleculeProblem) -> None:
    noise = np.random.default_rng(1).standard_normal((5, STEPS, DIM))
    first = qed_problem.rollout(noise)
    np.testing.assert_array_equal(first, qed_problem.rollout(noise))
    np.testing.assert_allclose(qed_problem.rollout(noise[2:3]), first[2:3], atol=1e-6)
    with pytest.raises(ProblemError, match="shape"):
        qed_problem.rollout(noise[:, :, :-1])


class _FixedStructures:
    """A stand-in sampler that returns given structures whatever the noise."""

    def __init__(self, positions: np.ndarray, types: np.ndarray) -> None:
        self.positions, self.types = positions, types
        self.n_atoms = positions.shape[1]
        self.dim, self.n_injections = 7 * self.n_atoms, 3
        self.schedule = SamplingSchedule((1, 0))

    def __call__(self, noise: Any) -> MoleculeSamples:
        count = len(noise)
        return MoleculeSamples(
            positions=torch.from_numpy(self.positions[:count]),
            atom_types=torch.from_numpy(self.types[:count]),
            mask=torch.from_numpy(self.types[:count] >= 0),
        )


def _broken_structures() -> _FixedStructures:
    """Row 0 formaldehyde (valid); rows 1 and 3 clashes; row 2 non-finite coordinates; row 4
    two atoms 5 A apart (RDKit sanitizes "C.O", but it is two fragments, no molecule)."""
    positions = np.zeros((5, 2, 3))
    positions[0, 1, 0] = 1.21
    positions[1, 1, 0] = 0.2
    positions[2, 1, 0] = np.inf
    positions[3, 1, 0] = 0.5
    positions[4, 1, 0] = 5.0
    types = np.array([[0, 2], [0, 0], [0, 1], [2, 2], [0, 2]])
    return _FixedStructures(positions, types)


def _stated_penalty(problem: MoleculeProblem) -> float:
    if problem.task.kind == "qed":
        return QED_PENALTY
    if problem.task.kind == "xtb":
        return XTB_PENALTY
    assert isinstance(problem.scorer, PredictorScorer)
    sigma = problem.scorer.predictor.manifest["normalization"][problem.task.quantity]["std"]
    return -PREDICTOR_PENALTY_SIGMAS * float(sigma)


@pytest.mark.parametrize("task", ["mol-qed", "mol-alpha", "mol-xtb-dipole"])
def test_invalid_structures_get_the_stated_penalty_never_nan(task: str) -> None:
    loaded = make_problem(task, DIM, STEPS)
    assert isinstance(loaded, MoleculeProblem)
    sampler: Any = _broken_structures()
    problem = MoleculeProblem(MOLECULE_TASKS[task], sampler, "test", loaded.scorer)
    assert problem.penalty == pytest.approx(_stated_penalty(problem))
    losses, details = problem.rollout_details(np.zeros((5, 3, 14)))
    assert np.isfinite(losses).all()
    assert details["valid"].tolist() == [True, False, False, False, True]
    assert details["fragments"][4] == 2 and details["smiles"][4] == "C.O"
    assert (details["score"][1:] == problem.penalty).all()
    assert np.isnan(details["value"][1:]).all()
    assert details["score"][0] >= problem.penalty
    assert details["smiles"][0] == "C=O"


def test_predictor_task_scores_the_distance_to_its_target() -> None:
    problem = make_problem("mol-alpha", DIM, STEPS)
    assert isinstance(problem, MoleculeProblem)
    scorer = problem.scorer
    assert isinstance(scorer, PredictorScorer)
    percentiles = scorer.predictor.manifest["property_split_percentiles"]["alpha"]
    assert scorer.target == percentiles["p90"]
    noise = np.random.default_rng(2).standard_normal((4, STEPS, DIM))
    _, details = problem.rollout_details(noise)
    scored = details["valid"] & (details["fragments"] == 1)
    np.testing.assert_allclose(
        details["score"][scored],
        -np.minimum(np.abs(details["value"][scored] - scorer.target), scorer.cap),
    )
    assert (details["score"][~scored] == problem.penalty).all()
    assert (details["score"] >= problem.penalty).all()


def test_xyz_text_round_trips() -> None:
    positions = np.array([[0.0, 0.0, 0.0], [1.21, -0.5, 2.0], [9.0, 9.0, 9.0]])
    types = np.array([0, 2, -1])
    text = format_xyz(positions, types)
    back, kinds = parse_xyz(text)
    np.testing.assert_allclose(back, positions[:2], atol=1e-5)
    assert kinds.tolist() == [0, 2]
    with pytest.raises(ValueError, match="xyz line"):
        parse_xyz("H 0 0 0")


def test_a_molecule_run_through_the_runner(tmp_path: Path) -> None:
    frames = [
        run_job(
            Job(
                optimizer=method,
                problem="mol-qed",
                dim=DIM,
                seeds=(0,),
                budget=10,
                n_steps=STEPS,
                fresh_samples=2,
            )
        )
        for method in ("casbo", "casbo-latent")
    ]
    trace = pd.concat(frames, ignore_index=True)
    details = [column for column in trace.columns if column.startswith(DETAIL_PREFIX)]
    assert set(details) == {f"{DETAIL_PREFIX}{key}" for key in DETAIL_KEYS}
    assert list(trace.columns) == [*TRACE_COLUMNS, *COST_COLUMNS, *details]
    # one call and S + 1 denoiser evaluations per rollout
    np.testing.assert_array_equal(trace["calls"], trace["evaluation"])
    np.testing.assert_array_equal(
        trace["denoiser_evals"], (SAMPLER_STEPS + 1) * trace["evaluation"]
    )
    np.testing.assert_array_equal(trace["loss"], -trace[f"{DETAIL_PREFIX}score"])
    assert trace["fresh_sample_loss"].notna().all()
    path = write_trace(frames[0], tmp_path / "casbo.parquet", {"test": True})
    again = read_trace(path)
    pd.testing.assert_frame_equal(again, frames[0], check_dtype=False)
    with pytest.raises(ValueError, match="unexpected column"):
        validate_trace(frames[0].assign(smiles="C"), "test")


def test_a_job_reads_the_models_of_its_models_dir(tmp_path: Path) -> None:
    copy_checkpoint(tmp_path / "models" / "edm_qm9_heavy")
    job = Job("random", "mol-qed", DIM, (0,), 4, n_steps=STEPS, fresh_samples=1)
    moved = Job(**{**job.__dict__, "models_dir": str(tmp_path / "models")})
    assert moved.arguments()["models_dir"] == str(tmp_path / "models")
    pd.testing.assert_frame_equal(
        run_job(moved).drop(columns="wall_time"), run_job(job).drop(columns="wall_time")
    )
    with pytest.raises(ProblemError, match="cannot load the molecule sampler"):
        run_job(Job(**{**job.__dict__, "models_dir": str(tmp_path / "elsewhere")}))


def test_a_job_planned_for_another_checkpoint_is_refused() -> None:
    """The workflow gives each molecule run the sha256 of the model it planned for: a job
    whose models folder holds another checkpoint stops, naming both, before any rollout."""
    job = Job("random", "mol-qed", DIM, (0,), 4, n_steps=STEPS, fresh_samples=1)
    stored = str(run_job(job)[f"{DETAIL_PREFIX}checkpoint"].iloc[0])
    planned = Job(**{**job.__dict__, "checkpoint_sha256": stored})
    assert planned.arguments()["checkpoint_sha256"] == stored
    assert (run_job(planned)[f"{DETAIL_PREFIX}checkpoint"] == stored).all()
    with pytest.raises(ProblemError, match=f"has sampling.pt sha256 {stored}, not the 0000"):
        run_job(Job(**{**job.__dict__, "checkpoint_sha256": "0" * 64}))


def test_turbo_searches_the_latent_through_the_normal_map() -> None:
    # Through a +-5 box, TuRBO's Sobol design puts the latent at about 2.9 times the norm of
    # N(0, I) draws and every molecule falls apart (measured: 0 of 24 in one piece, against
    # 21 of 24 for best-of-N). Through Phi^{-1} its design is a draw from the same law.
    assert MoleculeProblem.initial_scale == 1.0
    dim, steps = task_size(9, 10)
    trace = run_job(
        Job(
            optimizer="turbo",
            problem="mol-qed",
            dim=dim,
            n_steps=steps,
            seeds=(0,),
            budget=16,
            fresh_samples=1,
        )
    )
    connected = trace[f"{DETAIL_PREFIX}valid"] & (trace[f"{DETAIL_PREFIX}fragments"] == 1)
    assert connected.mean() >= 0.5
    assert trace["best_so_far"].iloc[-1] < 0.0
