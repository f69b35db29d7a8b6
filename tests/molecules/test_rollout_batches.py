"""Tests that a molecule rollout is a function of its own noise only, whatever batch it is
sampled in (the denoiser's passes split a batch: casbo_bench.molecules.diffusion.PAIRWISE_BYTES),
and of the sampler precision option (``sampler_dtype``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casbo_bench.molecules import diffusion
from casbo_bench.molecules.diffusion import DiffusionError, FixedSizeSampler, StepwiseChains
from casbo_bench.molecules.problem import MoleculeProblem
from casbo_bench.molecules.tasks import task_size
from casbo_bench.problems import make_problem
from casbo_bench.problems.base import ProblemError
from tests.molecules.structures import stepped_and_whole

N_ATOMS, SAMPLER_STEPS = 9, 3
DIM, STEPS = task_size(N_ATOMS, SAMPLER_STEPS)
# The benchmark's sampler: at S = 3 many samples explode (atoms 100 A apart), and the chain
# then amplifies float32 rounding to 0.1 A, batch or no batch.
FULL_STEPS = task_size(N_ATOMS, 20)[1]


def _problem(dtype: str, n_steps: int = STEPS) -> MoleculeProblem:
    problem = make_problem("mol-qed", DIM, n_steps, sampler_dtype=dtype)
    assert isinstance(problem, MoleculeProblem)
    return problem


@pytest.fixture(scope="module")
def problem64() -> MoleculeProblem:
    return _problem("float64")


def _noise(seed: int, n: int, n_steps: int = STEPS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, n_steps, DIM))


# float32: MKL's sgemm rounds a row differently with the number of rows of the product
# (about 1e-7 per pass), which 21 passes carry to about 1e-5 A; float64 stays near 1e-15.
@pytest.mark.parametrize(("dtype", "atol"), [("float64", 1e-10), ("float32", 1e-4)])
def test_a_rollout_does_not_depend_on_its_batch(
    dtype: str, atol: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = _problem(dtype, FULL_STEPS).sampler
    # Passes of 3 molecules: a batch of 7 is split 3 + 3 + 1, so the rows meet other rows,
    # other pass sizes and other positions in a pass than alone or shuffled.
    monkeypatch.setattr(diffusion, "PAIRWISE_BYTES", 3 * 81 * 128 * sampler.dtype.itemsize)
    assert sampler.diffusion.molecules_per_pass(N_ATOMS) == 3
    noise = _noise(0, 7, FULL_STEPS)
    batch = sampler(noise)
    alone = [sampler(noise[i : i + 1]) for i in range(7)]
    order = np.array([4, 0, 6, 2, 5, 1, 3])
    shuffled = sampler(np.concatenate([noise[order], _noise(1, 2, FULL_STEPS)]))  # 2 more
    for i, molecule in enumerate(alone):
        torch.testing.assert_close(molecule.positions[0], batch.positions[i], rtol=0, atol=atol)
        assert torch.equal(molecule.atom_types[0], batch.atom_types[i])
    torch.testing.assert_close(shuffled.positions[:7], batch.positions[order], rtol=0, atol=atol)
    assert torch.equal(shuffled.atom_types[:7], batch.atom_types[order])


def test_float64_steps_match_the_float64_rollout(problem64: MoleculeProblem) -> None:
    noise = _noise(2, 5)
    chains = StepwiseChains(problem64.sampler)
    assert chains.start(noise[:, 0]).z.dtype == torch.float64
    stepped, whole = stepped_and_whole(chains, problem64.sampler, noise)
    torch.testing.assert_close(stepped.positions, whole.positions, rtol=0, atol=1e-10)
    assert torch.equal(stepped.atom_types, whole.atom_types)


def test_the_sampler_dtype_is_an_explicit_option(problem64: MoleculeProblem) -> None:
    default = make_problem("mol-qed", DIM, STEPS)
    assert isinstance(default, MoleculeProblem)
    assert default.sampler_dtype == "float32" and default.sampler.dtype == torch.float32
    assert problem64.sampler_dtype == "float64" and problem64.sampler.dtype == torch.float64
    # The same weights, converted; the loaded float32 model is left as it is.
    low, high = default.sampler.diffusion, problem64.sampler.diffusion
    assert low is not high and low.dtype == torch.float32
    for (name, a), (_, b) in zip(low.state_dict().items(), high.state_dict().items(), strict=True):
        assert torch.equal(a.double(), b.double()), name
    assert low.with_dtype(torch.float32) is low
    noise = _noise(3, 4)
    losses, details = problem64.rollout_details(noise)
    assert np.isfinite(losses).all() and len(details["smiles"]) == 4
    with pytest.raises(ProblemError, match="float32 or float64"):
        make_problem("mol-qed", DIM, STEPS, sampler_dtype="float16")
    with pytest.raises(DiffusionError, match="float32 or float64"):
        FixedSizeSampler(low, N_ATOMS, SAMPLER_STEPS, dtype=torch.float16)


def test_an_empty_batch_predicts_an_empty_noise(problem64: MoleculeProblem) -> None:
    """Zero chains (a selection that kept none) pass through like the plain denoiser."""
    diffusion_model = problem64.sampler.diffusion
    z = torch.zeros(0, N_ATOMS, 7, dtype=torch.float64)
    with torch.no_grad():
        eps = diffusion_model.predict_noise(z, torch.zeros(0, dtype=torch.float64), z[..., 0])
    assert eps.shape == (0, N_ATOMS, 7)
