"""xNES, exponential natural evolution strategies: the textbook natural-gradient reference.

Wierstra, Schaul, Glasmachers, Sun, Peters and Schmidhuber, "Natural Evolution Strategies",
JMLR 15 (2014), Algorithm 5; docs/method.md section 4b. The ``B x d`` blocks of a candidate
are searched jointly as one vector of ``D = B * d`` numbers under one Gaussian law
N(mu, sigma^2 B B^T) (here ``B`` is the ``D x D`` matrix the code calls ``factor``, not the
block count), starting from the problem's initial law: ``mu = mu0 1``, ``sigma = s0``,
``B = I``. One iteration, minimizing, with population ``N``:

1. draw ``s_i ~ N(0, I_D)`` and propose ``z_i = mu + sigma B s_i``, i = 1..N;
2. sort the candidates by ascending rollout loss (row sums of the told ``N x B`` losses;
   rank 1 is the best) and give rank ``i`` the utility

       u_i = max(0, ln(N/2 + 1) - ln i) / sum_j max(0, ln(N/2 + 1) - ln j) - 1/N,

   so the utilities sum to 0 and do not increase with the rank; ranks ``i >= N/2 + 1`` get
   exactly ``-1/N``.
   Tied losses share the average utility of the ranks they span, so the update does not
   depend on the order of equal losses; when all N losses are equal the utilities are 0 and
   the law stays as it was;
3. the natural gradient in the local coordinates ``s``,

       G_delta = sum_i u_i s_i
       G_M     = sum_i u_i (s_i s_i^T - I)
       G_sigma = tr(G_M) / D
       G_B     = G_M - G_sigma I

4. the exponential-map update (the right-hand sides use the old mu, sigma, B)

       mu    <- mu + eta_mu sigma B G_delta
       sigma <- sigma exp(eta_sigma G_sigma / 2)
       B     <- B expm(eta_B G_B / 2)

with the published rates ``eta_mu = 1``, ``eta_sigma = eta_B = (9 + 3 ln D) / (5 D sqrt(D))``
and ``N = 4 + floor(3 ln D)``.

``G_B`` is symmetric, so ``expm(eta_B G_B / 2) = V diag(exp(eta_B lam / 2)) V^T`` from its
symmetric eigendecomposition ``G_B = V diag(lam) V^T`` (:func:`symmetric_expm`). That is
exact up to the eigensolver's rounding, gives a positive definite matrix by construction
(positive eigenvalues, orthonormal V), and costs one ``eigh``, no more than a Pade
approximant (``scipy.linalg.expm`` treats the matrix as general, with no such structure). Since
``tr(G_B) = 0`` the factor keeps ``det B = 1``: sigma alone carries the scale.

The law is a dense ``D x D`` matrix and each update costs ``O(N D^2 + D^3)``: xNES is the
reference for small ``D`` (hundreds of numbers), not a method for ``K * d`` in the thousands.

Safeguards, each counted in ``safeguard_events`` and logged as a warning: sigma is kept at or
above the smallest normal float (:data:`SIGMA_FLOOR`), since once the multiplicative update
has driven it to 0 the law is a point mass for ever; and an update that would give a
non-finite mean, sigma or factor is rejected, keeping the law as it was. Neither acts in
ordinary runs: when the minimizer is not exactly 0, the candidates collapse onto the mean in
floating point (all losses tied, so a zero update) long before sigma nears the floor; at a
minimizer of exactly 0 (the 5-d sphere) sigma was still about 1e-108 after 40,000
evaluations.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    Scope,
    SearchSpace,
    default_population_size,
)

logger = logging.getLogger(__name__)

SIGMA_FLOOR = float(np.finfo(np.float64).tiny)
"""The smallest sigma kept: the smallest normal float64 (about 2.2e-308). Below it the
multiplicative update ``sigma exp(...)`` loses precision in subnormals and then reaches 0,
from which it can never recover."""


def xnes_learning_rate(search_dim: int) -> float:
    """Default ``eta_sigma = eta_B = (9 + 3 ln D) / (5 D sqrt(D))`` of a search over ``D``."""
    if search_dim < 1:
        raise OptimizerError(f"xnes: the search dimension must be >= 1; got {search_dim}")
    return (9 + 3 * math.log(search_dim)) / (5 * search_dim * math.sqrt(search_dim))


def rank_utilities(popsize: int) -> FloatArray:
    """The utilities ``u_1 >= ... >= u_N`` of ranks 1 (best) to N, summing to 0.

    ``u_i = max(0, ln(N/2 + 1) - ln i) / sum_j max(0, ln(N/2 + 1) - ln j) - 1/N``.

    >>> rank_utilities(4).round(3).tolist()
    [0.48, 0.02, -0.25, -0.25]
    """
    if popsize < 1:
        raise OptimizerError(f"xnes: the population size must be >= 1; got {popsize}")
    ranks = np.arange(1, popsize + 1, dtype=np.float64)
    weights = np.maximum(0.0, math.log(popsize / 2 + 1) - np.log(ranks))
    return np.asarray(weights / weights.sum() - 1.0 / popsize, dtype=np.float64)


def utilities(losses: FloatArray) -> FloatArray:
    """The utility of each of ``N`` candidates from its loss (lower is better).

    Candidate with rank ``i`` gets ``rank_utilities(N)[i - 1]``; candidates with equal losses
    share the average utility of the ranks they span, so the result does not depend on the
    order of equal losses and still sums to 0. All losses equal: all utilities 0.

    Args:
        losses: a ``N`` array of rollout losses.

    Returns:
        A ``N`` array of utilities, in the candidates' order.

    >>> utilities(np.array([3.0, 1.0, 2.0, 2.0])).round(3).tolist()
    [-0.25, 0.48, -0.115, -0.115]
    """
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.shape[0]
    if n == 0 or np.all(losses == losses[0]):
        return np.zeros(n)
    order = np.argsort(losses, kind="stable")
    _, counts = np.unique(losses[order], return_counts=True)
    group = np.repeat(np.arange(counts.size), counts)
    group_mean = np.bincount(group, weights=rank_utilities(n)) / counts
    result = np.empty(n)
    result[order] = group_mean[group]
    return result


def symmetric_expm(matrix: FloatArray) -> FloatArray:
    """``expm(S)`` of a symmetric ``D x D`` array ``S = V diag(lam) V^T``: ``V diag(e^lam) V^T``.

    Only the lower triangle of ``matrix`` is read (``numpy.linalg.eigh``).

    >>> symmetric_expm(np.diag([0.0, math.log(2.0)])).round(12).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return np.asarray((vectors * np.exp(eigenvalues)) @ vectors.T, dtype=np.float64)


