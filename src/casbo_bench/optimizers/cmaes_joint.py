"""CMA-ES over every injected noise at once: the matched-scope twin of CASBO.

CASBO adapts one law per step of the chain, so the baseline that searches the same numbers
is CMA-ES over all ``K * d`` noises jointly (scope ``"per_step"``), not over the initial latent
alone (docs/method.md section 4b). pycma's full covariance has ``(K d)^2 / 2`` entries and an
``O((K d)^3)`` eigendecomposition every few iterations, so above :data:`FULL_COVARIANCE_LIMIT`
searched numbers the search is diagonal (pycma's ``{'CMA_diagonal': True}``, not diagonal
decoding); the trace's settings say which. On a plain problem (K = 1) it is :mod:`cmaes`
itself, so the workflow does not run it there (the ledger reuses ``cmaes``).
"""

from __future__ import annotations

from casbo_bench.optimizers.cmaes import CMAES, Covariance

FULL_COVARIANCE_LIMIT = 100
"""The most searched numbers ``K d`` for which the covariance is full."""


class CMAESJoint(CMAES):
    """CMA-ES over the ``K x d`` noises of every step as one vector of ``D = K d`` numbers.

    Takes every option of :class:`casbo_bench.optimizers.cmaes.CMAES`; the covariance is full
    while ``D <= FULL_COVARIANCE_LIMIT`` and diagonal above.

    >>> from casbo_bench.optimizers.base import SearchSpace
    >>> CMAESJoint(SearchSpace(n_blocks=5, dim=4), seed=0).settings.covariance
    'full'
    >>> CMAESJoint(SearchSpace(n_blocks=22, dim=63), seed=0).settings.covariance
    'diagonal'
    """

    name = "cmaes-joint"
    uses_torch = False
    fresh_kind = "point"
    scope = "per_step"

    def _covariance(self) -> Covariance:
        return "full" if self.space.search_dim <= FULL_COVARIANCE_LIMIT else "diagonal"
