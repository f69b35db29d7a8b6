"""The l1-ellipsoid against a direct formula, and its folded-normal expectation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import foldnorm

from casbo_bench.problems.functions import get_function
from casbo_bench.problems.functions.l1_ellipsoid import folded_normal_mean


def _l1_ellipsoid(point: np.ndarray) -> float:
    d = len(point)
    total = 0.0
    for i in range(1, d + 1):
        exponent = 6.0 * (i - 1) / (d - 1) if d > 1 else 0.0
        total += 10.0**exponent * abs(float(point[i - 1]))
    return total


@pytest.mark.parametrize("d", [1, 2, 4, 30])
def test_agrees_with_a_direct_formula(d: int) -> None:
    y = np.random.default_rng(d).uniform(-5.0, 5.0, size=(32, d))
    expected = [_l1_ellipsoid(row) for row in y]
    np.testing.assert_allclose(get_function("l1-ellipsoid").evaluate(y), expected, rtol=1e-13)


def test_folded_normal_mean_agrees_with_scipy() -> None:
    rng = np.random.default_rng(0)
    mean = rng.uniform(-3.0, 3.0, size=50)
    std = rng.uniform(0.01, 3.0, size=50)
    # |y| for y ~ N(m, s^2) is scipy's foldnorm(c = |m| / s, scale = s).
    expected = [foldnorm(abs(m) / s, scale=s).mean() for m, s in zip(mean, std, strict=True)]
    np.testing.assert_allclose(folded_normal_mean(mean, std), expected, rtol=1e-12)


def test_folded_normal_mean_tends_to_the_absolute_mean_as_the_std_vanishes() -> None:
    mean = np.array([-2.0, -1e-3, 0.0, 1e-3, 2.0])
    np.testing.assert_array_equal(folded_normal_mean(mean, np.zeros(5)), np.abs(mean))
    tiny = folded_normal_mean(mean, np.full(5, 1e-12))
    np.testing.assert_allclose(tiny, np.abs(mean), rtol=1e-12, atol=1e-12)
    assert np.isfinite(tiny).all()


def test_gaussian_expectation_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    d, n = 4, 400_000
    mean, factor = rng.standard_normal(d), rng.standard_normal((d, d)) / 2
    covariance = factor @ factor.T
    function = get_function("l1-ellipsoid")
    samples = function.evaluate(mean + rng.standard_normal((n, d)) @ factor.T)
    error = abs(function.gaussian_expectation(mean, covariance) - samples.mean())
    assert error < 5.0 * samples.std() / np.sqrt(n)
