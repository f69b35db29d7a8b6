"""The bent cigar ``f(y) = y_1^2 + 10^6 sum_{i>1} y_i^2``: convex, one soft direction.

Not one of the paper's functions: tests/test_plugins.py drops this file into a copy of
``casbo_bench.problems.functions`` to show that a test function is one file.
"""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import LOG10_CONDITION, SeparableQuadratic


class BentCigar(SeparableQuadratic):
    """``f(y) = y_1^2 + 10^6 sum_{i=2}^d y_i^2``, minimum 0 at the origin.

    The discus turned inside out: every direction is stiff but the first. ``E f`` for
    ``y ~ N(m, C)`` is ``sum_i w_i (m_i^2 + C_ii)`` with ``w = (1, 10^6, ..., 10^6)``.
    """

    name = "bent-cigar"

    def weights(self, dim: int) -> FloatArray:
        stiff = 10.0**LOG10_CONDITION
        return np.concatenate(([1.0], np.full(dim - 1, stiff)))
