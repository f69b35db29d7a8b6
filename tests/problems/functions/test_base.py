"""The test-function contract, checked for every registered function."""

from __future__ import annotations

import re

import numpy as np
import pytest

from casbo_bench.problems.base import ProblemError
from casbo_bench.problems.functions import available_functions, get_function
from casbo_bench.problems.functions.base import TestFunction, ellipsoid_weights
from tests.problems.registered import (
    convex_functions,
    functions_with_closed_form,
    functions_without_closed_form,
)

KNOWN_FUNCTIONS: dict[str, tuple[bool, bool]] = {
    # name: (convex, closed-form Gaussian expectation)
    "sphere": (True, True),
    "ellipsoid": (True, True),
    "discus": (True, True),
    "l1-ellipsoid": (True, True),
    "rastrigin": (False, True),
    "rosenbrock": (False, False),
    "levy": (False, False),
    "ackley": (False, False),
}
"""The paper's functions and what is known of each; the registry may hold more."""

DIMS = [1, 2, 5, 40]


def _cases() -> list[tuple[str, int]]:
    return [
        (name, d) for name in available_functions() for d in DIMS if d >= get_function(name).min_dim
    ]


def test_the_paper_functions_are_registered() -> None:
    assert set(KNOWN_FUNCTIONS) <= set(available_functions())
    assert available_functions() == sorted(available_functions())


@pytest.mark.parametrize("name", available_functions())
def test_registered_function_carries_its_name(name: str) -> None:
    function = get_function(name)
    assert isinstance(function, TestFunction)
    assert function.name == name
    assert isinstance(function.convex, bool)
    assert isinstance(function.min_dim, int) and function.min_dim >= 1


@pytest.mark.parametrize(("name", "known"), KNOWN_FUNCTIONS.items())
def test_paper_function_declares_its_known_convexity_and_closed_form(
    name: str, known: tuple[bool, bool]
) -> None:
    function = get_function(name)
    assert (function.convex, function.has_gaussian_expectation) == known


@pytest.mark.parametrize("name", convex_functions())
def test_function_declared_convex_is_midpoint_convex(name: str) -> None:
    function = get_function(name)
    rng = np.random.default_rng(3)
    for d in (max(2, function.min_dim), 7):
        optimum = function.optimum(d)
        a = optimum + rng.uniform(-3.0, 3.0, size=(200, d))
        b = optimum + rng.uniform(-3.0, 3.0, size=(200, d))
        midpoint = function.evaluate((a + b) / 2)
        chord = (function.evaluate(a) + function.evaluate(b)) / 2
        # Round-off only: a relative 1e-12 of the chord.
        assert (midpoint <= chord * (1 + 1e-12)).all()


def test_unknown_function_lists_the_valid_ones() -> None:
    expected = f"unknown test function 'spher'; choose one of {', '.join(available_functions())}"
    with pytest.raises(ProblemError, match=re.escape(expected)):
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


@pytest.mark.parametrize("name", functions_without_closed_form())
def test_gaussian_expectation_without_a_closed_form_says_so(name: str) -> None:
    with pytest.raises(NotImplementedError, match="no closed-form Gaussian expectation"):
        get_function(name).gaussian_expectation(np.zeros(3), np.eye(3))


@pytest.mark.parametrize("name", functions_with_closed_form())
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


@pytest.mark.parametrize("name", functions_with_closed_form())
def test_gaussian_expectation_rejects_bad_shapes(name: str) -> None:
    with pytest.raises(ProblemError, match=r"\(d,\) mean and a \(d, d\) covariance"):
        get_function(name).gaussian_expectation(np.zeros(3), np.eye(2))


def test_ellipsoid_weights_span_six_decades() -> None:
    assert ellipsoid_weights(1).tolist() == [1.0]
    assert ellipsoid_weights(2).tolist() == [1.0, 1e6]
    w = ellipsoid_weights(7)
    np.testing.assert_allclose(w, 10.0 ** np.arange(7), rtol=1e-15)
