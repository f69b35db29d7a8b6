"""The test-function contract, checked for every registered function."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.problems.base import ProblemError
from casbo_bench.problems.functions import available_functions, get_function
from casbo_bench.problems.functions.base import TestFunction, ellipsoid_weights

CONVEX = {"sphere", "ellipsoid", "discus", "l1-ellipsoid"}
CLOSED_FORM = CONVEX | {"rastrigin"}
DIMS = [1, 2, 5, 40]


def _cases() -> list[tuple[str, int]]:
    return [
        (name, d) for name in available_functions() for d in DIMS if d >= get_function(name).min_dim
    ]


def test_registry_holds_the_eight_functions() -> None:
    assert available_functions() == sorted(
        [
            "sphere",
            "ellipsoid",
            "discus",
            "l1-ellipsoid",
            "rosenbrock",
            "levy",
            "rastrigin",
            "ackley",
        ]
    )
    for name in available_functions():
        function = get_function(name)
        assert isinstance(function, TestFunction)
        assert function.name == name
        assert function.convex == (name in CONVEX)


def test_unknown_function_lists_the_valid_ones() -> None:
    with pytest.raises(ProblemError, match=r"unknown test function 'spher'.*sphere"):
        get_function("spher")


@pytest.mark.parametrize(("name", "d"), _cases())
def test_minimum_is_zero_at_the_optimum(name: str, d: int) -> None:
    function = get_function(name)
    value = function.evaluate(function.optimum(d)[None])
    assert value.shape == (1,)
    assert value.dtype == np.float64
    assert value[0] == 0.0


@pytest.mark.parametrize(("name", "d"), _cases())
def test_positive_away_from_the_optimum(name: str, d: int) -> None:
    function = get_function(name)
    rng = np.random.default_rng(1)
    directions = rng.standard_normal((60, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = np.repeat([1e-3, 0.1, 1.0, 5.0], 15)[:, None]
    values = function.evaluate(function.optimum(d) + radii * directions)
    assert values.shape == (60,)
    assert (values > 0).all()


@pytest.mark.parametrize("name", available_functions())
def test_evaluate_rejects_bad_shapes(name: str) -> None:
    function = get_function(name)
    with pytest.raises(ProblemError, match=r"\(n, d\) array"):
        function.evaluate(np.zeros(3))
    with pytest.raises(ProblemError, match=r"\(n, d\) array"):
        function.evaluate(np.zeros((2, function.min_dim - 1)))


@pytest.mark.parametrize("name", available_functions())
def test_gaussian_expectation_exists_exactly_where_a_closed_form_is_known(name: str) -> None:
    function = get_function(name)
    assert function.has_gaussian_expectation == (name in CLOSED_FORM)
    if name not in CLOSED_FORM:
        with pytest.raises(NotImplementedError, match="no closed-form Gaussian expectation"):
            function.gaussian_expectation(np.zeros(3), np.eye(3))


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_gaussian_expectation_at_zero_covariance_is_the_value_at_the_mean(name: str) -> None:
    function = get_function(name)
    rng = np.random.default_rng(2)
    for d in DIMS:
        mean = rng.standard_normal(d)
        mean[0] = 0.0  # 0/0 in the folded normal's ratio m / s
        expected = function.evaluate(mean[None])[0]
        assert function.gaussian_expectation(mean, np.zeros((d, d))) == pytest.approx(
            expected, rel=1e-14, abs=0.0
        )


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_gaussian_expectation_rejects_bad_shapes(name: str) -> None:
    with pytest.raises(ProblemError, match=r"\(d,\) mean and a \(d, d\) covariance"):
        get_function(name).gaussian_expectation(np.zeros(3), np.eye(2))


def test_ellipsoid_weights_span_six_decades() -> None:
    assert ellipsoid_weights(1).tolist() == [1.0]
    assert ellipsoid_weights(2).tolist() == [1.0, 1e6]
    w = ellipsoid_weights(7)
    np.testing.assert_allclose(w, 10.0 ** np.arange(7), rtol=1e-15)