@dataclass(frozen=True)
class NaturalGradient:
    """The natural gradient of one batch, in the local coordinates ``s``.

    Attributes:
        delta: ``G_delta = sum_i u_i s_i``, a ``D`` array.
        sigma: ``G_sigma = tr(G_M) / D``.
        factor: ``G_B = G_M - G_sigma I``, a symmetric traceless ``D x D`` array.
    """

    delta: FloatArray
    sigma: float
    factor: FloatArray


def natural_gradient(s: FloatArray, u: FloatArray) -> NaturalGradient:
    """``G_delta``, ``G_sigma`` and ``G_B`` from ``N x D`` draws ``s`` and ``N`` utilities ``u``.

    ``G_M = sum_i u_i (s_i s_i^T - I)``, split into its trace part ``G_sigma`` and its
    traceless part ``G_B``.
    """
    dim = s.shape[1]
    eye = np.eye(dim)
    g_m = (s.T * u) @ s - u.sum() * eye
    # Exactly symmetric: eigh reads one triangle, and the rounding of the product differs
    # between the two.
    g_m = 0.5 * (g_m + g_m.T)
    g_sigma = float(np.trace(g_m)) / dim
    return NaturalGradient(delta=u @ s, sigma=g_sigma, factor=g_m - g_sigma * eye)


@dataclass(frozen=True)
class XNESState:
    """The search law N(mean, sigma^2 factor factor^T) over ``D`` numbers.

    Attributes:
        mean: mu, a ``D`` array.
        sigma: the global step size, > 0.
        factor: B, a ``D x D`` array with ``det B = 1`` (up to rounding).
    """

    mean: FloatArray
    sigma: float
    factor: FloatArray

    @property
    def covariance(self) -> FloatArray:
        """``sigma^2 B B^T``, a ``D x D`` array."""
        scaled = self.sigma * self.factor
        return np.asarray(scaled @ scaled.T, dtype=np.float64)

    def propose(self, s: FloatArray) -> FloatArray:
        """``z_i = mu + sigma B s_i`` for a ``n x D`` array ``s``; a ``n x D`` array."""
        return np.asarray(self.mean + self.sigma * (s @ self.factor.T), dtype=np.float64)


