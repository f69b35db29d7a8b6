"""CASBO-latent: CASBO on the initial latent only, the ablation of per-step adaptation.

One full-covariance Gaussian over the initial latent ``xi_K`` (scope ``"latent"``, one block);
the runner fixes every later noise to one seeded draw and tells back the rollout loss. The
update is CASBO's own (:class:`casbo_bench.optimizers.casbo.CASBO`): with a single block the
score-to-go is the rollout loss, so nothing else changes.
"""

from __future__ import annotations

from typing import Any

from casbo_bench.optimizers.base import OptimizerError, SearchSpace
from casbo_bench.optimizers.casbo import CASBO


class CASBOLatent(CASBO):
    """CASBO over the initial latent: one Gaussian N(mu, A A^T) of dimension d.

    Takes every option of :class:`casbo_bench.optimizers.casbo.CASBO`.

    Raises:
        OptimizerError: the search space has more than one block.

    >>> opt = CASBOLatent(SearchSpace(n_blocks=1, dim=6), seed=0)
    >>> opt.ask().shape
    (10, 1, 6)
    """

    name = "casbo-latent"
    uses_torch = True
    fresh_kind = "law"
    scope = "latent"

    def __init__(self, space: SearchSpace, seed: int, **options: Any) -> None:
        if space.n_blocks != 1:
            raise OptimizerError(
                f"casbo-latent searches the initial latent only, one block; got "
                f"n_blocks={space.n_blocks} (use casbo for one law per step)"
            )
        super().__init__(space, seed, **options)
