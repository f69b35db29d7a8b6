"""The sphere against a direct formula."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.problems.functions import get_function


def _sphere(point: np.ndarray) -> float:
    return sum(float(v) ** 2 for v in point)


@pytest.mark.parametrize("d", [1, 4, 30])
def test_agrees_with_a_direct_formula(d: int) -> None:
    y = np.random.default_rng(d).uniform(-5.0, 5.0, size=(32, d))
    expected = [_sphere(row) for row in y]
    np.testing.assert_allclose(get_function("sphere").evaluate(y), expected, rtol=1e-13)


def test_gaussian_expectation_is_squared_mean_norm_plus_trace() -> None:
    rng = np.random.default_rng(0)
    mean, factor = rng.standard_normal(5), rng.standard_normal((5, 5))
    covariance = factor @ factor.T
    expected = _sphere(mean) + float(np.trace(covariance))
    assert get_function("sphere").gaussian_expectation(mean, covariance) == pytest.approx(
        expected, rel=1e-13
    )
