"""The optimizer contract: ask for candidates, tell their losses.

Read this module first. An optimizer sees a :class:`SearchSpace` (how many Gaussian blocks of
which size), vectors and losses: never a problem. The base class owns everything common
(evaluation count, best-so-far, the check for non-finite losses, the final truncated batch);
a subclass writes only its own step in :meth:`Optimizer._ask` and :meth:`Optimizer._tell`.

Candidates are ``n x B x d`` arrays: B blocks of d numbers each. What a block means is the
optimizer's *scope*:

- ``"per_step"``: B = K, one block per injected noise of the problem's chain (generation
  order); the losses told back are the ``n x K`` step losses, so a method can form the
  score-to-go of every step.
- ``"latent"``: B = 1, the initial latent only; the runner fixes the later noises to one
  seeded draw (common random numbers) and tells back the rollout loss as an ``n x 1`` array.

Every optimizer starts from the problem's initial law (:class:`SearchSpace`; N(0, I) on every
block, the pre-trained sampler's law, for every current problem), keeps its hyperparameters in
one frozen settings dataclass whose resolved values every trace records
(:meth:`Optimizer.resolved_settings`), and draws all its randomness from the integer ``seed``
given at construction.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.names import FreshKind

FloatArray = NDArray[np.float64]
Scope = Literal["per_step", "latent"]


class OptimizerError(UserFacingError, ValueError):
    """An optimizer was asked for with an impossible option or used out of order."""


def default_population_size(search_dim: int) -> int:
    """The evolution-strategy default population ``4 + floor(3 ln D)`` over ``D`` numbers
    (Hansen's, and pycma's; CMA-ES and xNES use it as it is, CASBO rounded up to even).

    >>> [default_population_size(d) for d in (1, 2, 10, 100)]
    [4, 6, 10, 17]
    """
    if search_dim < 1:
        raise OptimizerError(f"the population size needs a dimension >= 1; got {search_dim}")
    return 4 + math.floor(3 * math.log(search_dim))


class NonFiniteLossError(UserFacingError, ArithmeticError):
    """A black box returned NaN or infinity for a candidate."""


@dataclass(frozen=True)
class SearchSpace:
    """What an optimizer searches: ``n_blocks`` blocks of ``dim`` numbers, and where it starts.

    Every method's first proposals come from the problem's stated initial law,
    N(initial_mean, initial_scale^2 I) on every block (docs/method.md section 4b: the same
    start for every method). A method that searches a bounded set (TuRBO's unit cube
    ``u in [0, 1]^d``) maps it through the normal quantile function,
    ``x = initial_mean + initial_scale * Phi^{-1}(u)``, so that a uniform design is a draw from
    that same law.

    Attributes:
        n_blocks: B, the number of blocks (K for a per-step method, 1 for a latent one).
        dim: d, the size of each block.
        initial_mean: mu0, the mean of the initial law on every coordinate.
        initial_scale: s0 > 0, its standard deviation on every coordinate.
    """

    n_blocks: int
    dim: int
    initial_mean: float = 0.0
    initial_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.n_blocks < 1 or self.dim < 1:
            raise OptimizerError(
                f"a search space needs at least one block of size >= 1; got "
                f"n_blocks={self.n_blocks}, dim={self.dim}"
            )
        if not (math.isfinite(self.initial_scale) and self.initial_scale > 0):
            raise OptimizerError(
                f"initial_scale must be a finite number > 0; got {self.initial_scale}"
            )
        if not math.isfinite(self.initial_mean):
            raise OptimizerError(f"initial_mean must be finite; got {self.initial_mean}")

    @property
    def search_dim(self) -> int:
        """D = B * d, the length of one flattened candidate."""
        return self.n_blocks * self.dim

    def initial_draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n x B x d`` independent draws from the initial law."""
        shape = (n, self.n_blocks, self.dim)
        return self.initial_mean + self.initial_scale * rng.standard_normal(shape)


@dataclass(frozen=True)
class GaussianLaw:
    """Per-block Gaussian laws N(means[b], covariances[b]).

    Attributes:
        means: a ``B x d`` array.
        covariances: a ``B x d x d`` array.
    """

    means: FloatArray
    covariances: FloatArray