@dataclass(frozen=True)
class XNESSettings:
    """The hyperparameters of an xNES optimizer, validated (see :class:`XNES`).

    Attributes:
        popsize: N, candidates per iteration.
        eta_mu: the mean's learning rate.
        eta_sigma: the step size's learning rate.
        eta_B: the factor's (the shape's) learning rate.
    """

    popsize: int
    eta_mu: float
    eta_sigma: float
    eta_B: float

    @classmethod
    def validated(
        cls,
        search_dim: int,
        *,
        popsize: int | None,
        eta_mu: float,
        eta_sigma: float | None,
        eta_B: float | None,
    ) -> XNESSettings:
        """Check every option against its domain and fill the dimension-dependent defaults.

        ``eta_sigma = eta_B = 0`` is allowed: it freezes the covariance (a mean-only search).

        Raises:
            OptimizerError: an option is outside its domain; the message names the fix.
        """
        if popsize is None:
            popsize = default_population_size(search_dim)
        if isinstance(popsize, bool) or not isinstance(popsize, int | np.integer) or popsize < 2:
            raise OptimizerError(f"xnes: popsize must be an integer >= 2; got {popsize!r}")
        default_rate = xnes_learning_rate(search_dim)
        rates = {
            "eta_mu": eta_mu,
            "eta_sigma": default_rate if eta_sigma is None else eta_sigma,
            "eta_B": default_rate if eta_B is None else eta_B,
        }
        for key, value in rates.items():
            lowest = "> 0" if key == "eta_mu" else ">= 0"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.floating | np.integer)
                or not math.isfinite(value)
                or value < 0
                or (key == "eta_mu" and value == 0)
            ):
                raise OptimizerError(f"xnes: {key} must be a finite number {lowest}; got {value!r}")
        return cls(
            popsize=int(popsize),
            eta_mu=float(rates["eta_mu"]),
            eta_sigma=float(rates["eta_sigma"]),
            eta_B=float(rates["eta_B"]),
        )


@dataclass(frozen=True)
class XNESStep:
    """The result of :func:`xnes_step`.

    Attributes:
        state: the updated law.
        sigma_floored: whether sigma was raised to :data:`SIGMA_FLOOR`.
        rejected: whether the update was non-finite and the old law kept.
    """

    state: XNESState
    sigma_floored: bool
    rejected: bool


def xnes_step(
    state: XNESState, s: FloatArray, losses: FloatArray, settings: XNESSettings
) -> XNESStep:
    """One xNES update (see the module docstring) of ``state`` from one complete batch.

    Args:
        state: the law the batch was drawn from.
        s: the ``N x D`` standard normal draws behind the candidates
            (``z_i = mu + sigma B s_i``).
        losses: the ``N`` rollout losses of the candidates (lower is better).
        settings: the learning rates (``popsize`` is not read: ``N`` is ``s``'s).

    Returns:
        An :class:`XNESStep` with the new law; ``state`` is not changed.
    """
    grad = natural_gradient(s, utilities(losses))
    ### Mean: a step along the utility-weighted mean of the draws, in the law's own frame.
    mean = state.mean + settings.eta_mu * state.sigma * (state.factor @ grad.delta)
    ### Scale: the trace part of G_M grows or shrinks sigma multiplicatively.
    sigma = state.sigma * math.exp(settings.eta_sigma * grad.sigma / 2)
    ### Shape: the traceless part turns and stretches B, keeping det B = 1.
    factor = state.factor @ symmetric_expm(settings.eta_B * grad.factor / 2)
    if not (np.isfinite(mean).all() and math.isfinite(sigma) and np.isfinite(factor).all()):
        return XNESStep(state=state, sigma_floored=False, rejected=True)
    floored = sigma < SIGMA_FLOOR
    new_state = XNESState(mean=mean, sigma=max(sigma, SIGMA_FLOOR), factor=factor)
    return XNESStep(state=new_state, sigma_floored=floored, rejected=False)


