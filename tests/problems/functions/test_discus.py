"""The discus against a direct formula."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.problems.functions import get_function


def _discus(point: np.ndarray) -> float:
    total = 1e6 * float(point[0]) ** 2
    for value in point[1:]:
        total += float(value) ** 2
    return total


@pytest.mark.parametrize("d", [1, 2, 4, 30])
def test_agrees_with_a_direct_formula(d: int) -> None:
    y = np.random.default_rng(d).uniform(-5.0, 5.0, size=(32, d))
    expected = [_discus(row) for row in y]
    np.testing.assert_allclose(get_function("discus").evaluate(y), expected, rtol=1e-13)


def test_gaussian_expectation_is_quadratic_form_plus_trace() -> None:
    rng = np.random.default_rng(0)
    d = 5
    mean, factor = rng.standard_normal(d), rng.standard_normal((d, d))
    covariance = factor @ factor.T
    hessian = np.diag([1e6] + [1.0] * (d - 1))
    expected = mean @ hessian @ mean + np.trace(hessian @ covariance)
    assert get_function("discus").gaussian_expectation(mean, covariance) == pytest.approx(
        expected, rel=1e-13
    )
