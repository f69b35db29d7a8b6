"""TuRBO-1: Bayesian optimization inside one trust region, built from BoTorch and GPyTorch.

Read :class:`TuRBO` first. One TuRBO-1 run alternates

1. a scrambled Sobol design of ``2 D`` points over the unit cube (``D = B * d``);
2. batches of ``q`` Thompson samples: a GP (Matern-5/2, ARD) is fitted to the run's data,
   candidates are drawn inside a box of side ``L`` around the incumbent, stretched per
   dimension by the GP's lengthscales, and each of ``q`` joint posterior draws over the
   candidates picks its best one;
3. after each batch, the trust-region rule (:func:`update_trust_region`): ``L`` doubles
   after ``success_tolerance`` improving batches in a row, halves after
   ``failure_tolerance`` non-improving ones, and the run restarts from step 1 with fresh
   data when ``L`` drops below ``length_min``.

The unit cube is mapped onto the noise through the normal quantile function
(:func:`cube_to_noise`), ``x = mu0 + s0 Phi^{-1}(u)`` with the problem's initial law
N(mu0, s0^2 I), on every problem: the Sobol design is then a quasi-random draw from the law
every other method starts from (docs/method.md section 4b), and the trust region lives in
``u``. BoTorch maximizes, so the GP models the negated loss. Every random draw comes from
the optimizer's seed: a NumPy generator for the perturbation masks and Sobol seeds, a
``torch.Generator`` for the Thompson draws, and exact (Cholesky) linear algebra throughout,
so GPyTorch's stochastic estimators (random probe vectors from the global torch generator)
are never used.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from math import ceil, inf
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.exceptions.warnings import OptimizationWarning
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.constraints import Interval
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.errors import NotPSDError
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor
from torch.quasirandom import SobolEngine

from casbo_bench.devices import resolve_device
from casbo_bench.memory import bound_heap_growth
from casbo_bench.optimizers.base import FloatArray, Optimizer, OptimizerError, SearchSpace

LENGTHSCALE_RANGE = (0.005, 4.0)
"""Bounds of the ARD lengthscales on the unit cube (TuRBO's published GP settings)."""

NORMAL_MAP_CLIP = 1e-6
"""``u`` is clipped to ``[c, 1 - c]`` before ``Phi^{-1}``: a trust region at the cube's face
would otherwise give infinite noise. ``Phi^{-1}(1 - 1e-6) = 4.75``."""

NOISE_RANGE = (1e-8, 1e-3)
"""Bounds of the likelihood noise variance on standardized outputs: the black boxes here are
deterministic given their noise, so only a jitter-sized noise is allowed."""

CPU = torch.device("cpu")


def cube_to_noise(u: FloatArray, space: SearchSpace) -> FloatArray:
    """Noise of unit-cube points ``u`` (``n x D``) under the space's initial law.

    ``x = mu0 + s0 Phi^{-1}(clip(u, c, 1 - c))`` with ``c =`` :data:`NORMAL_MAP_CLIP`, ``mu0``
    and ``s0`` the space's ``initial_mean`` and ``initial_scale``.

    >>> u = np.array([[0.5, 0.8413447460685429]])
    >>> cube_to_noise(u, SearchSpace(1, 2)).round(9).tolist()
    [[0.0, 1.0]]
    >>> cube_to_noise(u, SearchSpace(1, 2, initial_scale=2.0)).round(9).tolist()
    [[0.0, 2.0]]
    """
    clipped = torch.from_numpy(np.clip(u, NORMAL_MAP_CLIP, 1.0 - NORMAL_MAP_CLIP))
    standard = torch.special.ndtri(clipped).numpy()
    return space.initial_mean + space.initial_scale * standard


@dataclass(frozen=True)
class TrustRegionSettings:
    """Fixed constants of the trust-region rule.

    Attributes:
        length_init: side of the first trust region, on the unit cube.
        length_min: a region shorter than this has collapsed: the run restarts.
        length_max: the region never grows beyond this.
        success_tolerance: improving batches in a row that double the side.
        failure_tolerance: non-improving batches in a row that halve the side.
        relative_improvement: a batch improves when its best loss is below
            ``best - relative_improvement * |best|``.
    """

    length_init: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 10
    failure_tolerance: int = 1
    relative_improvement: float = 1e-3


@dataclass(frozen=True)
class TuRBOSettings:
    """Every hyperparameter of a TuRBO-1 run, dimension-dependent defaults resolved.

    Attributes:
        batch_size: q, Thompson samples per batch.
        n_initial: points of each run's Sobol design.
        n_candidates: perturbed candidates of each Thompson batch.
        fit_maxiter: L-BFGS-B iterations per GP fit.
        trust_region: the constants of the trust-region rule.
        lengthscale_range: bounds of the ARD lengthscales on the unit cube.
        noise_range: bounds of the likelihood noise variance.
        normal_map_clip: ``c`` of :func:`cube_to_noise`.
        device: where the GP runs.
    """

    batch_size: int
    n_initial: int
    n_candidates: int
    fit_maxiter: int
    trust_region: TrustRegionSettings
    lengthscale_range: tuple[float, float] = LENGTHSCALE_RANGE
    noise_range: tuple[float, float] = NOISE_RANGE
    normal_map_clip: float = NORMAL_MAP_CLIP
    device: torch.device = CPU


@dataclass(frozen=True)
class TrustRegion:
    """State of one trust region: its side, its best loss and the current streaks."""

    length: float
    best_loss: float
    success_count: int = 0
    failure_count: int = 0


def default_failure_tolerance(dim: int, batch_size: int) -> int:
    """TuRBO's failure tolerance ``ceil(max(4 / q, D / q))``."""
    return ceil(max(4.0 / batch_size, dim / batch_size))


def default_n_candidates(dim: int) -> int:
    """Thompson-sampling candidates per batch, ``min(5000, max(2000, 200 D))``."""
    return min(5000, max(2000, 200 * dim))


def update_trust_region(
    region: TrustRegion, batch_losses: FloatArray, settings: TrustRegionSettings
) -> TrustRegion:
    """The trust region after a batch with losses ``batch_losses`` (a ``q`` array).

    The batch succeeds when ``min(batch_losses) < best - relative_improvement * |best|``.
    A success resets the failure streak and a failure resets the success streak; a full
    success streak doubles the side (capped at ``length_max``) and a full failure streak
    halves it, each resetting its streak. Whether the region has collapsed is
    :func:`trust_region_collapsed`.
    """
    batch_best = float(np.min(batch_losses))
    improved = batch_best < region.best_loss - settings.relative_improvement * abs(region.best_loss)
    successes = region.success_count + 1 if improved else 0
    failures = 0 if improved else region.failure_count + 1
    length = region.length
    if successes == settings.success_tolerance:
        length, successes = min(2.0 * length, settings.length_max), 0
    elif failures == settings.failure_tolerance:
        length, failures = length / 2.0, 0
    return TrustRegion(
        length=length,
        best_loss=min(region.best_loss, batch_best),
        success_count=successes,
        failure_count=failures,
    )


def trust_region_collapsed(region: TrustRegion, settings: TrustRegionSettings) -> bool:
    """Whether the region is shorter than ``length_min`` (TuRBO-1 then restarts)."""
    return region.length < settings.length_min


def trust_region_bounds(
    center: FloatArray, lengthscales: FloatArray, length: float
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper corners of the trust region, two ``D`` arrays inside the unit cube.

    The side along dimension i is ``w_i L`` with ``w = l / geomean(l)`` (``l`` the ARD
    lengthscales divided by their mean), so the region has volume ``L^D`` and is longer
    where the loss varies slowly. The box is centred at ``center`` and clipped to
    ``[0, 1]^D``.
    """
    weights = lengthscales / lengthscales.mean()
    weights = weights / np.exp(np.log(weights).mean())
    half = weights * length / 2.0
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def perturbed_candidates(
    center: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    n: int,
    rng: np.random.Generator,
) -> FloatArray:
    """``n x D`` candidates: the centre with a random subset of coordinates redrawn.

    Each coordinate is replaced, with probability ``min(20 / D, 1)``, by the matching
    coordinate of a scrambled Sobol point in ``[lower, upper]``; a candidate that would keep
    every coordinate gets one random coordinate replaced.
    """
    dim = center.shape[0]
    sobol = SobolEngine(dim, scramble=True, seed=int(rng.integers(2**62)))
    points = lower + (upper - lower) * sobol.draw(n, dtype=torch.float64).numpy()
    mask = rng.random((n, dim)) <= min(20.0 / dim, 1.0)
    unchanged = np.flatnonzero(~mask.any(axis=1))
    mask[unchanged, rng.integers(dim, size=unchanged.size)] = True
    return np.where(mask, points, center)


def thompson_indices(
    model: SingleTaskGP, candidates: Tensor, q: int, generator: torch.Generator
) -> tuple[list[int], int]:
    """Indices of ``q`` distinct candidates chosen by joint Thompson sampling (maximization).

    Draws ``q`` joint samples ``f = mu + L z`` of the GP posterior over the ``n x D``
    candidates, ``L`` the exact Cholesky factor of the ``n x n`` posterior covariance and
    ``z`` base samples from ``generator``; sample j picks its highest candidate not already
    picked by samples ``0..j-1``.

    Returns:
        The ``q`` indices and how many times the Cholesky factorization needed diagonal
        jitter (expected: thousands of candidates in a small region make the posterior
        covariance numerically singular).
    """
    posterior = model.posterior(candidates)
    shape = torch.Size([q])
    base = torch.randn(
        shape + posterior.base_sample_shape, generator=generator, dtype=candidates.dtype
    ).to(candidates.device)
    with (
        gpytorch.settings.max_cholesky_size(inf),
        torch.no_grad(),
        _tallied(NumericalWarning) as jitter_events,
    ):
        samples = posterior.rsample_from_base_samples(shape, base)[..., 0]
    order = torch.argsort(samples, dim=-1, descending=True).cpu().numpy()
    chosen: list[int] = []
    for ranking in order:
        chosen.append(int(next(i for i in ranking if i not in chosen)))
    return chosen, jitter_events[0]


class TuRBO(Optimizer):
    """TuRBO-1 (Eriksson et al., 2019) on the unit cube mapped onto the noise, minimizing.

    Settings follow method.md section 4 (BoTorch's TuRBO-1 settings): trust-region side
    0.8 (min 0.5^7, max 1.6), success tolerance 10 (BoTorch's choice; the TuRBO paper uses
    3: pass ``success_tolerance=3`` for the paper's rule), failure tolerance
    ``ceil(max(4/q, D/q))``, an initial scrambled Sobol design of ``2 D`` points, batches of
    ``q = 4`` Thompson samples over ``min(5000, max(2000, 200 D))`` perturbed candidates,
    and a restart from a fresh Sobol design (discarding the run's data) when the region
    collapses below its minimum.

    The GP is a ``SingleTaskGP`` with a scaled Matern-5/2 ARD kernel on the unit cube (the
    box is mapped onto it, so the inputs are already normalized) and standardized outputs
    (``Standardize``), fitted by maximum likelihood (no hyperparameter priors) with
    L-BFGS-B before every batch, always from GPyTorch's initial hyperparameters (lengthscales
    about 2 on the unit cube) and capped at ``fit_maxiter`` iterations. The cap bounds the
    cost of a fit (measured: converged after 29 iterations at D = 10 on 500 points; the cap
    binds at D = 50). Warm starts from the previous batch's hyperparameters were tried and rejected:
    once a fit lands on the lower lengthscale bound (the likelihood is flat there) every
    later fit stays there, the trust region degenerates to a thin slab and the search
    stalls (rotated 5-d sphere, 100 evaluations: best loss 1 to 16 warm, about 1e-3 cold).
    The cost of a run is dominated by the exact Thompson draws, ``O(n_candidates^3)`` per
    batch (see ``benchmarks/turbo_cost.py``).

    Args:
        space: the search space; the ``B x d`` blocks are searched as one vector of
            ``D = B * d`` numbers.
        seed: seeds every random draw (Sobol designs, perturbations, Thompson samples).
        batch_size: q, candidates per Thompson batch (default 4).
        success_tolerance: improving batches in a row that double the side (default 10).
        failure_tolerance: non-improving batches in a row that halve the side (default
            ``ceil(max(4/q, D/q))``).
        n_initial: size of each run's Sobol design (default ``2 D``).
        n_candidates: Thompson-sampling candidates (default ``min(5000, max(2000, 200 D))``).
        fit_maxiter: L-BFGS-B iterations per GP fit (default 50).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``, for the GP
            (always float64).

    Attributes:
        settings: the resolved :class:`TuRBOSettings`.
        region: the current trust region (None while a run's initial design is pending).
        n_restarts: runs started after the first.
        fit_failures: GP fits whose optimizer reported a failure (the fit is kept).
        jitter_events: Thompson draws whose posterior Cholesky needed diagonal jitter.

    >>> opt = TuRBO(SearchSpace(n_blocks=1, dim=2), seed=0)
    >>> opt.ask().shape
    (4, 1, 2)
    """

    name = "turbo"
    uses_torch = True
    fresh_kind = "point"
    scope = "latent"

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        *,
        batch_size: int = 4,
        success_tolerance: int = 10,
        failure_tolerance: int | None = None,
        n_initial: int | None = None,
        n_candidates: int | None = None,
        fit_maxiter: int = 50,
        device: str = "auto",
        **unknown: Any,
    ) -> None:
        super().__init__(space, seed, **unknown)
        bound_heap_growth()
        self.search_dim = dim = space.search_dim
        batch_size = _positive_int("batch_size", batch_size)
        if failure_tolerance is None:
            failure_tolerance = default_failure_tolerance(dim, batch_size)
        n_candidates = _positive_int(
            "n_candidates", default_n_candidates(dim) if n_candidates is None else n_candidates
        )
        if n_candidates < batch_size:
            raise OptimizerError(
                f"turbo: n_candidates ({n_candidates}) must be at least batch_size ({batch_size})"
            )
        self.settings = TuRBOSettings(
            batch_size=batch_size,
            n_initial=_positive_int("n_initial", 2 * dim if n_initial is None else n_initial),
            n_candidates=n_candidates,
            fit_maxiter=_positive_int("fit_maxiter", fit_maxiter),
            trust_region=TrustRegionSettings(
                success_tolerance=_positive_int("success_tolerance", success_tolerance),
                failure_tolerance=_positive_int("failure_tolerance", failure_tolerance),
            ),
            device=resolve_device(device, "turbo", OptimizerError),
        )
        self.region: TrustRegion | None = None
        self.n_restarts = 0
        self.fit_failures = 0
        self.jitter_events = 0
        self._rng = np.random.default_rng(self.seed)
        self._generator = torch.Generator().manual_seed(int(self._rng.integers(2**62)))
        self._x = np.empty((0, dim))
        self._y = np.empty(0)
        self._pending = np.empty((0, dim))

    def resolved_settings(self) -> dict[str, Any]:
        """The settings, with the runs' restarts and the GP's safeguard counts so far."""
        return {
            **super().resolved_settings(),
            "n_restarts": self.n_restarts,
            "fit_failures": self.fit_failures,
            "jitter_events": self.jitter_events,
        }

    def _ask(self) -> FloatArray:
        """The run's Sobol design, or ``q`` Thompson samples inside the trust region."""
        if self.region is None:
            sobol = SobolEngine(self.search_dim, scramble=True, seed=int(self._rng.integers(2**62)))
            self._pending = sobol.draw(self.settings.n_initial, dtype=torch.float64).numpy()
        else:
            self._pending = self._thompson_batch()
        noise = cube_to_noise(self._pending, self.space)
        return noise.reshape(-1, self.space.n_blocks, self.space.dim)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Add the batch to the run's data and update the trust region (restart if collapsed)."""
        y = losses.sum(axis=1)
        self._x = np.vstack([self._x, self._pending])
        self._y = np.concatenate([self._y, y])
        if self.region is None:
            length = self.settings.trust_region.length_init
            self.region = TrustRegion(length=length, best_loss=float(y.min()))
            return
        self.region = update_trust_region(self.region, y, self.settings.trust_region)
        if trust_region_collapsed(self.region, self.settings.trust_region):
            self._restart()

    def _restart(self) -> None:
        """Forget the run (its data and region); the next ask is a fresh Sobol design."""
        self.region = None
        self.n_restarts += 1
        self._x = np.empty((0, self.search_dim))
        self._y = np.empty(0)

    def _thompson_batch(self) -> FloatArray:
        """``q x D`` unit-cube points: Thompson samples over perturbations of the incumbent."""
        assert self.region is not None
        model = self._fit_model()
        center = self._x[int(np.argmin(self._y))]
        lengthscales = model.covar_module.base_kernel.lengthscale.detach().cpu().numpy().reshape(-1)
        lower, upper = trust_region_bounds(center, lengthscales, self.region.length)
        candidates = perturbed_candidates(
            center, lower, upper, self.settings.n_candidates, self._rng
        )
        chosen, jitter_events = thompson_indices(
            model,
            torch.as_tensor(candidates, dtype=torch.float64, device=self.settings.device),
            self.settings.batch_size,
            self._generator,
        )
        self.jitter_events += jitter_events
        return candidates[chosen]

    def _fit_model(self) -> SingleTaskGP:
        """The GP of the negated losses on the run's data, fitted by maximum likelihood."""
        x = torch.as_tensor(self._x, dtype=torch.float64, device=self.settings.device)
        y = torch.as_tensor(-self._y[:, None], dtype=torch.float64, device=self.settings.device)
        model = _matern_gp(x, y)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        mll.train()
        try:
            with (
                gpytorch.settings.max_cholesky_size(inf),
                _tallied(OptimizationWarning) as failures,
            ):
                fit_gpytorch_mll_scipy(mll, options={"maxiter": self.settings.fit_maxiter})
            self.fit_failures += failures[0]
        except NotPSDError:
            # A kernel matrix on the optimizer's path failed Cholesky even with GPyTorch's
            # jitter: fall back to the initial hyperparameters for this batch rather than
            # stopping a long benchmark run.
            self.safeguard_events += 1
            model = _matern_gp(x, y)
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
        mll.eval()
        return model


def _matern_gp(x: Tensor, y: Tensor) -> SingleTaskGP:
    """A SingleTaskGP (scaled Matern-5/2 ARD, standardized outputs) on ``n x D`` / ``n x 1``."""
    kernel = ScaleKernel(
        MaternKernel(
            nu=2.5,
            ard_num_dims=x.shape[-1],
            lengthscale_constraint=Interval(*LENGTHSCALE_RANGE),
        )
    )
    likelihood = GaussianLikelihood(noise_constraint=Interval(*NOISE_RANGE))
    model = SingleTaskGP(
        x, y, covar_module=kernel, likelihood=likelihood, outcome_transform=Standardize(m=1)
    )
    return model.to(x)


@contextmanager
def _tallied(category: type[Warning]) -> Iterator[list[int]]:
    """Count the warnings of ``category`` raised in the block instead of showing them.

    Yields a one-element list holding the count once the block exits; warnings of other
    categories are re-issued unchanged.
    """
    count = [0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield count
    for warning in caught:
        if issubclass(warning.category, category):
            count[0] += 1
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise OptimizerError(f"turbo: {name} must be a positive integer; got {value!r}")
    return int(value)
