"""The test-function contract: a textbook function in its own frame, with minimum 0.

Read this module first. A :class:`TestFunction` evaluates batches of points ``y`` in the
function's own (unrotated, unshifted) frame, where it has its standard form and its global
minimum ``f* = 0`` sits at :meth:`TestFunction.optimum` (zero for most, the all-ones vector
for Rosenbrock and Levy). Seeded rotations and shifts are applied on top by
:class:`casbo_bench.problems.instance.FunctionInstance`.

Where ``E f(y)`` for a Gaussian ``y ~ N(m, C)`` has a closed form, a function implements
:meth:`TestFunction._gaussian_expectation`; the problems layer uses it for the exact
objective ``J(theta)``.

Each test function lives in its own module of :mod:`casbo_bench.problems.functions` and is
found by its ``name``: adding one is adding one file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from casbo_bench.problems.base import FloatArray, ProblemError

LOG10_CONDITION = 6.0
"""log10 of the condition number of the ellipsoid and discus Hessians (10^6)."""


def ellipsoid_weights(dim: int, log10_condition: float = LOG10_CONDITION) -> FloatArray:
    """The ellipsoid's coordinate weights ``w_i = 10^(c (i - 1) / (d - 1))``, i = 1..d.

    Returns a ``d`` array rising geometrically from 1 to ``10^c``; at d = 1 it is ``[1]``
    (the single coordinate gets the weight of the first).

    >>> ellipsoid_weights(3).tolist()
    [1.0, 1000.0, 1000000.0]
    """
    if dim == 1:
        return np.ones(1)
    return 10.0 ** (log10_condition * np.arange(dim) / (dim - 1))


class TestFunction(ABC):
    """A test function ``f: R^d -> [0, inf)`` with ``f(optimum(d)) = 0``.

    Subclasses set ``name`` and ``convex`` and implement :meth:`_evaluate`; they override
    :meth:`optimum` when the minimizer is not the origin, ``min_dim`` when small d is
    degenerate, and :meth:`_gaussian_expectation` when ``E f(y)`` has a closed form.

    Attributes:
        name: the registry name (e.g. ``"l1-ellipsoid"``).
        convex: whether ``f`` is convex.
        min_dim: the smallest dimension at which ``f`` has a unique minimizer.
    """

    __test__ = False  # not a pytest test class, despite its name

    name: ClassVar[str]
    convex: ClassVar[bool]
    min_dim: ClassVar[int] = 1

    def evaluate(self, y: FloatArray) -> FloatArray:
        """``f`` at a batch of points.

        Args:
            y: a ``n x d`` array of points in the function's own frame.

        Returns:
            A ``n`` array of values, all >= 0.
        """
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] < self.min_dim:
            raise ProblemError(
                f"{self.name} evaluates a (n, d) array with d >= {self.min_dim}; got shape "
                f"{y.shape} (reshape a single point to (1, d))"
            )
        return self._evaluate(y)

    def optimum(self, dim: int) -> FloatArray:
        """The global minimizer in the function's own frame, a ``d`` array (the origin)."""
        return np.zeros(dim)

    @property
    def has_gaussian_expectation(self) -> bool:
        """Whether :meth:`gaussian_expectation` has a closed form for this function."""
        return type(self)._gaussian_expectation is not TestFunction._gaussian_expectation

    def gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        """``E f(y)`` for ``y ~ N(mean, covariance)``, in closed form.

        Args:
            mean: a ``d`` array.
            covariance: a ``d x d`` symmetric positive semi-definite array.

        Raises:
            NotImplementedError: the function has no closed form (see
                :attr:`has_gaussian_expectation`).
        """
        mean = np.asarray(mean, dtype=np.float64)
        covariance = np.asarray(covariance, dtype=np.float64)
        if mean.ndim != 1 or covariance.shape != (mean.size, mean.size):
            raise ProblemError(
                f"{self.name}: gaussian_expectation takes a (d,) mean and a (d, d) covariance; "
                f"got {mean.shape} and {covariance.shape}"
            )
        return float(self._gaussian_expectation(mean, covariance))

    @abstractmethod
    def _evaluate(self, y: FloatArray) -> FloatArray:
        """``f`` at the rows of a validated ``n x d`` float64 array; returns a ``n`` array."""

    def _gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        raise NotImplementedError(
            f"test function {self.name!r} has no closed-form Gaussian expectation; use a "
            f"Monte Carlo estimate (rollouts) instead"
        )


class SeparableQuadratic(TestFunction):
    """``f(y) = sum_i w_i y_i^2 = y^T H y`` with a diagonal Hessian ``H = diag(w)``, w > 0.

    For ``y ~ N(m, C)``: ``E f(y) = m^T H m + tr(H C) = sum_i w_i (m_i^2 + C_ii)``.
    Subclasses give the weights.
    """

    convex = True

    @abstractmethod
    def weights(self, dim: int) -> FloatArray:
        """The Hessian's diagonal ``w``, a ``d`` array of positive numbers."""

    def _evaluate(self, y: FloatArray) -> FloatArray:
        return np.asarray((y * y) @ self.weights(y.shape[1]), dtype=np.float64)

    def _gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        return float(self.weights(mean.size) @ (mean * mean + np.diagonal(covariance)))
