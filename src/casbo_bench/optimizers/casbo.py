"""CASBO: covariance-adaptive sequential black-box optimization of per-step Gaussian laws.

Read :mod:`casbo_bench.optimizers.casbo_reference` first: it states one iteration plainly, in
the precision form of method.md section 3, for one block. This module is the fast form of the
same update, batched over the ``B`` blocks in torch, and the optimizer that runs it.

Each block ``b`` (one injected noise of the sampler's chain, generation order) carries a law
N(mu_b, A_b A_b^T), starting from the pre-trained law mu_b = 0, A_b = I. One iteration:

1. draw ``eps ~ N(0, I)`` of shape ``N x B x d`` and propose ``z = mu + A eps``;
2. from the told ``N x B`` step losses form the score-to-go ``G[:, b] = sum_{j >= b} l[:, j]``
   and normalize each column over the population into ``g`` (z-score by default);
3. whitened natural-gradient step, with ``beta_t`` the step size,

       M     = I + beta_t (1/N) sum_i g_i eps_i eps_i^T
       A    <- A M^{-1/2}
       mu   <- mu - beta_t A_old M^{-1} g_bar,     g_bar = (1/N) sum_i g_i eps_i

   (``mean_rule="first_order"`` drops the ``M^{-1}``, as INGO's published code does).

M is the identity plus a term of rank at most ``r = min(d, N)`` that lives in the span of
the ``eps_i``. A thin QR of the ``d x N`` matrix of ``eps`` (``eps^T = Q R``) and the
eigendecomposition of the small ``r x r`` matrix ``S = beta_t R diag(g / N) R^T = V diag(lam)
V^T`` give ``M = I + U diag(lam) U^T`` with ``U = Q V`` orthonormal, so every matrix function
of M is a rank-``r`` correction of the identity:

    f(M) = I + U diag(f(1 + lam) - 1) U^T,     A f(M) = A + (A U) diag(f(1 + lam) - 1) U^T,

which costs ``O(d^2 N)`` per block: no ``d x d`` inverse, eigendecomposition or Cholesky
factorization is ever formed.

The positive-definiteness safeguard: M's eigenvalues are 1 off the subspace and ``1 + lam_j``
on it. An eigenvalue below ``pd_floor`` is raised to ``pd_floor`` before ``M^{-1/2}`` and
``M^{-1}`` are formed; since ``A A^T`` is multiplied by ``1 / (1 + lam_j)`` along ``A u_j``,
this caps how much one step can widen the law (by ``1 / pd_floor`` in variance). Every block
update it changes is counted in ``safeguard_events`` and logged as a warning.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import numpy as np
import torch
from torch import Tensor

from casbo_bench.devices import resolve_device
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

Normalization = Literal["zscore", "rank", "none"]
MeanRule = Literal["exact", "first_order"]
StepSchedule = Literal["constant", "inverse_sqrt"]
DtypeName = Literal["float64", "float32"]

NORMALIZATIONS: tuple[Normalization, ...] = ("zscore", "rank", "none")
MEAN_RULES: tuple[MeanRule, ...] = ("exact", "first_order")
STEP_SCHEDULES: tuple[StepSchedule, ...] = ("constant", "inverse_sqrt")
DTYPES: dict[DtypeName, torch.dtype] = {"float64": torch.float64, "float32": torch.float32}

DEFAULT_PD_FLOOR = 0.25
"""Default lower bound on the eigenvalues of M.

