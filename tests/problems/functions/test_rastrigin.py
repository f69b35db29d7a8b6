"""The rastrigin test function against BoTorch's independent implementation, and its
closed-form Gaussian expectation against Monte Carlo and quadrature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.test_functions.synthetic import Rastrigin as BoTorchRastrigin
from scipy.integrate import quad
from scipy.stats import norm

from casbo_bench.problems.functions import get_function


@pytest.mark.parametrize("d", [1, 3, 10, 50])
def test_agrees_with_botorch_at_random_points(d: int) -> None:
    rng = np.random.default_rng(d)
    function = get_function("rastrigin")
    far = rng.uniform(-5.0, 5.0, size=(64, d))
    near = function.optimum(d) + 1e-4 * rng.standard_normal((64, d))
    y = np.concatenate([far, near])
    reference = BoTorchRastrigin(dim=d).evaluate_true(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(function.evaluate(y), reference, rtol=1e-12, atol=1e-12)


def test_optimum_matches_botorch() -> None:
    d = 4
    optimizer = BoTorchRastrigin(dim=d).optimizers.numpy()
    np.testing.assert_array_equal(get_function("rastrigin").optimum(d)[None], optimizer)


def test_gaussian_expectation_matches_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    d, n = 4, 400_000
    # Standard deviations around 0.1-0.5, where the cosine ripple is only partly damped.
    mean, factor = rng.standard_normal(d), rng.standard_normal((d, d)) / 5
    covariance = factor @ factor.T
    function = get_function("rastrigin")
    samples = function.evaluate(mean + rng.standard_normal((n, d)) @ factor.T)
    error = abs(function.gaussian_expectation(mean, covariance) - samples.mean())
    assert error < 5.0 * samples.std() / np.sqrt(n)


@pytest.mark.parametrize(("m", "s"), [(0.0, 0.05), (0.3, 0.2), (-1.2, 0.7), (2.5, 1.5)])
def test_one_dimensional_expectation_agrees_with_quadrature(m: float, s: float) -> None:
    function = get_function("rastrigin")

    def integrand(y: float) -> float:
        return float(function.evaluate(np.array([[y]]))[0] * norm.pdf(y, loc=m, scale=s))

    reference, _ = quad(integrand, m - 12 * s, m + 12 * s, limit=400, epsabs=1e-13)
    exact = function.gaussian_expectation(np.array([m]), np.array([[s * s]]))
    assert exact == pytest.approx(reference, rel=1e-9)


def test_expectation_near_the_optimum_keeps_its_relative_accuracy() -> None:
    # Near the optimum E f ~ (1 + 20 pi^2)(m^2 + s^2): the naive 10 - 10 cos(.) exp(.) would
    # lose every digit at these sizes.
    function = get_function("rastrigin")
    m, s = 1e-9, 1e-9
    exact = function.gaussian_expectation(np.array([m]), np.array([[s * s]]))
    leading = (1.0 + 20.0 * np.pi**2) * (m * m + s * s)
    assert exact == pytest.approx(leading, rel=1e-6)
