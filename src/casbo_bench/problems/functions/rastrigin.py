"""Rastrigin's function ``f(y) = 10 d + sum_i [y_i^2 - 10 cos(2 pi y_i)]``: a grid of minima."""

from __future__ import annotations

import numpy as np

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import TestFunction


class Rastrigin(TestFunction):
    """``f(y) = 10 d + sum_{i=1}^d [y_i^2 - 10 cos(2 pi y_i)]``, minimum 0 at the origin.

    Non-convex: a local minimum near every integer point. For ``y ~ N(m, C)`` only the
    marginals ``y_i ~ N(m_i, s_i^2)``, ``s_i^2 = C_ii``, matter, and the characteristic
    function gives ``E cos(2 pi y_i) = cos(2 pi m_i) exp(-2 pi^2 s_i^2)``, so

        E f(y) = sum_i [m_i^2 + s_i^2 + 10 - 10 cos(2 pi m_i) exp(-2 pi^2 s_i^2)].

    Gaussian smoothing damps the cosine ripple by ``exp(-2 pi^2 s^2)`` (by 1e-8 at s = 1):
    a wide law sees a quadratic bowl, which is why it can find the global basin.
    """

    name = "rastrigin"
    convex = False

    def _evaluate(self, y: FloatArray) -> FloatArray:
        # 10 - 10 cos(2 pi y) = 20 sin^2(pi y): a sum of non-negative terms, without the
        # cancellation of 10 d against the cosines near the optimum.
        return np.asarray((y * y + 20.0 * np.sin(np.pi * y) ** 2).sum(axis=1), dtype=np.float64)

    def _gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        # Round-off can leave a propagated variance a hair below zero; it is zero.
        variance = np.clip(np.diagonal(covariance), 0.0, None)
        damping = -2.0 * np.pi**2 * variance  # log of exp(-2 pi^2 s^2)
        # 1 - e^a cos(b) = -expm1(a) + e^a 2 sin^2(b / 2): both terms are non-negative, so
        # near the optimum (m, s -> 0) nothing cancels, and s = 0 gives f(m) exactly.
        ripple = -np.expm1(damping) + np.exp(damping) * 2.0 * np.sin(np.pi * mean) ** 2
        return float(np.sum(mean * mean + variance + 10.0 * ripple))
