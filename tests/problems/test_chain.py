"""Linear-Gaussian chains and the chain problem: rollout, moments, exact J, J* = 0."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from casbo_bench.problems.base import FloatArray, ProblemError
from casbo_bench.problems.chain import (
    ChainProblem,
    LinearGaussianChain,
    linear_beta_schedule,
    step_weights,
)
from casbo_bench.problems.functions import get_function
from casbo_bench.problems.instance import FunctionInstance
from tests.problems.registered import functions_with_closed_form, functions_without_closed_form


def _chain(d: int, k: int, seed: int = 0) -> LinearGaussianChain:
    return LinearGaussianChain.sample(d, k, np.random.default_rng(seed))


def _problem(name: str, d: int, k: int, scoring: str, seed: int = 0) -> ChainProblem:
    rng = np.random.default_rng(seed)
    instance = FunctionInstance.sample(get_function(name), d, rng)
    return ChainProblem(instance, LinearGaussianChain.sample(d, k, rng), scoring)


def _random_laws(k: int, d: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """``K x d`` means and ``K x d x d`` covariances ``L L^T`` of Cholesky-like factors L."""
    means = 0.5 * rng.standard_normal((k, d))
    factors = rng.standard_normal((k, d, d)) / np.sqrt(d) + 0.3 * np.eye(d)
    return means, factors @ factors.transpose(0, 2, 1)


def _sample_noise(
    means: FloatArray, covariances: FloatArray, n: int, rng: np.random.Generator
) -> FloatArray:
    factors = np.linalg.cholesky(covariances)
    z = rng.standard_normal((n, *means.shape))
    return means + np.einsum("kij,nkj->nki", factors, z)


def test_linear_beta_schedule() -> None:
    np.testing.assert_allclose(linear_beta_schedule(4, 0.05, 0.5), [1.0, 0.5, 0.275, 0.05])
    np.testing.assert_array_equal(linear_beta_schedule(2, 0.05, 0.5), [1.0, 0.05])
    np.testing.assert_array_equal(linear_beta_schedule(1, 0.05, 0.5), [1.0])
    for low, high in [(0.0, 0.5), (0.5, 0.2), (0.1, 1.0)]:
        with pytest.raises(ProblemError, match="0 < beta_min <= beta_max < 1"):
            linear_beta_schedule(3, low, high)


def test_coefficients_preserve_unit_variance() -> None:
    chain = _chain(3, 6)
    assert chain.scale[0] == 1.0
    np.testing.assert_allclose(chain.drift[1:] ** 2 + chain.scale[1:] ** 2, 1.0, rtol=1e-15)
    assert (np.diff(chain.scale[1:]) < 0).all()  # strong noise early, weak at the end


def test_one_step_is_the_identity_chain() -> None:
    noise = np.random.default_rng(0).standard_normal((7, 1, 4))
    np.testing.assert_array_equal(_chain(4, 1).states(noise), noise)
    problem = _problem("rastrigin", 4, 1, "final")
    np.testing.assert_array_equal(
        problem.rollout(noise), problem.instance.evaluate(noise[:, 0])[:, None]
    )


def test_rotations_are_orthogonal_and_seeded() -> None:
    chain = _chain(6, 5, seed=3)
    for j in range(1, 5):
        r = chain.rotation(j)
        np.testing.assert_allclose(r @ r.T, np.eye(6), atol=1e-12)
    assert not np.allclose(chain.rotation(1), chain.rotation(2))
    np.testing.assert_array_equal(_chain(6, 5, seed=3).rotation(4), chain.rotation(4))
    assert not np.allclose(_chain(6, 5, seed=4).rotation(4), chain.rotation(4))
    with pytest.raises(ProblemError, match=r"positions 1\.\.4"):
        chain.rotation(0)


def test_states_follow_the_recursion_sample_by_sample() -> None:
    d, k = 5, 4
    chain = _chain(d, k, seed=1)
    noise = np.random.default_rng(2).standard_normal((6, k, d))
    states = chain.states(noise)
    for i in range(6):
        x = noise[i, 0]
        np.testing.assert_array_equal(states[i, 0], x)
        for j in range(1, k):
            x = chain.drift[j] * chain.rotation(j) @ x + chain.scale[j] * noise[i, j]
            np.testing.assert_allclose(states[i, j], x, rtol=1e-12, atol=1e-14)


def test_unguided_marginals_are_standard_normal() -> None:
    d, k, n = 3, 5, 100_000
    states = _chain(d, k, seed=6).states(np.random.default_rng(7).standard_normal((n, k, d)))
    for j in range(k):
        mean = states[:, j].mean(axis=0)
        covariance = np.cov(states[:, j], rowvar=False)
        # Standard errors under N(0, I): 1/sqrt(n) for a mean, sqrt(1/n) off the diagonal
        # of the covariance and sqrt(2/n) on it.
        assert np.abs(mean).max() < 5.0 / np.sqrt(n)
        assert np.abs(covariance - np.eye(d)).max() < 5.0 * np.sqrt(2.0 / n)


def test_moment_propagation_matches_monte_carlo() -> None:
    d, k, n = 3, 4, 200_000
    rng = np.random.default_rng(8)
    chain = _chain(d, k, seed=9)
    means, covariances = _random_laws(k, d, rng)
    state_means, state_covariances = chain.propagate_moments(means, covariances)
    assert state_means.shape == (k, d)
    assert state_covariances.shape == (k, d, d)
    states = chain.states(_sample_noise(means, covariances, n, rng))
    for j in range(k):
        s = state_covariances[j]
        variances = np.diagonal(s)
        mean_error = np.abs(states[:, j].mean(axis=0) - state_means[j])
        assert (mean_error < 5.0 * np.sqrt(variances / n)).all()
        # Var of a sample covariance entry of a Gaussian: (S_ii S_jj + S_ij^2) / n.
        entry_std = np.sqrt((np.outer(variances, variances) + s**2) / n)
        assert (np.abs(np.cov(states[:, j], rowvar=False) - s) < 5.0 * entry_std).all()


def test_moment_propagation_of_the_unguided_law_is_standard_normal() -> None:
    d, k = 4, 6
    state_means, state_covariances = _chain(d, k).propagate_moments(
        np.zeros((k, d)), np.broadcast_to(np.eye(d), (k, d, d))
    )
    np.testing.assert_array_equal(state_means, 0.0)
    np.testing.assert_allclose(state_covariances, np.broadcast_to(np.eye(d), (k, d, d)), atol=1e-14)


def test_steering_means_put_every_state_on_the_target() -> None:
    d, k = 5, 6
    chain = _chain(d, k, seed=2)
    target = np.random.default_rng(0).uniform(-1.0, 1.0, d)
    states = chain.states(chain.steering_means(target)[None])
    np.testing.assert_allclose(states[0], np.broadcast_to(target, (k, d)), atol=1e-13)


def test_step_weights() -> None:
    np.testing.assert_array_equal(step_weights("final", 3), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(step_weights("cumulative", 4), [0.25] * 4)
    with pytest.raises(ProblemError, match="unknown scoring 'sum'"):
        step_weights("sum", 3)


@pytest.mark.parametrize("scoring", ["final", "cumulative"])
def test_rollout_scores_the_states_with_the_weights(scoring: str) -> None:
    d, k = 4, 3
    problem = _problem("levy", d, k, scoring)
    noise = np.random.default_rng(3).standard_normal((8, k, d))
    losses = problem.rollout(noise)
    assert losses.shape == (8, k)
    assert losses.dtype == np.float64
    states = problem.chain.states(noise)
    values = np.stack([problem.instance.evaluate(states[:, j]) for j in range(k)], axis=1)
    np.testing.assert_allclose(losses, values * step_weights(scoring, k), rtol=1e-14)
    np.testing.assert_allclose(problem.loss(noise), losses.sum(axis=1), rtol=1e-14)
    # Each rollout is independent of the others in its batch.
    np.testing.assert_allclose(problem.rollout(noise[2:3]), losses[2:3], rtol=1e-14)


@pytest.mark.parametrize("scoring", ["final", "cumulative"])
@pytest.mark.parametrize("name", functions_with_closed_form())
def test_expected_loss_matches_monte_carlo(name: str, scoring: str) -> None:
    d, k, n = 4, 3, 100_000
    rng = np.random.default_rng(12)
    problem = _problem(name, d, k, scoring, seed=13)
    assert problem.has_expected_loss
    means, covariances = _random_laws(k, d, rng)
    losses = problem.loss(_sample_noise(means, covariances, n, rng))
    exact = problem.expected_loss(means, covariances)
    assert abs(exact - losses.mean()) < 5.0 * losses.std() / np.sqrt(n)


@pytest.mark.parametrize("scoring", ["final", "cumulative"])
@pytest.mark.parametrize("name", functions_with_closed_form())
def test_optimal_loss_is_approached_by_steering_to_the_minimizer(name: str, scoring: str) -> None:
    d, k = 5, 4
    problem = _problem(name, d, k, scoring, seed=4)
    assert problem.optimal_loss == 0.0
    means = problem.chain.steering_means(problem.instance.minimizer)
    # Every state is x* up to round-off (~1e-16), which the weights up to 1e6 magnify.
    assert np.abs(problem.rollout(means[None])).max() < 1e-8
    unguided = problem.expected_loss(np.zeros((k, d)), np.broadcast_to(np.eye(d), (k, d, d)))
    gaps = [
        problem.expected_loss(means, np.broadcast_to(eps * np.eye(d), (k, d, d)))
        for eps in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10)
    ]
    # The gap is tr(H S) = O(eps) for a quadratic, sum_i w_i s_i sqrt(2/pi) = O(sqrt(eps))
    # for the l1-ellipsoid and about (1 + 20 pi^2) tr(S) = O(eps) for Rastrigin: at least a
    # factor 10 per factor 100 in eps.
    assert all(gap > 0.0 for gap in gaps)
    assert all(later < 0.11 * earlier for earlier, later in pairwise(gaps))
    assert gaps[-1] < 1e-4 * unguided


@pytest.mark.parametrize("name", functions_without_closed_form())
def test_expected_loss_is_not_available_without_a_closed_form(name: str) -> None:
    problem = _problem(name, 3, 2, "final")
    assert not problem.has_expected_loss
    assert problem.optimal_loss == 0.0
    with pytest.raises(NotImplementedError, match="estimate it from rollouts"):
        problem.expected_loss(np.zeros((2, 3)), np.broadcast_to(np.eye(3), (2, 3, 3)))


def test_bad_shapes_raise() -> None:
    problem = _problem("sphere", 3, 2, "final")
    with pytest.raises(ProblemError, match=r"shape \(n, 2, 3\)"):
        problem.rollout(np.zeros((4, 3, 3)))
    with pytest.raises(ProblemError, match=r"means must have shape \(2, 3\)"):
        problem.expected_loss(np.zeros((3, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ProblemError, match=r"covariances must have shape \(2, 3, 3\)"):
        problem.expected_loss(np.zeros((2, 3)), np.zeros((2, 3, 2)))
    with pytest.raises(ProblemError, match="build both at the same d"):
        ChainProblem(problem.instance, _chain(4, 2), "final")
    with pytest.raises(ProblemError, match="unknown scoring"):
        ChainProblem(problem.instance, problem.chain, "best")
