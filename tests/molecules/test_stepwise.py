"""Tests of the stepwise sampler (casbo_bench.molecules.diffusion.StepwiseChains) and the
molecule problem's stepwise interface: stepping one transition at a time is the rollout, and
every call and denoiser evaluation is counted once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casbo_bench.molecules.diffusion import DiffusionError
from casbo_bench.molecules.problem import MoleculeProblem
from casbo_bench.molecules.tasks import task_size
from casbo_bench.optimizers.steering import StepwiseProblem
from casbo_bench.problems import make_problem
from tests.molecules.structures import stepped_and_whole

N_ATOMS, SAMPLER_STEPS = 4, 3
DIM, STEPS = task_size(N_ATOMS, SAMPLER_STEPS)


@pytest.fixture(scope="module")
def problem() -> MoleculeProblem:
    loaded = make_problem("mol-qed", DIM, STEPS)
    assert isinstance(loaded, MoleculeProblem)
    return loaded


def _noise(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, STEPS, DIM))


def test_stepping_one_at_a_time_is_the_rollout(problem: MoleculeProblem) -> None:
    noise = _noise(0, 5)
    stepped, whole = stepped_and_whole(problem._chains, problem.sampler, noise)
    torch.testing.assert_close(stepped.positions, whole.positions, rtol=0, atol=1e-5)
    assert torch.equal(stepped.atom_types, whole.atom_types)
    # through the problem: the same step losses and details as the rollout
    rng = np.random.default_rng(7)
    handles = problem.start(5, rng)
    latent = np.random.default_rng(7).standard_normal((5, DIM))
    assert torch.allclose(handles.chains.z, problem._chains.start(latent).z)


def test_the_problem_path_scores_like_a_rollout(problem: MoleculeProblem) -> None:
    noise = _noise(1, 4)
    handles = problem.start(4, np.random.default_rng(0))
    # replace the drawn latent by the rollout's own
    handles = type(handles)(problem._chains.start(noise[:, 0]))
    for i in range(1, SAMPLER_STEPS + 1):
        handles = problem.step(handles, noise[:, i])
    losses, details = problem.finish(handles, noise[:, -1])
    expected_losses, expected = problem.rollout_details(noise)
    np.testing.assert_allclose(losses, expected_losses, atol=1e-6)
    assert list(details["smiles"]) == list(expected["smiles"])


def test_costs_are_counted_once(problem: MoleculeProblem) -> None:
    assert isinstance(problem, StepwiseProblem)
    before_calls, before_evals = problem.cost.calls, problem.cost.denoiser_evals
    handles = problem.start(3, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    handles = problem.step(handles, rng.standard_normal((3, DIM)))  # 3 evaluations at z_T
    handles, scores = problem.score_x0(handles)  # 3 calls, 3 evaluations at the new state
    assert scores.shape == (3,)
    handles = problem.select(handles, [2, 2, 0])  # copies predictions: nothing recomputed
    for _ in range(SAMPLER_STEPS - 1):
        handles = problem.step(handles, rng.standard_normal((3, DIM)))
    problem.finish(handles, rng.standard_normal((3, DIM)))
    calls = problem.cost.calls - before_calls
    evals = problem.cost.denoiser_evals - before_evals
    assert calls == 3 + 3
    # S + 1 per chain, as a rollout: x0_hat reused the prediction the next step needed
    assert evals == 3 * (SAMPLER_STEPS + 1)
    problem.rollout_details(_noise(2, 2))
    assert problem.cost.calls - before_calls == calls + 2
    assert (
        problem.cost.denoiser_evals - before_evals == evals + 2 * problem.forward_passes_per_rollout
    )


def test_select_with_repeats_evaluates_the_state_once(problem: MoleculeProblem) -> None:
    handles = problem.start(2, np.random.default_rng(0))
    before = problem.cost.denoiser_evals
    copies = problem.select(handles, [0, 0, 0, 1])
    assert problem.cost.denoiser_evals - before == 2
    stepped = problem.step(copies, np.zeros((4, DIM)))
    assert problem.cost.denoiser_evals - before == 2  # the copies' predictions are shared
    torch.testing.assert_close(stepped.chains.z[0], stepped.chains.z[1])


def test_out_of_order_calls_are_refused(problem: MoleculeProblem) -> None:
    handles = problem.start(1, np.random.default_rng(0))
    with pytest.raises(DiffusionError, match="finish takes chains at z_0"):
        problem.finish(handles, np.zeros((1, DIM)))
    for _ in range(SAMPLER_STEPS):
        handles = problem.step(handles, np.zeros((1, DIM)))
    with pytest.raises(DiffusionError, match="took all"):
        problem.step(handles, np.zeros((1, DIM)))
