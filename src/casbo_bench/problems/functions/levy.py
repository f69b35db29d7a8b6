"""Levy's function, a non-convex landscape of many local minima with minimum at ones."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import TestFunction


class Levy(TestFunction):
    """With ``w_i = 1 + (y_i - 1) / 4``:

    ``f(y) = sin^2(pi w_1) + sum_{i=1}^{d-1} (w_i - 1)^2 [1 + 10 sin^2(pi w_i + 1)]
    + (w_d - 1)^2 [1 + sin^2(2 pi w_d)]``,

    minimum 0 at the all-ones vector.
    """

    name = "levy"
    convex = False

    def optimum(self, dim: int) -> FloatArray:
        return np.ones(dim)

    def _evaluate(self, y: FloatArray) -> FloatArray:
        u = (y - 1.0) / 4.0  # u = w - 1
        # sin^2(pi w) = sin^2(pi u) and sin^2(2 pi w) = sin^2(2 pi u): written in u, the
        # value at the optimum is exactly 0 (sin(pi) in floating point is 1.2e-16, not 0).
        first = np.sin(np.pi * u[:, 0]) ** 2
        middle = (u[:, :-1] ** 2 * (1.0 + 10.0 * np.sin(np.pi * (u[:, :-1] + 1.0) + 1.0) ** 2)).sum(
            axis=1
        )
        last = u[:, -1] ** 2 * (1.0 + np.sin(2.0 * np.pi * u[:, -1]) ** 2)
        return np.asarray(first + middle + last, dtype=np.float64)
