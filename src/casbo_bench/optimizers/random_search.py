"""Best-of-N sampling from the unguided sampler: what a user does without an optimizer.

Every batch draws each block from the initial law (N(0, I), the pre-trained sampler's law,
on every problem here), and nothing is learned from the losses: the base class keeps the best
sample seen, which is the answer a best-of-N user keeps. The fresh-sample measure of this
method is the unguided sampler itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from casbo_bench.names import FreshKind
from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    Scope,
    SearchSpace,
)


@dataclass(frozen=True)
class RandomSearchSettings:
    """Attributes: batch_size, samples per :meth:`Optimizer.ask`."""

    batch_size: int


class RandomSearch(Optimizer):
    """Best-of-N search: every block from the initial law, independently, every batch.

    Args:
        space: the search space (``K`` blocks of size ``d``; scope ``"per_step"``).
        seed: seeds the NumPy generator that draws every sample.
        batch_size: samples per :meth:`ask` (default 16). It changes only how evaluations
            are grouped in the trace, not which law they come from.

    >>> opt = RandomSearch(SearchSpace(n_blocks=2, dim=3), seed=0, batch_size=4)
    >>> opt.ask().shape
    (4, 2, 3)
    """

    name = "random"
    uses_torch = False
    fresh_kind: ClassVar[FreshKind] = "law"
    scope: ClassVar[Scope] = "per_step"

    def __init__(
        self, space: SearchSpace, seed: int, *, batch_size: int = 16, **unknown: Any
    ) -> None:
        super().__init__(space, seed, **unknown)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise OptimizerError(f"random: batch_size must be an integer; got {batch_size!r}")
        if batch_size < 1:
            raise OptimizerError(f"random: batch_size must be >= 1; got {batch_size}")
        self.settings = RandomSearchSettings(batch_size=int(batch_size))
        self._rng = np.random.default_rng(self.seed)

    @property
    def batch_size(self) -> int:
        """Samples per batch."""
        return self.settings.batch_size

    def _ask(self) -> FloatArray:
        """A ``batch_size x B x d`` array of independent draws from the initial law."""
        return self.space.initial_draw(self._rng, self.batch_size)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Nothing to learn: best-of-N keeps only the best sample (done by the base class)."""

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x B x d`` fresh draws from the unguided sampler's law, not the best sample."""
        return self.space.initial_draw(rng, n)

    def gaussian_law(self) -> GaussianLaw:
        """The initial law on every block: the law every batch is drawn from."""
        b, d = self.space.n_blocks, self.space.dim
        variance = self.space.initial_scale**2
        return GaussianLaw(
            means=np.full((b, d), self.space.initial_mean),
            covariances=np.broadcast_to(variance * np.eye(d), (b, d, d)).copy(),
        )
