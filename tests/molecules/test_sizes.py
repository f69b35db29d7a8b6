"""Tests of drawn molecule sizes (casbo_bench.molecules.diffusion.DrawnSizeSampler and the
``-qm9size`` problems): each rollout's number of heavy atoms is the atom-count histogram's
quantile of one coordinate of its own initial latent that the sampler otherwise discards, so
sizes follow the histogram, the rollout is a pure function of its noise, the padded slots'
noise changes nothing, and the stepwise interface gives the rollout's molecules."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from casbo_bench.molecules.atoms import MAX_ATOMS, N_FEATURES
from casbo_bench.molecules.diffusion import (
    AtomCountQuantile,
    DiffusionError,
    DrawnSizeSampler,
    FixedSizeSampler,
    StepwiseChains,
    project_noise,
    size_coordinate,
)
from casbo_bench.molecules.problem import MoleculeProblem
from casbo_bench.molecules.tasks import DRAWN_SIZE, problem_name, task_size
from casbo_bench.problems import make_problem
from casbo_bench.runner import Job, run_job
from casbo_bench.schemas.trace import DETAIL_PREFIX

SAMPLER_STEPS = 3
DIM, STEPS = task_size(DRAWN_SIZE, SAMPLER_STEPS)
NAME = problem_name("mol-qed", DRAWN_SIZE)


@pytest.fixture(scope="module")
def problem() -> MoleculeProblem:
    loaded = make_problem(NAME, DIM, STEPS)
    assert isinstance(loaded, MoleculeProblem)
    assert isinstance(loaded.sampler, DrawnSizeSampler)
    assert loaded.name == NAME and (loaded.dim, loaded.n_steps) == (63, 5)
    return loaded


def _counts(problem: MoleculeProblem) -> AtomCountQuantile:
    sampler = problem.sampler
    assert isinstance(sampler, DrawnSizeSampler)
    return sampler.counts


def _noise(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, STEPS, DIM))


def _with_size(noise: np.ndarray, counts: AtomCountQuantile, sizes: list[int]) -> np.ndarray:
    """``noise`` with each row's latent shifted along (1, ..., 1) in the first position
    coordinate so that its size coordinate sits mid-way in size ``sizes[b]``'s quantile band."""
    shaped = noise.reshape(len(noise), STEPS, MAX_ATOMS, N_FEATURES).copy()
    cdf = np.concatenate([[0.0], np.cumsum(counts.probabilities.numpy())[1:]])
    for row, size in enumerate(sizes):
        target = stats.norm.ppf((cdf[size - 1] + cdf[size]) / 2)
        current = shaped[row, 0, :, 0].sum() / np.sqrt(MAX_ATOMS)
        shaped[row, 0, :, 0] += (target - current) / np.sqrt(MAX_ATOMS)
    return shaped.reshape(noise.shape)


def test_the_histogram_is_the_checkpoints(problem: MoleculeProblem) -> None:
    probabilities = _counts(problem).probabilities.numpy()
    assert probabilities[0] == 0 and probabilities.sum() == pytest.approx(1.0)
    # the generative split (docs/molecules.md): 2, 0, 3, 15, 53, 247, 1,206, 7,170, 43,637
    expected = np.array([0, 2, 0, 3, 15, 53, 247, 1206, 7170, 43637], dtype=float)
    np.testing.assert_allclose(probabilities, expected / expected.sum(), rtol=1e-12)