class Optimizer(ABC):
    """Base class of every optimizer: the public ask/tell and the bookkeeping.

    Subclasses set ``name`` and ``scope`` and implement ``_ask`` and ``_tell``. Options are
    keyword arguments with the method's published defaults; the registry passes the ones
    given in a config.

    Attributes:
        space: the search space.
        seed: the integer seed all of this optimizer's randomness derives from.
        n_evaluations: losses told so far.
        best_loss: the lowest rollout loss told so far.
        best_candidate: the ``B x d`` candidate that had it.
        safeguard_events: how often a numerical safeguard changed an update.
    """

    name: ClassVar[str]
    scope: ClassVar[Scope]
    uses_torch: ClassVar[bool] = False
    """True for a method whose updates run torch code on the job's ``device`` (its constructor
    takes ``device``). Every plugin class states it in its own body, as a literal: the registry
    reads it from the source, so the workflow knows which jobs want a GPU without importing
    torch."""
    fresh_kind: ClassVar[FreshKind] = "point"
    """What :meth:`sample_final` hands over (:data:`casbo_bench.names.FRESH_KINDS`):
    ``"point"``, the best candidate repeated (this class's default), or ``"law"``, new draws
    from a distribution. Every plugin class states it in its own body, as a literal: the
    registry reads it from the source, and the final-loss table reports it beside the
    fresh-sample loss, so tables never set a law's samples beside a repeated point unmarked."""
    fixed_covariance: ClassVar[bool] = False
    """True for a method whose covariance never moves from the initial law (a control): its
    expected loss has a floor above J*, which the runner records."""
    settings: Any
    """A frozen dataclass of the method's hyperparameters, dimension-dependent defaults filled."""

    def __init__(self, space: SearchSpace, seed: int, **options: Any) -> None:
        if options:
            raise OptimizerError(
                f"optimizer {self.name!r} has no option(s) {sorted(options)}; "
                f"remove them from the config"
            )
        self.space = space
        self.seed = int(seed)
        self.n_evaluations = 0
        self.best_loss = float("inf")
        self.best_candidate: FloatArray | None = None
        self.safeguard_events = 0
        self._asked: int | None = None

    def ask(self) -> FloatArray:
        """Candidates to evaluate next, a ``n x B x d`` array."""
        candidates = np.asarray(self._ask(), dtype=np.float64)
        expected = (self.space.n_blocks, self.space.dim)
        if candidates.ndim != 3 or candidates.shape[1:] != expected:
            raise OptimizerError(
                f"{self.name} asked for candidates of shape {candidates.shape}; "
                f"expected (n, {expected[0]}, {expected[1]})"
            )
        self._asked = candidates.shape[0]
        return candidates

    def tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Report the losses of the first ``n`` candidates of the last :meth:`ask`.

        Args:
            candidates: a ``n x B x d`` array, a prefix of what :meth:`ask` returned.
            losses: a ``n x B`` array of block losses (see the module docstring).

        A prefix shorter than the last ask is the final batch cut by the budget: it is
        recorded in the bookkeeping but not learned from.
        """
        if self._asked is None:
            raise OptimizerError(f"{self.name}: tell() called without a preceding ask()")
        losses = np.asarray(losses, dtype=np.float64)
        n = candidates.shape[0]
        if losses.shape != (n, self.space.n_blocks) or n > self._asked:
            raise OptimizerError(
                f"{self.name}: told {losses.shape} losses for {n} candidates "
                f"(asked for {self._asked}); expected ({n}, {self.space.n_blocks})"
            )
        bad = ~np.isfinite(losses).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NonFiniteLossError(
                f"{self.name}: the black box returned a non-finite loss {losses[i].tolist()} "
                f"for candidate {self.n_evaluations + i} (seed {self.seed}); the problem "
                f"must return finite losses (map failures to a stated penalty instead)"
            )
        totals = losses.sum(axis=1)
        i_best = int(np.argmin(totals))
        if totals[i_best] < self.best_loss:
            self.best_loss = float(totals[i_best])
            self.best_candidate = np.array(candidates[i_best], dtype=np.float64)
        self.n_evaluations += n
        complete = n == self._asked
        self._asked = None
        if complete:
            self._tell(np.asarray(candidates, dtype=np.float64), losses)

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x B x d`` candidates for the fresh-sample measure, after the budget is spent.

        The default repeats the best candidate told (what a latent search hands over);
        methods that adapt a distribution sample from it.
        """
        if self.best_candidate is None:
            raise OptimizerError(f"{self.name}: nothing was told, so there is no best candidate")
        return np.repeat(self.best_candidate[None], n, axis=0)

    def gaussian_law(self) -> GaussianLaw | None:
        """The current per-block Gaussian laws, for methods that adapt one (else None)."""
        return None

    def resolved_settings(self) -> dict[str, Any]:
        """Every setting this optimizer runs with, defaults resolved.

        The fields of ``self.settings``; a subclass extends the dict with what becomes known
        only while it runs (pycma's seeds). The runner records it in each trace's provenance
        (values JSON cannot hold, such as a torch dtype, as their text).
        """
        return dataclasses.asdict(self.settings)

    @abstractmethod
    def _ask(self) -> FloatArray:
        """The method's own proposal step: a ``n x B x d`` array."""

    @abstractmethod
    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """The method's own update from a complete batch (``n x B x d``, ``n x B``)."""