class XNES(Optimizer):
    """xNES (Wierstra et al. 2014) on the flattened ``B x d`` candidate, scope per_step.

    One full-covariance Gaussian over all ``D = B * d`` numbers, started at the problem's
    initial law; the update uses only the ranks of the rollout losses (row sums of the told
    ``n x B`` step losses), so it is invariant to any increasing transformation of them.

    Args:
        space: the search space; the ``B x d`` blocks are searched as one vector of
            ``D = B * d`` numbers (``B = 1`` on a plain problem).
        seed: seeds the NumPy generator that draws every ``s``.
        popsize: N, candidates per iteration (default ``4 + floor(3 ln D)``).
        eta_mu: the mean's learning rate (default 1).
        eta_sigma: the step size's learning rate (default ``(9 + 3 ln D) / (5 D sqrt(D))``).
        eta_B: the shape's learning rate (default the same as ``eta_sigma``).

    Attributes:
        settings: the validated :class:`XNESSettings`.
        state: the current :class:`XNESState` (replaced, never changed in place).
        iteration: updates done so far.

    >>> opt = XNES(SearchSpace(n_blocks=3, dim=2), seed=0)
    >>> candidates = opt.ask()
    >>> candidates.shape
    (9, 3, 2)
    >>> opt.tell(candidates, (candidates**2).sum(axis=2))
    >>> opt.gaussian_law().covariances.shape
    (3, 2, 2)
    >>> opt.resolved_settings()["popsize"]
    9
    """

    name = "xnes"
    uses_torch = False
    fresh_kind = "law"
    scope: ClassVar[Scope] = "per_step"

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        *,
        popsize: int | None = None,
        eta_mu: float = 1.0,
        eta_sigma: float | None = None,
        eta_B: float | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(space, seed, **unknown)
        dim = space.search_dim
        self.settings = XNESSettings.validated(
            dim, popsize=popsize, eta_mu=eta_mu, eta_sigma=eta_sigma, eta_B=eta_B
        )
        self.state = XNESState(
            mean=np.full(dim, float(space.initial_mean)),
            sigma=float(space.initial_scale),
            factor=np.eye(dim),
        )
        self.iteration = 0
        self._rng = np.random.default_rng(self.seed)
        self._s: FloatArray | None = None

    @property
    def popsize(self) -> int:
        """N, the candidates asked for per iteration."""
        return self.settings.popsize

    def _to_blocks(self, flat: FloatArray) -> FloatArray:
        """A ``n x D`` array as ``n x B x d``."""
        return flat.reshape(flat.shape[0], self.space.n_blocks, self.space.dim)

    def _ask(self) -> FloatArray:
        """``N x B x d`` candidates ``mu + sigma B s`` from fresh ``s ~ N(0, I_D)``."""
        self._s = self._rng.standard_normal((self.popsize, self.space.search_dim))
        return self._to_blocks(self.state.propose(self._s))

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Update the law from the rollout losses (row sums of ``losses``) of the last batch.

        The update uses the draws ``s`` of the last :meth:`ask`, not ``candidates``.
        """
        if self._s is None or self._s.shape[0] != candidates.shape[0]:
            raise OptimizerError(f"{self.name}: tell() does not match the last ask()")
        s, self._s = self._s, None
        step = xnes_step(self.state, s, losses.sum(axis=1), self.settings)
        self.iteration += 1
        self.state = step.state
        if step.rejected:
            self.safeguard_events += 1
            logger.warning(
                "%s: iteration %d: the update gave a non-finite law; it was rejected and the "
                "law kept as it was",
                self.name,
                self.iteration,
            )
        if step.sigma_floored:
            self.safeguard_events += 1
            logger.warning(
                "%s: iteration %d: sigma underflowed; it was raised to %g",
                self.name,
                self.iteration,
                SIGMA_FLOOR,
            )

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x B x d`` fresh draws ``mu + sigma B eps`` of the final law, ``eps`` from ``rng``."""
        eps = rng.standard_normal((n, self.space.search_dim))
        return self._to_blocks(self.state.propose(eps))

    def gaussian_law(self) -> GaussianLaw:
        """The per-block laws: the ``B x d`` means and the ``d x d`` diagonal blocks of the
        joint covariance ``sigma^2 B B^T`` (the cross-block covariances are not returned)."""
        b, d = self.space.n_blocks, self.space.dim
        rows = (self.state.sigma * self.state.factor).reshape(b, d, -1)
        covariances = np.einsum("bik,bjk->bij", rows, rows)
        return GaussianLaw(means=self.state.mean.reshape(b, d).copy(), covariances=covariances)