def _chi_square(sizes: np.ndarray, probabilities: np.ndarray) -> float:
    """p-value of sizes against probabilities: sizes of probability 0 left out (the caller
    checks none was drawn), those of expected count < 5 pooled into one bin."""
    observed = np.bincount(sizes, minlength=len(probabilities)).astype(float)
    expected = probabilities * len(sizes)
    possible = probabilities > 0
    observed, expected = observed[possible], expected[possible]
    small = expected < 5
    if not small.any():
        return float(stats.chisquare(observed, expected).pvalue)
    observed = np.append(observed[~small], observed[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    return float(stats.chisquare(observed, expected).pvalue)


def test_drawn_sizes_follow_the_histogram(problem: MoleculeProblem) -> None:
    counts = _counts(problem)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(200_000, MAX_ATOMS, N_FEATURES, generator=generator, dtype=torch.float64)
    u = size_coordinate(latents)
    assert abs(float(u.mean())) < 0.01 and abs(float(u.std()) - 1.0) < 0.01
    sizes = counts(u).numpy()
    probabilities = counts.probabilities.numpy()
    assert set(np.unique(sizes)) <= set(np.flatnonzero(probabilities))  # never n = 0 or 2
    assert _chi_square(sizes, probabilities) > 1e-3
    # the test has power: the same draws against a uniform size law fail it
    uniform = np.r_[0.0, np.full(MAX_ATOMS, 1.0 / MAX_ATOMS)]
    assert _chi_square(sizes, uniform) < 1e-12


def test_the_size_rule_is_the_quantile_and_monotone() -> None:
    counts = AtomCountQuantile(np.array([0, 1, 0, 2, 1]), max_atoms=4)
    edges = stats.norm.ppf([0.25, 0.75])  # F = 0, 1/4, 1/4, 3/4, 1
    u = torch.tensor([-5.0, edges[0] - 1e-9, edges[0] + 1e-9, edges[1] - 1e-9, edges[1] + 1e-9, 9])
    assert counts(u).tolist() == [1, 1, 3, 3, 4, 4]
    with pytest.raises(DiffusionError, match="larger than max_atoms=4"):
        AtomCountQuantile(np.array([0, 1, 0, 0, 0, 1]), max_atoms=4)
    with pytest.raises(DiffusionError, match="not all 0"):
        AtomCountQuantile(np.array([5, 0, 0]), max_atoms=4)


def test_the_rollout_is_reproducible_and_records_its_size(problem: MoleculeProblem) -> None:
    noise = _with_size(_noise(0, 6), _counts(problem), [4, 5, 6, 7, 8, 9])
    losses, details = problem.rollout_details(noise)
    again_losses, again = problem.rollout_details(noise)
    np.testing.assert_array_equal(losses, again_losses)
    assert list(details["xyz"]) == list(again["xyz"])
    assert details["n_atoms"].tolist() == [4, 5, 6, 7, 8, 9]
    assert [len(text.splitlines()) for text in details["xyz"]] == [4, 5, 6, 7, 8, 9]
    single_losses, single = problem.rollout_details(noise[1:2])
    np.testing.assert_allclose(single_losses, losses[1:2], atol=1e-6)
    assert single["n_atoms"].tolist() == [5]


def test_padded_slots_noise_changes_nothing(problem: MoleculeProblem) -> None:
    """Every injection's noise on the padded slots is masked; in the latent only the sum of
    the first coordinate over all slots (u, the size) is read, so a reordering keeps it."""
    sizes = [5, 6, 7, 8]
    noise = _with_size(_noise(1, 4), _counts(problem), sizes)
    changed = noise.reshape(4, STEPS, MAX_ATOMS, N_FEATURES).copy()
    rng = np.random.default_rng(2)
    for row, size in enumerate(sizes):
        padding = changed[row, :, size:]
        padding[1:] = rng.standard_normal(padding[1:].shape)  # every later injection
        padding[0, :, 1:] = rng.standard_normal(padding[0, :, 1:].shape)  # latent, all but x
        padding[0, :, 0] = padding[0, ::-1, 0]  # latent x: reordered, its sum unchanged
    before = problem.sampler(noise)
    after = problem.sampler(changed.reshape(noise.shape))
    assert before.num_atoms.tolist() == after.num_atoms.tolist() == sizes
    torch.testing.assert_close(after.positions, before.positions, rtol=0, atol=1e-5)
    assert torch.equal(after.atom_types, before.atom_types)
    assert (before.atom_types[before.mask.logical_not()] == -1).all()
    assert (before.positions[before.mask.logical_not()] == 0).all()
    # the size coordinate itself is live: moving it across a band edge changes the size
    moved = _with_size(noise, _counts(problem), [9, 9, 9, 9])
    assert problem.sampler(moved).num_atoms.tolist() == [9, 9, 9, 9]


def test_the_size_direction_is_invisible_to_the_sampler(problem: MoleculeProblem) -> None:
    """Shifting every slot's latent x by one constant moves u and nothing else: the projected
    latent is unchanged (in float64 to rounding; the model's float32 input to 1e-6; a whole
    rollout of S = 3 amplifies float32 rounding, so the molecules are not compared)."""
    sizes = [5, 7, 9]
    latent = _with_size(_noise(5, 3), _counts(problem), sizes)[:, 0].reshape(3, MAX_ATOMS, 7)
    shifted = latent.copy()
    shifted[:, :, 0] += 1e-3
    u = size_coordinate(torch.from_numpy(latent))
    torch.testing.assert_close(
        size_coordinate(torch.from_numpy(shifted)) - u,
        torch.full((3,), 3e-3, dtype=torch.float64),
        rtol=0,
        atol=1e-12,
    )
    sampler = problem.sampler
    mask = sampler.mask(torch.from_numpy(latent))
    assert torch.equal(mask, sampler.mask(torch.from_numpy(shifted)))
    assert mask.sum(dim=1).tolist() == sizes
    projected = project_noise(torch.from_numpy(latent), mask)
    torch.testing.assert_close(
        project_noise(torch.from_numpy(shifted), mask), projected, rtol=0, atol=1e-12
    )
    chains = problem._chains
    torch.testing.assert_close(chains.start(shifted).z, chains.start(latent).z, rtol=0, atol=1e-6)


def test_a_drawn_molecule_is_the_fixed_size_molecule_of_its_slots(
    problem: MoleculeProblem,
) -> None:
    """A molecule of drawn size n is the n-atom sampler's molecule on its first n slots' noise
    (in float64: a rollout of S = 3 amplifies float32 rounding of the padded batch)."""
    sizes = [6, 8]
    noise = _with_size(_noise(3, 2), _counts(problem), sizes)
    diffusion = copy.deepcopy(problem.sampler.diffusion).double()
    histogram = _counts(problem).probabilities.numpy()
    drawn = DrawnSizeSampler(diffusion, histogram, SAMPLER_STEPS)(noise)
    assert drawn.num_atoms.tolist() == sizes
    shaped = noise.reshape(2, STEPS, MAX_ATOMS, N_FEATURES)
    for row, size in enumerate(sizes):
        alone = FixedSizeSampler(diffusion, size, SAMPLER_STEPS)(shaped[row : row + 1, :, :size])
        torch.testing.assert_close(
            drawn.positions[row, :size], alone.positions[0], rtol=0, atol=1e-8
        )
        assert torch.equal(drawn.atom_types[row, :size], alone.atom_types[0])


def test_stepwise_chains_give_the_rollouts_molecules(problem: MoleculeProblem) -> None:
    """Start, select (with repeats), S steps and finish give the sampler's molecules, masks
    included (in float64: the batches differ, and S = 3 amplifies float32 rounding); the
    problem's path scores them like the rollout."""
    noise = _with_size(_noise(4, 5), _counts(problem), [9, 5, 8, 7, 9])
    diffusion = copy.deepcopy(problem.sampler.diffusion).double()
    sampler = DrawnSizeSampler(diffusion, _counts(problem).probabilities.numpy(), SAMPLER_STEPS)
    chains = StepwiseChains(sampler)
    batch = chains.start(noise[:, 0])
    assert batch.mask.sum(dim=1).tolist() == [9, 5, 8, 7, 9]
    batch = chains.select(batch, [1, 1, 0, 2, 3, 4])  # the masks travel with their chains
    order = [1, 1, 0, 2, 3, 4]
    for i in range(1, SAMPLER_STEPS + 1):
        batch = chains.step(batch, noise[order, i])
    _, x0_hat = chains.predicted_clean(batch)
    assert (x0_hat.atom_types[~x0_hat.mask] == -1).all()
    stepped = chains.finish(batch, noise[order, -1])
    whole = sampler(noise[order])
    assert torch.equal(stepped.mask, whole.mask)
    torch.testing.assert_close(stepped.positions, whole.positions, rtol=0, atol=1e-8)
    assert torch.equal(stepped.atom_types, whole.atom_types)
    # through the problem: scored and recorded like the rollout
    handles = type(problem.start(1, np.random.default_rng(0)))(problem._chains.start(noise[:, 0]))
    handles, scores = problem.score_x0(handles)
    assert scores.shape == (5,) and np.isfinite(scores).all()
    for i in range(1, SAMPLER_STEPS + 1):
        handles = problem.step(handles, noise[:, i])
    losses, details = problem.finish(handles, noise[:, -1])
    expected_losses, expected = problem.rollout_details(noise)
    np.testing.assert_allclose(losses, expected_losses, atol=1e-6)
    assert details["n_atoms"].tolist() == expected["n_atoms"].tolist() == [9, 5, 8, 7, 9]
    assert list(details["smiles"]) == list(expected["smiles"])


def test_a_drawn_size_run_through_the_runner() -> None:
    frames = [
        run_job(Job(method, NAME, DIM, (0,), 6, n_steps=STEPS, fresh_samples=2))
        for method in ("random", "smc")
    ]
    trace = pd.concat(frames, ignore_index=True)
    assert (trace["problem"] == NAME).all()
    sizes = trace[f"{DETAIL_PREFIX}n_atoms"]
    assert sizes.between(1, MAX_ATOMS).all() and sizes.dtype.kind == "i"
    counted = trace[f"{DETAIL_PREFIX}xyz"].map(lambda text: len(text.splitlines()))
    np.testing.assert_array_equal(counted, sizes)
