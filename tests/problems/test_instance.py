"""Seeded instances: Haar rotation, shift, minimum at x*, Gaussian expectation."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.problems.base import ProblemError
from casbo_bench.problems.functions import available_functions, get_function
from casbo_bench.problems.instance import FunctionInstance, haar_orthogonal
from tests.problems.registered import functions_with_closed_form


@pytest.mark.parametrize("d", [1, 2, 7, 60])
def test_haar_orthogonal_is_orthogonal_and_seeded(d: int) -> None:
    q = haar_orthogonal(d, np.random.default_rng(0))
    np.testing.assert_allclose(q @ q.T, np.eye(d), atol=1e-12)
    np.testing.assert_array_equal(q, haar_orthogonal(d, np.random.default_rng(0)))
    if d > 1:  # O(1) = {-1, 1}: two seeds may well agree
        assert not np.allclose(q, haar_orthogonal(d, np.random.default_rng(1)))


def test_haar_orthogonal_entries_are_centered() -> None:
    # Under the Haar law every entry is symmetric about 0 with variance 1/d. A QR without
    # the sign fix gives Q[0, 0] = -|G[0, 0]| / ||G[:, 0]|| < 0 always, which this rejects.
    d, n = 3, 4000
    rng = np.random.default_rng(5)
    corner = np.array([haar_orthogonal(d, rng)[0, 0] for _ in range(n)])
    assert abs(corner.mean()) < 5.0 * np.sqrt(1.0 / d / n)
    assert abs((corner**2).mean() - 1.0 / d) < 0.05 / d


@pytest.mark.parametrize("name", available_functions())
def test_instance_minimum_is_zero_at_the_shift(name: str) -> None:
    d = 6
    instance = FunctionInstance.sample(get_function(name), d, np.random.default_rng(4))
    assert (np.abs(instance.minimizer) <= 1.0).all()
    assert instance.evaluate(instance.minimizer[None])[0] == 0.0
    rng = np.random.default_rng(9)
    away = instance.minimizer + rng.standard_normal((50, d)) * np.geomspace(1e-3, 3, 50)[:, None]
    assert (instance.evaluate(away) > 0).all()


@pytest.mark.parametrize("name", available_functions())
def test_instance_is_f_of_the_rotated_shifted_point(name: str) -> None:
    d = 5
    function = get_function(name)
    instance = FunctionInstance.sample(function, d, np.random.default_rng(1))
    x = np.random.default_rng(2).uniform(-3.0, 3.0, size=(20, d))
    q, shift, optimum = instance.rotation, instance.shift, function.optimum(d)
    expected = [function.evaluate((q @ (row - shift) + optimum)[None])[0] for row in x]
    np.testing.assert_allclose(instance.evaluate(x), expected, rtol=1e-12)


def test_unrotated_instance_has_identity_rotation_and_the_same_shift() -> None:
    function = get_function("ellipsoid")
    rotated = FunctionInstance.sample(function, 4, np.random.default_rng(3))
    plain = FunctionInstance.sample(function, 4, np.random.default_rng(3), rotated=False)
    np.testing.assert_array_equal(plain.rotation, np.eye(4))
    np.testing.assert_array_equal(plain.shift, rotated.shift)
    assert not np.allclose(rotated.rotation, np.eye(4))


def test_same_seed_same_instance_different_seed_different() -> None:
    function = get_function("rastrigin")
    a, b, c = (FunctionInstance.sample(function, 5, np.random.default_rng(s)) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.rotation, b.rotation)
    np.testing.assert_array_equal(a.shift, b.shift)
    assert not np.allclose(a.shift, c.shift)
    assert not np.allclose(a.rotation, c.rotation)


@pytest.mark.parametrize("name", functions_with_closed_form())
def test_gaussian_expectation_matches_monte_carlo(name: str) -> None:
    d, n = 4, 200_000
    rng = np.random.default_rng(11)
    instance = FunctionInstance.sample(get_function(name), d, rng)
    mean, factor = rng.standard_normal(d), rng.standard_normal((d, d)) / np.sqrt(d)
    samples = instance.evaluate(mean + rng.standard_normal((n, d)) @ factor.T)
    exact = instance.gaussian_expectation(mean, factor @ factor.T)
    assert abs(exact - samples.mean()) < 5.0 * samples.std() / np.sqrt(n)


def test_bad_shapes_raise() -> None:
    function = get_function("sphere")
    with pytest.raises(ProblemError, match=r"\(d, d\) rotation"):
        FunctionInstance(function, np.eye(3), np.zeros(2))
    with pytest.raises(ProblemError, match="d >= 2"):
        FunctionInstance(get_function("rosenbrock"), np.eye(1), np.zeros(1))
    instance = FunctionInstance.sample(function, 3, np.random.default_rng(0))
    with pytest.raises(ProblemError, match=r"evaluates \(n, 3\) arrays"):
        instance.evaluate(np.zeros((2, 4)))
    with pytest.raises(ProblemError, match=r"\(3,\) mean"):
        instance.gaussian_expectation(np.zeros(3), np.eye(2))
