"""Seeded instances of a test function: a random rotation and a random shift.

An instance of ``f`` at dimension d is ``f_inst(x) = f(Q (x - x*) + o)``, with ``Q`` a Haar
orthogonal ``d x d`` matrix, ``x*`` uniform in ``[-1, 1]^d`` and ``o = f.optimum(d)``, so
``f_inst >= 0`` with its unique minimum ``f_inst(x*) = 0`` (COCO's instances, in the form of
method.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casbo_bench.problems.base import FloatArray, ProblemError
from casbo_bench.problems.functions.base import TestFunction


def haar_orthogonal(dim: int, rng: np.random.Generator) -> FloatArray:
    """A ``d x d`` orthogonal matrix drawn from the Haar (uniform) measure on O(d).

    The Q factor of a QR decomposition of a standard Gaussian matrix ``G = Q R``, with the
    column signs fixed so that ``diag(R) > 0``; without that fix, LAPACK's sign convention
    makes the law of Q not Haar (Mezzadri, "How to generate random matrices from the
    classical compact groups", 2007).

    >>> q = haar_orthogonal(3, np.random.default_rng(0))
    >>> bool(np.allclose(q @ q.T, np.eye(3)))
    True
    """
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    # diag(R) of a Gaussian matrix is non-zero with probability 1.
    return np.asarray(q * np.sign(np.diagonal(r)), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class FunctionInstance:
    """``f_inst(x) = f(Q (x - x*) + o)``: a test function moved by a rotation and a shift.

    Attributes:
        function: the test function ``f`` (its own frame).
        rotation: ``Q``, a ``d x d`` orthogonal array.
        shift: ``x*``, a ``d`` array: the instance's minimizer.
    """

    function: TestFunction
    rotation: FloatArray
    shift: FloatArray

    def __post_init__(self) -> None:
        d = self.shift.shape[0] if self.shift.ndim == 1 else -1
        if d < self.function.min_dim or self.rotation.shape != (d, d):
            raise ProblemError(
                f"an instance of {self.function.name} needs a (d,) shift with "
                f"d >= {self.function.min_dim} and a (d, d) rotation; got "
                f"{self.shift.shape} and {self.rotation.shape}"
            )

    @classmethod
    def sample(
        cls, function: TestFunction, dim: int, rng: np.random.Generator, rotated: bool = True
    ) -> FunctionInstance:
        """A random instance: ``x* ~ U[-1, 1]^d``, then ``Q`` Haar (``Q = I`` if not rotated).

        The shift is drawn first, so the rotated and unrotated instances of one generator
        state share their minimizer.
        """
        shift = rng.uniform(-1.0, 1.0, size=dim)
        rotation = haar_orthogonal(dim, rng) if rotated else np.eye(dim)
        return cls(function, rotation, shift)

    @property
    def dim(self) -> int:
        """d, the dimension of the instance."""
        return int(self.shift.shape[0])

    @property
    def minimizer(self) -> FloatArray:
        """``x*``, where ``f_inst`` is 0, a ``d`` array."""
        return self.shift

    def to_function_frame(self, x: FloatArray) -> FloatArray:
        """``y = Q (x - x*) + o`` for each row of a ``n x d`` array; returns ``n x d``."""
        return np.asarray(
            (x - self.shift) @ self.rotation.T + self.function.optimum(self.dim),
            dtype=np.float64,
        )

    def evaluate(self, x: FloatArray) -> FloatArray:
        """``f_inst`` at the rows of a ``n x d`` array; returns a ``n`` array."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ProblemError(
                f"this {self.function.name} instance evaluates (n, {self.dim}) arrays; "
                f"got shape {x.shape}"
            )
        return self.function.evaluate(self.to_function_frame(x))

    @property
    def has_gaussian_expectation(self) -> bool:
        """Whether ``E f_inst(x)`` under a Gaussian has a closed form."""
        return self.function.has_gaussian_expectation

    def gaussian_expectation(self, mean: FloatArray, covariance: FloatArray) -> float:
        """``E f_inst(x)`` for ``x ~ N(mean, covariance)``, in closed form.

        The affine map carries the law over: ``y = Q (x - x*) + o ~ N(Q (m - x*) + o,
        Q C Q^T)``, and ``E f(y)`` is the function's own closed form.

        Args:
            mean: a ``d`` array.
            covariance: a ``d x d`` array.
        """
        mean = np.asarray(mean, dtype=np.float64)
        covariance = np.asarray(covariance, dtype=np.float64)
        if mean.shape != (self.dim,) or covariance.shape != (self.dim, self.dim):
            raise ProblemError(
                f"this {self.function.name} instance takes a ({self.dim},) mean and a "
                f"({self.dim}, {self.dim}) covariance; got {mean.shape} and {covariance.shape}"
            )
        q = self.rotation
        mean_y = q @ (mean - self.shift) + self.function.optimum(self.dim)
        return self.function.gaussian_expectation(mean_y, q @ covariance @ q.T)
