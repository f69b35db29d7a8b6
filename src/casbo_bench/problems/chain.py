"""Unknown linear-Gaussian dynamics: a DDPM-like chain of K noise injections.

Generation runs steps k = K, ..., 1 (the contract of :mod:`casbo_bench.problems.base`):

    x_{K-1} = xi_K                                  (b_K = 1: the initial latent)
    x_{k-1} = a_k R_k x_k + b_k xi_k,   k < K

with ``a_k = sqrt(alpha_k)``, ``b_k = sqrt(1 - alpha_k)``, ``alpha_k = 1 - beta_k`` and
``R_k`` seeded random orthogonal matrices. Under the unguided sampler (every
``xi_k ~ N(0, I)``) every state is ``N(0, I)``: if ``x_k ~ N(0, I)`` then
``Cov x_{k-1} = alpha_k R_k R_k^T + (1 - alpha_k) I = I``. K = 1 is the identity chain
``x_0 = xi_1`` (a plain problem).

The schedule (RECONSTRUCTED, method.md section 5) is linear in the step index,
``beta_k = beta_min + (beta_max - beta_min) (k - 1) / (K - 2)`` for k = 1..K-1
(``beta_1 = beta_min`` when K = 2), with ``beta_min = 0.05`` and ``beta_max = 0.5`` by
default. As in DDPM, noise is injected strongly early in generation and weakly at the end.
``beta_max = 0.5`` keeps ``a_k >= 0.71``, so every state carries its predecessor forward;
``beta_min = 0.05`` keeps ``b_k >= 0.22``, so even the last injections move the final
sample and every step's law is worth adapting. The weight of the initial latent in
``x_0``, ``prod_{k<K} a_k``, is 0.69 at K = 3, 0.21 at K = 10 and 2.5e-4 at K = 50: long
chains forget their starting noise, as diffusion samplers do.

Arrays are in generation order: position ``j = 0, ..., K-1`` holds step ``k = K - j`` and
the state ``x_{K-1-j}`` it produces.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from casbo_bench.names import SCORINGS
from casbo_bench.problems.base import FloatArray, Problem, ProblemError
from casbo_bench.problems.instance import FunctionInstance, haar_orthogonal

BETA_MIN = 0.05
"""Default variance of the last (k = 1) injection, relative to the state."""

BETA_MAX = 0.5
"""Default variance of the first transition's (k = K - 1) injection."""


def linear_beta_schedule(n_steps: int, beta_min: float, beta_max: float) -> FloatArray:
    """``beta`` in generation order: a ``K`` array, entry ``j`` for step ``k = K - j``.

    Entry 0 (the initial latent, no transition) is 1, so that ``b_K = sqrt(beta_K) = 1``;
    entries 1..K-1 fall linearly from ``beta_max`` (step K-1) to ``beta_min`` (step 1).

    >>> linear_beta_schedule(4, 0.05, 0.5).tolist()
    [1.0, 0.5, 0.275, 0.05]
    """
    if not 0.0 < beta_min <= beta_max < 1.0:
        raise ProblemError(
            f"the beta schedule needs 0 < beta_min <= beta_max < 1; got beta_min={beta_min}, "
            f"beta_max={beta_max}"
        )
    by_step = np.linspace(beta_min, beta_max, n_steps - 1)  # k = 1, ..., K-1
    return np.concatenate([[1.0], by_step[::-1]])


