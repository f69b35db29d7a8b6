"""The ellipsoid against a direct formula."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.problems.functions import get_function


def _ellipsoid(point: np.ndarray) -> float:
    d = len(point)
    total = 0.0
    for i in range(1, d + 1):
        exponent = 6.0 * (i - 1) / (d - 1) if d > 1 else 0.0
        total += 10.0**exponent * float(point[i - 1]) ** 2
    return total


@pytest.mark.parametrize("d", [1, 2, 4, 30])
def test_agrees_with_a_direct_formula(d: int) -> None:
    y = np.random.default_rng(d).uniform(-5.0, 5.0, size=(32, d))
    expected = [_ellipsoid(row) for row in y]
    np.testing.assert_allclose(get_function("ellipsoid").evaluate(y), expected, rtol=1e-13)


def test_gaussian_expectation_is_quadratic_form_plus_trace() -> None:
    rng = np.random.default_rng(0)
    d = 5
    mean, factor = rng.standard_normal(d), rng.standard_normal((d, d))
    covariance = factor @ factor.T
    hessian = np.diag([_ellipsoid(np.eye(d)[i]) for i in range(d)])
    expected = mean @ hessian @ mean + np.trace(hessian @ covariance)
    assert get_function("ellipsoid").gaussian_expectation(mean, covariance) == pytest.approx(
        expected, rel=1e-13
    )
