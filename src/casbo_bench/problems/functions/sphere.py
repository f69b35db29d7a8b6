"""The sphere ``f(y) = sum_i y_i^2``: convex, perfectly conditioned."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import SeparableQuadratic


class Sphere(SeparableQuadratic):
    """``f(y) = ||y||^2``, minimum 0 at the origin; ``E f = ||m||^2 + tr(C)``."""

    name = "sphere"

    def weights(self, dim: int) -> FloatArray:
        return np.ones(dim)
