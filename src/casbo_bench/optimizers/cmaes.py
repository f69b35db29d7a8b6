"""CMA-ES through pycma's ask/tell interface, with plain restarts and explicit seeds.

The search starts from the problem's initial law N(mu0, s0^2 I) (x0 = mu0, sigma0 = s0; the
unguided sampler's N(0, I) on every problem here), with pycma's default population
``lambda = 4 + floor(3 ln D)`` over the ``D = B * d`` searched numbers. pycma draws its
samples from NumPy's global generator, seeded through its ``seed`` option; this module
confines that generator to the optimizer (see :func:`_confined_global_rng`), so nothing
global changes and two optimizers never share a stream.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Literal

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
from casbo_bench.seeding import derive_seed

PYCMA_OPTIONAL_IMPORTS: tuple[str, ...] = ("matplotlib", "scipy.stats")
"""What ``import cma`` imports for features this module never calls: pyplot for ``cma.plot``
and ``cma.s``, scipy.stats for the Kendall tau of pycma's surrogate models (about 1 s of a
job's start-up, measured by benchmarks/startup.py). pycma imports each inside ``try ...
except ImportError`` and goes on without it."""


def import_pycma(skipped: tuple[str, ...] = PYCMA_OPTIONAL_IMPORTS) -> ModuleType:
    """The ``cma`` package, imported without the modules ``skipped`` that are not yet imported.

    Each such module is hidden (``sys.modules[name] = None``, which makes its import raise
    ImportError) only while ``cma`` itself is imported, and unhidden afterwards, so a later
    ``import matplotlib`` anywhere works as usual. A module that is already imported is left
    as it is, and pycma uses it.
    """
    if "cma" in sys.modules:
        return sys.modules["cma"]
    hidden = [name for name in skipped if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            # cma.s warns that plotting is unavailable: true and expected here.
            warnings.filterwarnings("ignore", message=".*matplotlib", category=UserWarning)
            import cma
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return cma


cma = import_pycma()

Covariance = Literal["full", "diagonal"]

PYCMA_SEED_LIMIT = 2**32 - 1
"""pycma passes its seed to ``np.random.seed``, which takes integers in [0, 2**32)."""


def pycma_seed(seed: int, restart: int) -> int:
    """The pycma seed of run number ``restart`` (0 = the first run), in ``[1, 2**32 - 1]``.

    Derived from the optimizer's 63-bit seed with :func:`casbo_bench.seeding.derive_seed`, so
    it is stable across processes; zero is avoided because pycma reads a seed of 0 as
    "seed from the clock".
    """
    return derive_seed("pycma", seed, restart) % PYCMA_SEED_LIMIT + 1


@dataclass(frozen=True)
class CMAESSettings:
    """The resolved settings of a CMA-ES optimizer.

    Attributes:
        popsize: lambda, candidates per batch.
        x0: the initial mean on every coordinate.
        sigma0: the initial step size.
        covariance: ``"full"`` or ``"diagonal"`` (pycma's ``CMA_diagonal``).
        pycma_options: every option handed to pycma (its seed aside, which changes per run).
    """

    popsize: int
    x0: float
    sigma0: float
    covariance: Covariance
    pycma_options: dict[str, Any]


@contextmanager
def _confined_global_rng(state: dict[str, Any]) -> Iterator[None]:
    """Run a block with NumPy's global generator swapped for the one kept in ``state``.

    pycma samples with ``np.random.randn`` (the legacy global generator). Swapping the global
    state in and out around every pycma call gives each optimizer its own seeded stream and
    leaves the caller's global state exactly as it was.
    """
    outer = np.random.get_state()  # noqa: NPY002 (pycma samples from it)
    if "numpy" in state:
        np.random.set_state(state["numpy"])  # noqa: NPY002
    try:
        yield
    finally:
        state["numpy"] = np.random.get_state()  # noqa: NPY002 (pycma samples from it)
        np.random.set_state(outer)  # noqa: NPY002


class CMAES(Optimizer):
    """CMA-ES (pycma) on the flattened ``B x d`` candidate, restarted when pycma stops.

    Each run starts from the initial law N(mu0, s0^2 I):
    ``cma.CMAEvolutionStrategy(mu0, s0, opts)`` (pycma's initial covariance is
    ``diag(exp(1e-4 i / D))``, I to within 1e-4, so that its eigenvalues are distinct).
    When one of pycma's own termination criteria fires (``es.stop()`` is not empty, e.g.
    ``tolfun`` or ``tolx`` once the search has converged) before the budget is spent, the
    optimizer starts a new run from the initial law with the same population size and the next
    derived seed: plain restarts, no population growth (IPOP) and no warm start. The best
    candidate is kept across runs by the base class.

    Args:
        space: the search space; the ``B x d`` blocks are searched as one vector of
            ``D = B * d`` numbers (``B = 1`` for the usual latent scope).
        seed: the optimizer's seed; run ``r`` uses ``pycma_seed(seed, r)``.
        popsize: lambda, candidates per batch (default ``4 + floor(3 ln D)``).
        tolfun, tolfunhist, tolx, tolstagnation, maxiter: pycma's termination options of the
            same names, per run (default: pycma's own defaults).

    Attributes:
        pycma_seeds: the seed handed to pycma for each run so far (first run first).
        n_restarts: how many times the search was restarted (``len(pycma_seeds) - 1``).
        stop_reasons: pycma's termination dictionary of each finished run.

    >>> opt = CMAES(SearchSpace(n_blocks=1, dim=10), seed=0)
    >>> opt.ask().shape
    (10, 1, 10)
    """

    name = "cmaes"
    uses_torch = False
    fresh_kind = "point"
    scope: ClassVar[Scope] = "latent"

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        *,
        popsize: int | None = None,
        tolfun: float | None = None,
        tolfunhist: float | None = None,
        tolx: float | None = None,
        tolstagnation: int | None = None,
        maxiter: int | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(space, seed, **unknown)
        self.search_dim = space.search_dim
        if popsize is None:
            popsize = default_population_size(self.search_dim)
        if isinstance(popsize, bool) or not isinstance(popsize, int | np.integer) or popsize < 2:
            raise OptimizerError(f"{self.name}: popsize must be an integer >= 2; got {popsize!r}")
        covariance = self._covariance()
        pycma_options: dict[str, Any] = {"popsize": int(popsize), "verbose": -9}
        if covariance == "diagonal":
            pycma_options["CMA_diagonal"] = True
        tolerances = {"tolfun": tolfun, "tolfunhist": tolfunhist, "tolx": tolx}
        iterations = {"tolstagnation": tolstagnation, "maxiter": maxiter}
        for key, value in tolerances.items():
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise OptimizerError(f"{self.name}: {key} must be a number >= 0; got {value!r}")
                pycma_options[key] = float(value)
        for key, value in iterations.items():
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                    raise OptimizerError(
                        f"{self.name}: {key} must be an integer >= 1; got {value!r}"
                    )
                pycma_options[key] = int(value)
        self.settings = CMAESSettings(
            popsize=int(popsize),
            x0=space.initial_mean,
            sigma0=space.initial_scale,
            covariance=covariance,
            pycma_options=pycma_options,
        )
        self.pycma_seeds: list[int] = []
        self.stop_reasons: list[dict[str, Any]] = []
        self._rng_state: dict[str, Any] = {}
        self._es = self._start_run()

    @property
    def popsize(self) -> int:
        """lambda, candidates per batch."""
        return self.settings.popsize

    def _covariance(self) -> Covariance:
        """The covariance model: full, as pycma's default."""
        return "full"

    def resolved_settings(self) -> dict[str, Any]:
        """The settings, with the integer seed of every pycma run so far and why each stopped."""
        return {
            **super().resolved_settings(),
            "pycma_seeds": list(self.pycma_seeds),
            "stop_reasons": list(self.stop_reasons),
        }

    @property
    def n_restarts(self) -> int:
        """Restarts so far: runs started after the first."""
        return len(self.pycma_seeds) - 1

    @property
    def pycma_seed(self) -> int:
        """The seed of the current pycma run."""
        return self.pycma_seeds[-1]

    def _start_run(self) -> Any:
        """A fresh pycma search from the initial law, seeded with the next derived seed."""
        seed = pycma_seed(self.seed, len(self.pycma_seeds))
        self.pycma_seeds.append(seed)
        with _confined_global_rng(self._rng_state):
            return cma.CMAEvolutionStrategy(
                np.full(self.search_dim, self.settings.x0),
                self.settings.sigma0,
                {**self.settings.pycma_options, "seed": seed},
            )

    def _ask(self) -> FloatArray:
        """``popsize x B x d`` samples of the current run (a new run if pycma stopped)."""
        with _confined_global_rng(self._rng_state):
            stop = dict(self._es.stop())
        if stop:
            self.stop_reasons.append(stop)
            self._es = self._start_run()
        with _confined_global_rng(self._rng_state):
            solutions = self._es.ask()
        return np.asarray(solutions, dtype=np.float64).reshape(
            len(solutions), self.space.n_blocks, self.space.dim
        )

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Pass the rollout losses (row sums of the ``n x B`` block losses) to pycma."""
        solutions = list(candidates.reshape(candidates.shape[0], self.search_dim))
        with _confined_global_rng(self._rng_state):
            self._es.tell(solutions, losses.sum(axis=1).tolist())

    def gaussian_law(self) -> GaussianLaw:
        """The current run's search law N(m, sigma^2 D C D), split into ``B`` blocks.

        ``C`` is the covariance pycma adapts and ``D`` its diagonal scaling (identity unless
        diagonal decoding is on). Only the ``d x d`` diagonal blocks of the joint covariance
        are returned when ``B > 1``.
        """
        es = self._es
        adapted = np.asarray(es.sm.covariance_matrix, dtype=np.float64)
        if adapted.ndim < 2:
            # Diagonal mode: pycma's sampler is the identity and the scaling D adapts alone.
            variances = np.asarray(es.sm.variances, dtype=np.float64)
            adapted = np.diag(np.broadcast_to(variances, (self.search_dim,)))
        covariance = es.sigma**2 * es.sigma_vec.transform_covariance_matrix(adapted)
        b, d = self.space.n_blocks, self.space.dim
        means = np.asarray(es.mean, dtype=np.float64).reshape(b, d)
        blocks = np.stack([covariance[i * d : (i + 1) * d, i * d : (i + 1) * d] for i in range(b)])
        return GaussianLaw(means=means, covariances=blocks)
