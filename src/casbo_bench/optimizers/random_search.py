"""Best-of-N sampling from the unguided sampler: what a user does without an optimizer.

Every batch draws each block from N(0, I), the pre-trained sampler's law, and nothing is
learned from the losses: the base class keeps the best sample seen, which is the answer a
best-of-N user keeps. The fresh-sample measure of this method is the unguided sampler itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    SearchSpace,
)


class RandomSearch(Optimizer):
    """Best-of-N search: ``xi_k ~ N(0, I_d)`` for every block, independently, every batch.

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
    scope = "per_step"

    def __init__(
        self, space: SearchSpace, seed: int, *, batch_size: int = 16, **unknown: Any
    ) -> None:
        super().__init__(space, seed, **unknown)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise OptimizerError(f"random: batch_size must be an integer; got {batch_size!r}")
        if batch_size < 1:
            raise OptimizerError(f"random: batch_size must be >= 1; got {batch_size}")
        self.batch_size = int(batch_size)
        self._rng = np.random.default_rng(self.seed)

    def _ask(self) -> FloatArray:
        """A ``batch_size x K x d`` array of independent N(0, I) draws."""
        return self._rng.standard_normal((self.batch_size, self.space.n_blocks, self.space.dim))

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        """Nothing to learn: best-of-N keeps only the best sample (done by the base class)."""

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x K x d`` fresh draws from the unguided sampler N(0, I), not the best sample."""
        return rng.standard_normal((n, self.space.n_blocks, self.space.dim))

    def gaussian_law(self) -> GaussianLaw:
        """N(0, I_d) on every block: the law every batch is drawn from."""
        k, d = self.space.n_blocks, self.space.dim
        return GaussianLaw(
            means=np.zeros((k, d)), covariances=np.broadcast_to(np.eye(d), (k, d, d)).copy()
        )
