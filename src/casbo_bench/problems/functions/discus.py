"""The discus ``f(y) = 10^6 y_1^2 + sum_{i>1} y_i^2``: convex, one stiff direction."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import LOG10_CONDITION, SeparableQuadratic


class Discus(SeparableQuadratic):
    """``f(y) = 10^6 y_1^2 + sum_{i=2}^d y_i^2``, minimum 0 at the origin.

    ``E f = sum_i w_i (m_i^2 + C_ii)`` with ``w = (10^6, 1, ..., 1)``.
    """

    name = "discus"

    def weights(self, dim: int) -> FloatArray:
        w = np.ones(dim)
        w[0] = 10.0**LOG10_CONDITION
        return w
