"""The l1-ellipsoid ``f(y) = sum_i 10^(6 (i - 1) / (d - 1)) |y_i|``: convex, non-smooth."""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from casbo_bench.problems.base import FloatArray
from casbo_bench.problems.functions.base import TestFunction, ellipsoid_weights


def folded_normal_mean(mean: FloatArray, std: FloatArray) -> FloatArray:
    """``E|y|`` for ``y ~ N(m, s^2)``, elementwise over arrays of equal shape.

    ``E|y| = s sqrt(2/pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m/s))``
    ``     = s sqrt(2/pi) exp(-t^2 / 2) + m erf(t / sqrt(2))``,  ``t = m / s``,
    with the limit ``E|y| = |m|`` at ``s = 0``.

    >>> folded_normal_mean(np.array([-2.0, 0.0]), np.array([0.0, 1.0])).round(6).tolist()
    [2.0, 0.797885]
    """
    # At s = 0 the ratio t is sent to +-inf (sign of m; +inf for m = 0), where exp(-t^2/2) = 0
    # and erf = +-1, so the formula itself returns |m| without a 0/0.
    t = np.divide(mean, std, out=np.copysign(np.inf, mean), where=std > 0)
    return np.asarray(
        std * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * t * t) + mean * erf(t / np.sqrt(2.0)),
        dtype=np.float64,
    )


class L1Ellipsoid(TestFunction):
    """``f(y) = sum_i w_i |y_i|`` with the ellipsoid's weights ``w_i = 10^(6 (i-1)/(d-1))``.

    Minimum 0 at the origin. For ``y ~ N(m, C)`` only the marginals matter:
    ``E f = sum_i w_i E|y_i|``, each term a folded-normal mean
    (:func:`folded_normal_mean` with ``s_i = sqrt(C_ii)``).
    """

    name = "l1-ellipsoid"
    convex = True

    def _evaluate(self, y: FloatArray) -> FloatArray:
        return np.asarray(np.abs(y) @ ellipsoid_weights(y.shape[1]), dtype=np.float64)

    def _gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        # Round-off can leave a propagated variance a hair below zero; it is zero.
        std = np.sqrt(np.clip(np.diagonal(covariance), 0.0, None))
        return float(ellipsoid_weights(mean.size) @ folded_normal_mean(mean, std))
