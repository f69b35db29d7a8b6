"""Rosenbrock's valley ``f(y) = sum_{i<d} 100 (y_{i+1} - y_i^2)^2 + (y_i - 1)^2``."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import TestFunction


class Rosenbrock(TestFunction):
    """``f(y) = sum_{i=1}^{d-1} [100 (y_{i+1} - y_i^2)^2 + (y_i - 1)^2]``.

    Non-convex (a curved valley), minimum 0 at the all-ones vector; needs d >= 2 (at d = 1
    the sum is empty and every point is a minimizer).
    """

    name = "rosenbrock"
    convex = False
    min_dim = 2

    def optimum(self, dim: int) -> FloatArray:
        return np.ones(dim)

    def _evaluate(self, y: FloatArray) -> FloatArray:
        head, tail = y[:, :-1], y[:, 1:]
        return np.asarray(
            (100.0 * (tail - head * head) ** 2 + (head - 1.0) ** 2).sum(axis=1),
            dtype=np.float64,
        )