Along an eigenvector the step multiplies the law's variance by ``1 / (1 + lam_j)``, so a floor
of 1/4 lets one iteration at most double a standard deviation. With the default z-scored
scores and ``beta0 = 1/d`` it is a safeguard, not part of the method: M's smallest eigenvalue
falls that low when one sample is far better than the rest, which at d >= 10 is rare (on the
ellipsoid at d = 3, 5, 10, five runs each to a loss of 1e-6, it never acted). At d <= 5,
where ``beta0 = 1/d`` is large, M can be indefinite, and the floor is what keeps the law
defined (at d = 2: twice in about 430 iterations).
"""


def casbo_population_size(dim: int) -> int:
    """Default population ``N = 4 + floor(3 ln d)``, rounded up to an even number."""
    n = default_population_size(dim)
    return n + n % 2


BETA0_RULES: dict[str, Callable[[int], float]] = {
    "1/d": lambda dim: 1.0 / dim,
    "1/sqrt(d)": lambda dim: 1.0 / math.sqrt(dim),
}
"""Named base step sizes as functions of d: ``"1/d"`` is INGO's full-covariance default (the
primary setting); ``"1/sqrt(d)"`` is what the diagonal ("fast") INGO port uses."""


def resolve_beta0(method: str, beta0: float | str, dim: int) -> tuple[float, str]:
    """``(beta0 as a number at dimension dim, its rule)`` for a named rule or a number.

    A rule of :data:`BETA0_RULES` gives its value at ``dim``; a number is a ``"constant"``.

    >>> resolve_beta0("casbo", "1/sqrt(d)", 16), resolve_beta0("casbo", 0.3, 16)
    ((0.25, '1/sqrt(d)'), (0.3, 'constant'))

    Raises:
        OptimizerError: an unknown rule, or a number that is not finite and > 0.
    """
    if isinstance(beta0, str):
        if beta0 not in BETA0_RULES:
            raise OptimizerError(
                f"{method}: unknown beta0 rule {beta0!r}; give one of "
                f"{', '.join(BETA0_RULES)} or a number > 0"
            )
        return BETA0_RULES[beta0](dim), beta0
    if isinstance(beta0, bool) or not isinstance(beta0, int | float) or not beta0 > 0:
        raise OptimizerError(
            f"{method}: beta0 must be one of {', '.join(BETA0_RULES)} or a number > 0; "
            f"got {beta0!r}"
        )
    if not math.isfinite(beta0):
        raise OptimizerError(f"{method}: beta0 must be finite; got {beta0!r}")
    return float(beta0), "constant"


def step_size(beta0: float, iteration: int, schedule: StepSchedule) -> float:
    """The step size ``beta_t`` of iteration ``t = iteration`` (1-based).

    ``"constant"``: ``beta_t = beta0``; ``"inverse_sqrt"``: ``beta_t = beta0 / sqrt(t)``, the
    decaying schedule the convergence theory assumes.
    """
    if iteration < 1:
        raise OptimizerError(f"iterations are counted from 1; got {iteration}")
    if schedule == "constant":
        return beta0
    if schedule == "inverse_sqrt":
        return beta0 / math.sqrt(iteration)
    raise OptimizerError(f"unknown step_schedule {schedule!r}; choose one of {STEP_SCHEDULES}")


def score_to_go(losses: Tensor) -> Tensor:
    """Score-to-go ``G[:, b] = sum_{j >= b} losses[:, j]`` of a ``N x B`` tensor of step losses.

    Blocks are in generation order, so ``G[:, 0]`` is the whole rollout's loss and
    ``G[:, B - 1]`` the last step's.
    """
    return losses.flip(-1).cumsum(-1).flip(-1)


def normalize_scores(scores: Tensor, normalization: Normalization) -> tuple[Tensor, Tensor]:
    """Normalize each column of a ``N x B`` tensor of scores over the population.

    - ``"zscore"``: ``(G - mean) / std`` with the population standard deviation;
    - ``"rank"``: centred ranks (ties share their average rank) scaled to unit variance;
    - ``"none"``: ``G`` itself.

    A column whose ``N`` scores are all equal carries no information; under ``"zscore"`` and
    ``"rank"`` its update is skipped, which the returned ``g`` expresses as a zero column
    (``g = 0`` makes ``M = I`` and ``g_bar = 0``).

    Returns:
        ``(g, active)``: the ``N x B`` normalized scores and a ``B`` boolean tensor, False for
        the skipped columns.
    """
    if normalization == "none":
        return scores, torch.ones(scores.shape[-1], dtype=torch.bool, device=scores.device)
    if normalization not in NORMALIZATIONS:
        raise OptimizerError(
            f"unknown normalization {normalization!r}; choose one of {NORMALIZATIONS}"
        )
    # Decided on the raw scores, exactly: equal scores may not give a mean equal to them,
    # and z-scoring that rounding residue would turn it into a full-size update.
    active = scores.amax(dim=0) > scores.amin(dim=0)
    if normalization == "rank":
        below = (scores.unsqueeze(1) < scores.unsqueeze(0)).sum(dim=0)
        ties = (scores.unsqueeze(1) == scores.unsqueeze(0)).sum(dim=0)
        scores = below.to(scores.dtype) + 0.5 * (ties.to(scores.dtype) - 1.0)
    centred = scores - scores.mean(dim=0)
    spread = centred.square().mean(dim=0).sqrt()
    g = torch.where(active, centred / torch.where(active, spread, 1.0), 0.0)
    return g, active


REUSE_ASPECT = 2
""":func:`whitened_update` reads ``A U`` off the proposal's ``A eps`` where ``d >= 2 N``.

