"""The rosenbrock test function against BoTorch's independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.test_functions.synthetic import Rosenbrock as BoTorchRosenbrock

from casbo_bench.problems.base import ProblemError
from casbo_bench.problems.functions import get_function


@pytest.mark.parametrize("d", [2, 3, 10, 50])
def test_agrees_with_botorch_at_random_points(d: int) -> None:
    rng = np.random.default_rng(d)
    function = get_function("rosenbrock")
    far = rng.uniform(-5.0, 5.0, size=(64, d))
    near = function.optimum(d) + 1e-4 * rng.standard_normal((64, d))
    y = np.concatenate([far, near])
    reference = BoTorchRosenbrock(dim=d).evaluate_true(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(function.evaluate(y), reference, rtol=1e-12, atol=1e-12)


def test_optimum_matches_botorch() -> None:
    d = 4
    optimizer = BoTorchRosenbrock(dim=d).optimizers.numpy()
    np.testing.assert_array_equal(get_function("rosenbrock").optimum(d)[None], optimizer)


def test_needs_two_dimensions() -> None:
    with pytest.raises(ProblemError, match="d >= 2"):
        get_function("rosenbrock").evaluate(np.zeros((3, 1)))