@dataclass(frozen=True, eq=False)
class LinearGaussianChain:
    """``x_{k-1} = a_k R_k x_k + b_k xi_k`` for k = K..1, in generation order.

    The rotations share one dense factor: ``R_k = S_k P_k Q`` with ``Q`` Haar orthogonal,
    ``P_k`` a uniform random permutation and ``S_k`` uniform random signs. Each ``R_k`` is
    then itself Haar distributed (the Haar law is invariant under left multiplication by a
    fixed orthogonal matrix), while the chain stores one ``d x d`` matrix instead of K of
    them (K = 50 dense rotations at d = 2000 would take 1.6 GB) and is drawn with one QR.

    Attributes:
        drift: ``a``, a ``K`` array in generation order (``a[0] = 0``: no predecessor).
        scale: ``b``, a ``K`` array in generation order (``b[0] = 1``), all positive.
        base_rotation: ``Q``, a ``d x d`` orthogonal array.
        permutations: a ``K x d`` integer array, row j the permutation of ``P`` at position
            j: ``(R x)_i = s_i (Q x)_{perm_i}`` (row 0 unused).
        signs: a ``K x d`` array of +-1, row j the diagonal of ``S`` (row 0 unused).
    """

    drift: FloatArray
    scale: FloatArray
    base_rotation: FloatArray
    permutations: NDArray[np.intp]
    signs: FloatArray

    def __post_init__(self) -> None:
        k, d = self.permutations.shape
        if (
            self.drift.shape != (k,)
            or self.scale.shape != (k,)
            or self.signs.shape != (k, d)
            or self.base_rotation.shape != (d, d)
            or not (self.scale > 0).all()
        ):
            raise ProblemError(
                f"a chain needs (K,) drift and positive scale, (K, d) permutations and signs "
                f"and a (d, d) rotation; got {self.drift.shape}, {self.scale.shape}, "
                f"{self.permutations.shape}, {self.signs.shape}, {self.base_rotation.shape}"
            )

    @classmethod
    def sample(
        cls,
        dim: int,
        n_steps: int,
        rng: np.random.Generator,
        beta_min: float = BETA_MIN,
        beta_max: float = BETA_MAX,
    ) -> LinearGaussianChain:
        """A random chain of ``K = n_steps`` steps at dimension ``d = dim``.

        ``a_k = sqrt(1 - beta_k)`` and ``b_k = sqrt(beta_k)`` from
        :func:`linear_beta_schedule`; ``Q`` Haar, ``P_k`` and ``S_k`` uniform, all from
        ``rng``. K = 1 gives the identity chain ``x_0 = xi_1`` (no rotation is drawn:
        ``Q = I``, unused).
        """
        beta = linear_beta_schedule(n_steps, beta_min, beta_max)
        base_rotation = haar_orthogonal(dim, rng) if n_steps > 1 else np.eye(dim)
        permutations = np.stack(
            [np.arange(dim)] + [rng.permutation(dim) for _ in range(n_steps - 1)]
        )
        signs = np.ones((n_steps, dim))
        signs[1:] = rng.choice([-1.0, 1.0], size=(n_steps - 1, dim))
        return cls(np.sqrt(1.0 - beta), np.sqrt(beta), base_rotation, permutations, signs)

    @property
    def n_steps(self) -> int:
        """K, the number of injections."""
        return int(self.scale.shape[0])

    @property
    def dim(self) -> int:
        """d, the size of each state and noise."""
        return int(self.base_rotation.shape[0])

    def rotation(self, position: int) -> FloatArray:
        """``R_k = S_k P_k Q`` of the step at generation position ``j = K - k >= 1``, ``d x d``."""
        if not 1 <= position < self.n_steps:
            raise ProblemError(
                f"positions 1..{self.n_steps - 1} have a rotation (position 0 is the initial "
                f"latent); got {position}"
            )
        return np.asarray(
            self.signs[position, :, None] * self.base_rotation[self.permutations[position]],
            dtype=np.float64,
        )

    def states(self, noise: FloatArray) -> FloatArray:
        """Every state of a batch of rollouts.

        Args:
            noise: a ``n x K x d`` array of injections, generation order.

        Returns:
            A ``n x K x d`` array: ``[:, j]`` is ``x_{K-1-j}``; ``[:, -1]`` is ``x_0``.
        """
        noise = self._check(noise, "noise", (None, self.n_steps, self.dim))
        states = np.empty_like(noise)
        states[:, 0] = noise[:, 0]
        for j in range(1, self.n_steps):
            rotated = (states[:, j - 1] @ self.base_rotation.T)[:, self.permutations[j]]
            states[:, j] = self.drift[j] * self.signs[j] * rotated + self.scale[j] * noise[:, j]
        return states

    def state_moments(
        self, means: FloatArray, covariances: FloatArray
    ) -> Iterator[tuple[FloatArray, FloatArray]]:
        """Mean and covariance of each state, in generation order, one step at a time.

        With ``xi_k ~ N(m_k, C_k)`` independent, the chain is linear, so every state is
        Gaussian, exactly: ``mu_{K-1} = m_K``, ``S_{K-1} = C_K`` and

            mu_{k-1} = a_k R_k mu_k + b_k m_k,    S_{k-1} = a_k^2 R_k S_k R_k^T + b_k^2 C_k.

        Args:
            means: a ``K x d`` array of noise means, generation order.
            covariances: a ``K x d x d`` array of noise covariances, generation order.

        Yields:
            ``(mu, S)``: a ``d`` array and a ``d x d`` array, for x_{K-1}, ..., x_0. Only
            one covariance is held at a time (K of them at d = 2000 would take 1.6 GB).
        """
        k, d = self.n_steps, self.dim
        means = self._check(means, "means", (k, d))
        covariances = self._check(covariances, "covariances", (k, d, d))
        mean, covariance = means[0], covariances[0]
        yield mean, covariance
        q = self.base_rotation
        for j in range(1, self.n_steps):
            perm, signs = self.permutations[j], self.signs[j]
            mean = self.drift[j] * signs * (q @ mean)[perm] + self.scale[j] * means[j]
            rotated = (q @ covariance @ q.T)[np.ix_(perm, perm)] * np.outer(signs, signs)
            covariance = self.drift[j] ** 2 * rotated + self.scale[j] ** 2 * covariances[j]
            # Round-off makes Q S Q^T slightly asymmetric; errors would otherwise pile up
            # over K steps.
            covariance = 0.5 * (covariance + covariance.T)
            yield mean, covariance

    def propagate_moments(
        self, means: FloatArray, covariances: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """All states' moments at once (see :meth:`state_moments`).

        Returns:
            A ``K x d`` array of state means and a ``K x d x d`` array of state
            covariances, generation order (``[-1]`` is x_0).
        """
        moments = list(self.state_moments(means, covariances))
        return np.stack([m for m, _ in moments]), np.stack([c for _, c in moments])

    def steering_means(self, target: FloatArray) -> FloatArray:
        """Noise means that put the mean of every state at ``target``.

        ``m_K = target`` and ``m_k = (target - a_k R_k target) / b_k`` (possible because
        every ``b_k > 0``); with covariances shrunk to 0 every state then equals ``target``.

        Args:
            target: a ``d`` array.

        Returns:
            A ``K x d`` array of noise means, generation order.
        """
        target = self._check(target, "target", (self.dim,))
        rotated = (target @ self.base_rotation.T)[self.permutations] * self.signs
        means = (target - self.drift[:, None] * rotated) / self.scale[:, None]
        means[0] = target
        return np.asarray(means, dtype=np.float64)

    def _check(self, array: FloatArray, label: str, shape: tuple[int | None, ...]) -> FloatArray:
        """``array`` as float64, or ProblemError if it does not have ``shape`` (None: any)."""
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != len(shape) or any(
            size is not None and size != actual
            for size, actual in zip(shape, array.shape, strict=True)
        ):
            expected = ", ".join("n" if size is None else str(size) for size in shape)
            raise ProblemError(f"{label} must have shape ({expected}); got {array.shape}")
        return array


def step_weights(scoring: str, n_steps: int) -> FloatArray:
    """The loss weights ``w`` in generation order, a ``K`` array.

    ``"final"``: only x_0 is scored (``w_1 = 1``, the last entry). ``"cumulative"``: every
    state is scored, ``w_k = 1/K``, so the loss stays on the scale of one evaluation of f.

    >>> step_weights("final", 3).tolist(), step_weights("cumulative", 2).tolist()
    ([0.0, 0.0, 1.0], [0.5, 0.5])
    """
    if scoring == "final":
        weights = np.zeros(n_steps)
        weights[-1] = 1.0
        return weights
    if scoring == "cumulative":
        return np.full(n_steps, 1.0 / n_steps)
    raise ProblemError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")


class ChainProblem(Problem):
    """A test-function instance scored along a linear-Gaussian chain.

    Step losses ``w_k f_inst(x_{k-1})`` (see :func:`step_weights`), the same instance
    scoring every state; the rollout loss is their sum.

    The infimum of the expected loss is ``J* = 0`` for every scoring: ``f_inst >= 0`` gives
    ``J >= 0``, and since every ``b_k > 0`` the noise means can steer the mean of every state
    to the minimizer ``x*`` (:meth:`LinearGaussianChain.steering_means`); as the
    covariances shrink to 0 every state tends to ``x*`` and ``J`` to ``f_inst(x*) = 0``. It is
    an infimum, not attained by any non-degenerate Gaussian law.

    Attributes:
        instance: the scored function instance.
        chain: the dynamics.
        scoring: ``"final"`` or ``"cumulative"``.
        weights: ``w`` in generation order, a ``K`` array.
    """

    optimal_loss = 0.0

    def __init__(
        self, instance: FunctionInstance, chain: LinearGaussianChain, scoring: str = "final"
    ) -> None:
        if chain.dim != instance.dim:
            raise ProblemError(
                f"the chain has dimension {chain.dim} but the instance {instance.dim}; build "
                f"both at the same d"
            )
        self.instance = instance
        self.chain = chain
        self.weights = step_weights(scoring, chain.n_steps)
        self.scoring = scoring
        self.name = instance.function.name
        self.dim = chain.dim
        self.n_steps = chain.n_steps

    def rollout(self, noise: FloatArray) -> FloatArray:
        """Step losses ``w_k f_inst(x_{k-1})`` of a ``n x K x d`` batch; a ``n x K`` array."""
        noise = self.check_noise(noise)
        n = noise.shape[0]
        states = self.chain.states(noise)
        scored = np.flatnonzero(self.weights)
        losses = np.zeros((n, self.n_steps))
        values = self.instance.evaluate(states[:, scored].reshape(n * scored.size, self.dim))
        losses[:, scored] = values.reshape(n, scored.size) * self.weights[scored]
        return losses

    @property
    def has_expected_loss(self) -> bool:
        """True where the test function has a closed-form Gaussian expectation."""
        return self.instance.has_gaussian_expectation

    def expected_loss(self, means: FloatArray, covariances: FloatArray) -> float:
        """``J(theta) = sum_k w_k E f_inst(x_{k-1})``, exact, with ``xi_k ~ N(m_k, C_k)``.

        Each state is Gaussian with the moments of :meth:`LinearGaussianChain.state_moments`;
        each term is the instance's closed-form Gaussian expectation.

        Args:
            means: a ``K x d`` array of noise means, generation order.
            covariances: a ``K x d x d`` array of noise covariances, generation order.

        Raises:
            NotImplementedError: the function has no closed-form Gaussian expectation
                (estimate J by Monte Carlo with :meth:`rollout` instead).
        """
        if not self.has_expected_loss:
            raise NotImplementedError(
                f"problem {self.name!r} has no closed-form expected loss (its test function "
                f"has no Gaussian expectation); estimate it from rollouts instead"
            )
        total = 0.0
        for weight, (mean, covariance) in zip(
            self.weights, self.chain.state_moments(means, covariances), strict=True
        ):
            if weight != 0.0:
                total += weight * self.instance.gaussian_expectation(mean, covariance)
        return total
