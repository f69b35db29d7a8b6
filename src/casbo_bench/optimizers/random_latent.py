"""Best-of-N over the initial latent: the latent-scope twin of best-of-N sampling.

Latent methods (CMA-ES, TuRBO, CASBO-latent) search the initial latent with every later noise
frozen to one seeded draw, the common random numbers the runner shares between them. Best-of-N
over that same latent (scope ``"latent"``) is what those methods must beat to show that their
search does anything: on the molecule task a best-of-40 over random latents with the frozen
later noises already scores like TuRBO (docs/method.md section 4b). On a plain problem (K = 1)
it is :mod:`random_search` itself, so the workflow does not run it there.
"""

from __future__ import annotations

import numpy as np

from casbo_bench.optimizers.base import FloatArray, Optimizer
from casbo_bench.optimizers.random_search import RandomSearch


class RandomLatent(RandomSearch):
    """Best-of-N over the initial latent: ``xi_K`` from the initial law, later noises frozen.

    Takes the options of :class:`casbo_bench.optimizers.random_search.RandomSearch`. Like
    every latent search it hands over its best latent: the fresh-sample measure reruns that
    latent with fresh later noises (as for CMA-ES and TuRBO), not the unguided sampler.

    >>> from casbo_bench.optimizers.base import SearchSpace
    >>> RandomLatent(SearchSpace(n_blocks=1, dim=3), seed=0, batch_size=4).ask().shape
    (4, 1, 3)
    """

    name = "random-latent"
    uses_torch = False
    fresh_kind = "point"
    scope = "latent"

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` copies of the best latent told (what a latent search hands over)."""
        return Optimizer.sample_final(self, n, rng)
