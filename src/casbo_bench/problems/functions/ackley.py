"""Ackley's function: a nearly flat outer region around a deep funnel at the origin."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import TestFunction

ACKLEY_A = 20.0
ACKLEY_B = 0.2
ACKLEY_C = 2.0 * np.pi


class Ackley(TestFunction):
    """``f(y) = -a exp(-b sqrt(mean_i y_i^2)) - exp(mean_i cos(c y_i)) + a + e``,

    with ``a = 20, b = 0.2, c = 2 pi``; minimum 0 at the origin, non-convex.
    """

    name = "ackley"
    convex = False

    def _evaluate(self, y: FloatArray) -> FloatArray:
        radius = np.sqrt((y * y).mean(axis=1))
        # Written as a (1 - exp(-b r)) + e (1 - exp(mean cos(c y) - 1)) with expm1 and
        # cos(c y) - 1 = -2 sin^2(c y / 2): both terms are >= 0 and exactly 0 at the origin,
        # instead of the round-off of a + e - a - e.
        cosine_gap = -2.0 * (np.sin(0.5 * ACKLEY_C * y) ** 2).mean(axis=1)
        return np.asarray(
            -ACKLEY_A * np.expm1(-ACKLEY_B * radius) - np.e * np.expm1(cosine_gap),
            dtype=np.float64,
        )