It divides by R, the ``N x N`` factor of ``eps^T = Q R``, whose condition number is that of
the ``d x N`` standard normal matrix ``eps^T``: about ``(sqrt(d) + sqrt(N)) / (sqrt(d) -
sqrt(N))``, at most about 6 for ``d >= 2 N``, and it finds R as the Cholesky factor of the Gram
``eps eps^T``, whose condition number is that squared (about 34): together they cost about two
of float64's 16 digits. As d nears N the condition number has no bound, and the update takes
the Householder QR and multiplies by A again instead.
"""


@dataclass(frozen=True)
class WhitenedStep:
    """The result of :func:`whitened_update` for ``B`` blocks.

    Attributes:
        mean: the new means, a ``B x d`` tensor.
        factor: the new square roots A (``A A^T`` = covariance), a ``B x d x d`` tensor.
        smallest_eigenvalue: the smallest eigenvalue of each block's M before the floor,
            a ``B`` tensor.
        clipped: a ``B`` boolean tensor, True where the floor raised an eigenvalue.
    """

    mean: Tensor
    factor: Tensor
    smallest_eigenvalue: Tensor
    clipped: Tensor


def whitened_update(
    mean: Tensor,
    factor: Tensor,
    eps: Tensor,
    g: Tensor,
    beta: float,
    mean_rule: MeanRule = "exact",
    pd_floor: float = DEFAULT_PD_FLOOR,
    *,
    deviations: Tensor | None = None,
    overwrite_factor: bool = False,
) -> WhitenedStep:
    """One whitened CASBO step for ``B`` blocks at once (see the module docstring).

    ``M = I + beta (1/N) sum_i g_i eps_i eps_i^T``; ``A <- A M^{-1/2}``;
    ``mu <- mu - beta A M^{-1} g_bar`` (``"exact"``) or ``mu - beta A g_bar``
    (``"first_order"``), with ``g_bar = (1/N) sum_i g_i eps_i`` and M's eigenvalues floored at
    ``pd_floor``.

    Args:
        mean: a ``B x d`` tensor of means mu.
        factor: a ``B x d x d`` tensor of square roots A of the covariances.
        eps: a ``N x B x d`` tensor of the standard normal draws behind the candidates
            (``z = mu + A eps``).
        g: a ``N x B`` tensor of normalized scores (lower is better).
        beta: the step size beta_t > 0.
        mean_rule: ``"exact"`` or ``"first_order"``.
        pd_floor: the floor on M's eigenvalues, in (0, 1].
        deviations: the ``N x B x d`` products ``A eps`` behind the candidates (``z - mu``),
            as the caller formed them to propose. Where ``N <= d / REUSE_ASPECT``, ``A U`` is
            read off them instead of multiplying by A again: ``A eps^T = (A Q) R`` with R
            square and well conditioned there, so ``A U = (A eps^T) R^{-1} V``, ``O(d N^2)``;
            R then comes from the Cholesky factor of the ``N x N`` Gram ``eps eps^T``.
        overwrite_factor: update ``factor`` in place and return it as the new factor (for a
            caller that owns it): saves allocating, and writing into, a second ``B x d x d``.

    Returns:
        A :class:`WhitenedStep`. Per block it costs one or two ``d x d`` by ``d x r`` products
        (``A + (A U) diag(f) U^T`` as one product that adds into A, and ``A U`` unless it is
        read off ``deviations``), plus ``O(d N^2)`` for the QR and ``O(N^3)`` for the
        eigendecomposition.

    >>> eps = torch.randn(6, 1, 3, generator=torch.Generator().manual_seed(0))
    >>> step = whitened_update(torch.zeros(1, 3), torch.eye(3)[None], eps, torch.zeros(6, 1), 0.5)
    >>> torch.equal(step.factor, torch.eye(3)[None])  # g = 0: nothing to learn, M = I
    True
    """
    n, dim = eps.shape[0], eps.shape[-1]
    eps_t = eps.permute(1, 2, 0)  # B x d x N: columns are the eps_i
    weights = g.transpose(0, 1) / n  # B x N: g_i / N
    reused = None if deviations is None or REUSE_ASPECT * n > dim else deviations.permute(1, 2, 0)
    if reused is not None:
        # Cholesky QR: R^T R = eps eps^T (the N x N Gram), so Q = eps^T R^{-1} is never formed
        # (no O(d N^2) Householder work); squaring R's condition number is harmless here.
        r = torch.linalg.cholesky(eps_t.transpose(-1, -2) @ eps_t, upper=True)  # B x N x N
    else:
        # Thin QR eps^T = Q R through Householder reflectors; R is read off as Q^T eps^T.
        # (torch.linalg.qr extracts R with a separate triangular copy, a parallel region that
        # stalls for milliseconds when the cores are shared, and R's triangle is never needed.)
        reflectors, tau = torch.geqrf(eps_t)  # tau: B x r, r = min(d, N)
        q = torch.linalg.householder_product(reflectors[..., : tau.shape[-1]], tau)  # B x d x r
        r = q.transpose(-1, -2) @ eps_t  # B x r x N
    s = beta * (r * weights.unsqueeze(-2)) @ r.transpose(-1, -2)
    s = 0.5 * (s + s.transpose(-1, -2))
    lam, v = torch.linalg.eigh(s)  # lam: B x r, ascending
    floor = pd_floor - 1.0
    smallest = 1.0 + lam[:, 0]
    clipped = lam[:, 0] < floor
    lam = lam.clamp(min=floor)
    # expm1/log1p keep (1 + lam)^(-1/2) - 1 accurate when |lam| is tiny (beta_t -> 0): the
    # naive form cancels to a few digits there, and the correction is all of the step.
    inv_sqrt_minus_one = torch.expm1(-0.5 * torch.log1p(lam))
    # U = Q V, orthonormal columns: M = I + U diag(lam) U^T.
    if reused is not None:
        # U = eps^T (R^{-1} V) and A U = (A eps^T) (R^{-1} V): A is not multiplied again.
        r_inv_v = torch.linalg.solve_triangular(r, v, upper=True)  # B x N x N
        u = eps_t @ r_inv_v  # B x d x N
        a_u = reused @ r_inv_v  # B x d x N
    else:
        u = q @ v  # B x d x r
        a_u = factor @ u  # B x d x r

    # g_bar = (1/N) eps^T g = Q R w lies in span(U), so A f(M) g_bar = (A U) f(1 + lam) U^T g_bar.
    g_bar_in_u = (v.transpose(-1, -2) @ (r @ weights.unsqueeze(-1))).squeeze(-1)  # U^T g_bar
    if mean_rule == "exact":
        g_bar_in_u = g_bar_in_u / (1.0 + lam)  # U^T M^{-1} g_bar
    elif mean_rule != "first_order":
        raise OptimizerError(f"unknown mean_rule {mean_rule!r}; choose one of {MEAN_RULES}")
    new_mean = mean - beta * (a_u @ g_bar_in_u.unsqueeze(-1)).squeeze(-1)
    # A + (A U) diag(f) U^T as one GEMM that adds into its output (BLAS's C <- X Y + C): a
    # separate sum would read two d x d matrices and write a third, as long as the product.
    scaled = a_u * inv_sqrt_minus_one.unsqueeze(-2)
    if overwrite_factor:
        new_factor = factor.baddbmm_(scaled, u.transpose(-1, -2))
    else:
        new_factor = torch.baddbmm(factor, scaled, u.transpose(-1, -2))
    return WhitenedStep(
        mean=new_mean,
        factor=new_factor,
        smallest_eigenvalue=smallest,
        clipped=clipped,
    )


@dataclass(frozen=True)
class CASBOSettings:
    """The hyperparameters of a CASBO optimizer, validated (see :class:`CASBO`).

    ``beta0`` is the number used at this dimension and ``beta0_rule`` how it was chosen
    (``"1/d"``, ``"1/sqrt(d)"`` or ``"constant"``).
    """

    popsize: int
    beta0: float
    beta0_rule: str
    normalization: Normalization
    mean_rule: MeanRule
    step_schedule: StepSchedule
    pd_floor: float
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def validated(
        cls,
        method: str,
        dim: int,
        *,
        popsize: int | None,
        beta0: float | str,
        normalization: str,
        mean_rule: str,
        step_schedule: str,
        pd_floor: float,
        device: str,
        dtype: str,
    ) -> CASBOSettings:
        """Check every option against its domain and fill the dimension-dependent defaults.

        Raises:
            OptimizerError: an option is outside its domain; the message names the fix.
        """
        if popsize is None:
            popsize = casbo_population_size(dim)
        if isinstance(popsize, bool) or not isinstance(popsize, int | np.integer) or popsize < 2:
            raise OptimizerError(f"{method}: popsize must be an integer >= 2; got {popsize!r}")
        beta0_value, beta0_rule = resolve_beta0(method, beta0, dim)
        choices: dict[str, tuple[str, tuple[str, ...]]] = {
            "normalization": (normalization, NORMALIZATIONS),
            "mean_rule": (mean_rule, MEAN_RULES),
            "step_schedule": (step_schedule, STEP_SCHEDULES),
            "dtype": (dtype, tuple(DTYPES)),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise OptimizerError(
                    f"{method}: unknown {key} {value!r}; choose one of {', '.join(allowed)}"
                )
        if (
            isinstance(pd_floor, bool)
            or not isinstance(pd_floor, int | float)
            or not 0 < pd_floor <= 1
        ):
            raise OptimizerError(
                f"{method}: pd_floor must be a number in (0, 1] (the smallest eigenvalue M "
                f"may keep); got {pd_floor!r}"
            )
        return cls(
            popsize=int(popsize),
            beta0=beta0_value,
            beta0_rule=beta0_rule,
            normalization=cast(Normalization, normalization),
            mean_rule=cast(MeanRule, mean_rule),
            step_schedule=cast(StepSchedule, step_schedule),
            pd_floor=float(pd_floor),
            device=resolve_device(device, method, OptimizerError),
            dtype=DTYPES[cast(DtypeName, dtype)],
        )


class CASBOBase(Optimizer):
    """What every CASBO variant shares: options, sampling, scores, step size, safeguard log.

    A variant keeps per-block Gaussian laws ``z = mu + T(eps)`` (``T`` a square root of the
    covariance) and writes three things: :meth:`_propose` (``eps -> z``), :meth:`_update`
    (one step from ``eps`` and the normalized scores) and :meth:`gaussian_law`. The options
    are those of :class:`CASBO`.

    A variant states its own defaults for the base step size and the mean rule in
    :attr:`default_beta0` and :attr:`default_mean_rule`.

    Attributes:
        settings: the validated :class:`CASBOSettings`.
        iteration: updates done so far (the ``t`` of the last step size used).
        mean: the ``B x d`` tensor of means.
    """

    default_beta0: ClassVar[str] = "1/d"
    default_mean_rule: ClassVar[MeanRule] = "exact"

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        *,
        popsize: int | None = None,
        beta0: float | str | None = None,
        normalization: str = "zscore",
        mean_rule: str | None = None,
        step_schedule: str = "constant",
        pd_floor: float = DEFAULT_PD_FLOOR,
        device: str = "auto",
        dtype: str = "float64",
        **unknown: Any,
    ) -> None:
        super().__init__(space, seed, **unknown)
        self.settings = CASBOSettings.validated(
            self.name,
            space.dim,
            popsize=popsize,
            beta0=self.default_beta0 if beta0 is None else beta0,
            normalization=normalization,
            mean_rule=self.default_mean_rule if mean_rule is None else mean_rule,
            step_schedule=step_schedule,
            pd_floor=pd_floor,
            device=device,
            dtype=dtype,
        )
        self.iteration = 0
        self.mean = torch.full((space.n_blocks, space.dim), space.initial_mean, **self._tensor_kind)
        self._generator = torch.Generator(device=self.settings.device).manual_seed(self.seed)
        self._eps: Tensor | None = None

    @property
    def _tensor_kind(self) -> dict[str, Any]:
        return {"device": self.settings.device, "dtype": self.settings.dtype}

    @property
    def popsize(self) -> int:
        """N, the candidates asked for per iteration."""
        return self.settings.popsize

    @abstractmethod
    def _propose(self, eps: Tensor) -> Tensor:
        """Candidates ``z = mu + T(eps)`` for a ``n x B x d`` tensor of standard normals."""

    @abstractmethod
    def _update(self, eps: Tensor, g: Tensor, beta: float) -> tuple[Tensor, Tensor]:
        """One step of every block's law from ``eps`` (``N x B x d``) and ``g`` (``N x B``).

        Returns:
            ``(clipped, smallest)``: ``B`` tensors, whether the safeguard acted on a block and
            the smallest eigenvalue of its M before the floor.
        """

    def _ask(self) -> FloatArray:
        """``N x B x d`` candidates from fresh ``eps ~ N(0, I)`` (the seeded torch generator)."""
        self._eps = torch.randn(
            self.popsize,
            self.space.n_blocks,
            self.space.dim,
            generator=self._generator,
            **self._tensor_kind,
        )
        return self._propose(self._eps).cpu().numpy().astype(np.float64)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Update every block's law from the ``N x B`` step losses of the last batch."""
        if self._eps is None or self._eps.shape[0] != candidates.shape[0]:
            raise OptimizerError(f"{self.name}: tell() does not match the last ask()")
        eps, self._eps = self._eps, None
        step_losses = torch.as_tensor(losses, device=self.settings.device).to(self.settings.dtype)
        g, _ = normalize_scores(score_to_go(step_losses), self.settings.normalization)
        self.iteration += 1
        beta = step_size(self.settings.beta0, self.iteration, self.settings.step_schedule)
        clipped, smallest = self._update(eps, g, beta)
        self._record_safeguard(clipped, smallest)

    def _record_safeguard(self, clipped: Tensor, smallest: Tensor) -> None:
        """Count and log every block whose M had an eigenvalue raised to the floor."""
        clipped_blocks = np.flatnonzero(clipped.cpu().numpy())
        if clipped_blocks.size == 0:
            return
        smallest_values = smallest.cpu().numpy()
        for block in clipped_blocks:
            self.safeguard_events += 1
            logger.warning(
                "%s: iteration %d, block %d: smallest eigenvalue of M was %.6g, raised to the "
                "floor pd_floor=%g",
                self.name,
                self.iteration,
                block,
                smallest_values[block],
                self.settings.pd_floor,
            )

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x B x d`` fresh draws ``mu + T(eps)`` from the current laws, ``eps`` from ``rng``."""
        eps = rng.standard_normal((n, self.space.n_blocks, self.space.dim))
        z = self._propose(torch.as_tensor(eps).to(**self._tensor_kind))
        return z.cpu().numpy().astype(np.float64)


class CASBO(CASBOBase):
    """CASBO with full covariance: one Gaussian N(mu_b, A_b A_b^T) per block, scope per_step.

    Args:
        space: the search space, ``B = K`` blocks of size ``d``.
        seed: seeds the torch generator (on the chosen device) that draws every ``eps``.
        popsize: N, candidates per iteration (default ``4 + floor(3 ln d)`` rounded up to even).
        beta0: the base step size: ``"1/d"`` (default, INGO's full-covariance rule),
            ``"1/sqrt(d)"`` (the diagonal INGO port's) or a number (see
            :func:`resolve_beta0`).
        normalization: ``"zscore"`` (default), ``"rank"`` or ``"none"``; see
            :func:`normalize_scores`.
        mean_rule: ``"exact"`` (default, ``mu - beta A M^{-1} g_bar``) or ``"first_order"``
            (``mu - beta A g_bar``, INGO's published code).
        step_schedule: ``"constant"`` (default, ``beta_t = beta0``) or ``"inverse_sqrt"``
            (``beta_t = beta0 / sqrt(t)``, t = 1, 2, ... the iteration).
        pd_floor: the floor on M's eigenvalues, in (0, 1] (default
            :data:`DEFAULT_PD_FLOOR`).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        dtype: ``"float64"`` (default) or ``"float32"``, the precision of the laws and update.

    Attributes:
        factor: the ``B x d x d`` tensor of square roots A (covariance ``A A^T``).

    >>> opt = CASBO(SearchSpace(n_blocks=3, dim=4), seed=0)
    >>> candidates = opt.ask()
    >>> candidates.shape
    (8, 3, 4)
    >>> opt.tell(candidates, (candidates**2).sum(axis=2))
    >>> opt.gaussian_law().covariances.shape
    (3, 4, 4)
    """

    name = "casbo"
    uses_torch = True
    fresh_kind = "law"
    scope: ClassVar[Scope] = "per_step"

    def __init__(self, space: SearchSpace, seed: int, **options: Any) -> None:
        super().__init__(space, seed, **options)
        b, d = space.n_blocks, space.dim
        start = space.initial_scale * torch.eye(d, **self._tensor_kind)
        self.factor = start.expand(b, d, d).clone()
        self._proposed: tuple[Tensor, Tensor] | None = None

    def _propose(self, eps: Tensor) -> Tensor:
        """``z = mu + A eps`` for a ``n x B x d`` tensor ``eps``; keeps ``(eps, A eps)``, which
        the update of the same ``eps`` reuses (:func:`whitened_update`'s ``deviations``)."""
        # A (eps^T) as a plain batched product: einsum's own layout here is a slower GEMM.
        deviations = (self.factor @ eps.permute(1, 2, 0)).permute(2, 0, 1)
        self._proposed = (eps, deviations)
        return self.mean + deviations

    def _update(self, eps: Tensor, g: Tensor, beta: float) -> tuple[Tensor, Tensor]:
        """The whitened low-rank step of :func:`whitened_update` on every block."""
        proposed, self._proposed = self._proposed, None
        # Only the products of this very eps (sample_final proposes from others).
        deviations = proposed[1] if proposed is not None and proposed[0] is eps else None
        step = whitened_update(
            self.mean,
            self.factor,
            eps,
            g,
            beta,
            mean_rule=self.settings.mean_rule,
            pd_floor=self.settings.pd_floor,
            deviations=deviations,
            overwrite_factor=True,
        )
        self.mean, self.factor = step.mean, step.factor
        return step.clipped, step.smallest_eigenvalue

    def gaussian_law(self) -> GaussianLaw:
        """The current laws: ``B x d`` means and ``B x d x d`` covariances ``A A^T``."""
        factor = self.factor.cpu().to(torch.float64)
        return GaussianLaw(
            means=self.mean.cpu().to(torch.float64).numpy(),
            covariances=(factor @ factor.transpose(-1, -2)).numpy(),
        )
