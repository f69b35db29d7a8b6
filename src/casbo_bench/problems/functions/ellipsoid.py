"""The ellipsoid ``f(y) = sum_i 10^(6 (i - 1) / (d - 1)) y_i^2``: convex, condition 10^6."""

from __future__ import annotations

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import SeparableQuadratic, ellipsoid_weights


class Ellipsoid(SeparableQuadratic):
    """``f(y) = sum_i w_i y_i^2`` with ``w_i = 10^(6 (i - 1) / (d - 1))`` (w = [1] at d = 1).

    Minimum 0 at the origin; ``E f = sum_i w_i (m_i^2 + C_ii)``.
    """

    name = "ellipsoid"

    def weights(self, dim: int) -> FloatArray:
        return ellipsoid_weights(dim)
