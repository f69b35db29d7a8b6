"""A (1+lambda) evolution strategy: the parent moves only to a better mutant; 1/5 success rule.

Not one of the paper's methods: tests/test_plugins.py drops this file into a copy of
``casbo_bench.optimizers`` to show that an optimizer is one file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    SearchSpace,
    default_population_size,
)

STEP_UP = math.exp(1 / 3)
"""Step-size factor after a generation that improved on the parent."""

STEP_DOWN = math.exp(-1 / 12)
"""Step-size factor after one that did not: with STEP_UP, log-neutral at a 1/5 success rate."""


@dataclass(frozen=True)
class ElitistSettings:
    """Attributes: popsize, the mutants per generation (lambda)."""

    popsize: int


class ElitistES(Optimizer):
    """(1+lambda)-ES: ``lambda`` mutants ``parent + sigma z``, ``z ~ N(0, I)``, per generation.

    The best mutant replaces the parent when its rollout loss is lower; the step size sigma
    grows after such a success and shrinks otherwise (the 1/5 success rule). The parent
    starts at the initial mean with sigma the initial scale, so the first generation is a
    draw from the initial law.

    Args:
        space: the search space (every block searched jointly; scope ``"per_step"``).
        seed: seeds the NumPy generator of every mutation.
        popsize: lambda (default ``4 + floor(3 ln D)`` over the ``D`` searched numbers).

    >>> ElitistES(SearchSpace(n_blocks=2, dim=5), seed=0).settings.popsize  # D = 10
    10
    """

    name = "elitist-es"
    uses_torch = False
    fresh_kind = "point"
    scope = "per_step"

    def __init__(
        self, space: SearchSpace, seed: int, *, popsize: int | None = None, **unknown: Any
    ) -> None:
        super().__init__(space, seed, **unknown)
        if popsize is None:
            popsize = default_population_size(space.search_dim)
        if isinstance(popsize, bool) or not isinstance(popsize, int | np.integer) or popsize < 1:
            raise OptimizerError(f"elitist-es: popsize must be an integer >= 1; got {popsize!r}")
        self.settings = ElitistSettings(popsize=int(popsize))
        self._rng = np.random.default_rng(self.seed)
        self._parent = np.full((space.n_blocks, space.dim), space.initial_mean)
        self._parent_loss = math.inf
        self._step_size = space.initial_scale

    def _ask(self) -> FloatArray:
        """``popsize`` mutants of the parent, a ``popsize x B x d`` array."""
        shape = (self.settings.popsize, self.space.n_blocks, self.space.dim)
        return self._parent + self._step_size * self._rng.standard_normal(shape)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Keep the better of parent and best mutant; adapt sigma to the outcome."""
        totals = losses.sum(axis=1)
        best = int(np.argmin(totals))
        improved = totals[best] < self._parent_loss
        # The first generation has no parent loss to beat: it sets the parent, not sigma.
        if math.isfinite(self._parent_loss):
            self._step_size *= STEP_UP if improved else STEP_DOWN
        if improved:
            self._parent = candidates[best].copy()
            self._parent_loss = float(totals[best])

    def gaussian_law(self) -> GaussianLaw:
        """N(parent, sigma^2 I) on every block: the law the next batch is drawn from."""
        b, d = self.space.n_blocks, self.space.dim
        return GaussianLaw(
            means=self._parent.copy(),
            covariances=np.broadcast_to(self._step_size**2 * np.eye(d), (b, d, d)).copy(),
        )
