"""CASBO-mean-only: CASBO with the covariance frozen, the rate check's adaptive control.

Every block keeps the starting law's square root ``A_0 = s0 I`` and only the mean moves. With
the covariance fixed, the precision-form rule of docs/method.md section 3 keeps
``Sigma(new) = Sigma``, and the mean step becomes

    mu <- mu - beta_t Sigma (1/N) sum_i g_i Sigma^{-1} d_i = mu - beta_t A_0 g_bar,
    g_bar = (1/N) sum_i g_i eps_i,

the first-order step (``mean_rule`` has nothing to choose: ``M`` is never formed). Its
expected loss cannot go below ``min_mu J(mu, Sigma_0)``, which is positive on every problem
with a noisy chain, so its average gap tends to that floor instead of zero: an adaptive
method that must fail the d^2/sqrt(T) check (docs/method.md section 4b). The runner records
the floor (the trace provenance's ``frozen_law_floor``) because :attr:`fixed_covariance` is
set.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from casbo_bench.optimizers.base import OptimizerError, SearchSpace
from casbo_bench.optimizers.casbo import CASBO


class CASBOMeanOnly(CASBO):
    """CASBO whose per-block laws N(mu_b, A_0 A_0^T) adapt the mean only.

    Takes the options of :class:`casbo_bench.optimizers.casbo.CASBO` except ``mean_rule``
    and ``pd_floor``, which act only through the covariance update.

    >>> import numpy as np
    >>> opt = CASBOMeanOnly(SearchSpace(n_blocks=2, dim=3), seed=0)
    >>> candidates = opt.ask()
    >>> opt.tell(candidates, (candidates**2).sum(axis=2))
    >>> bool(np.allclose(opt.gaussian_law().covariances, np.eye(3)))
    True
    """

    name = "casbo-mean-only"
    uses_torch = True
    fresh_kind = "law"
    fixed_covariance: ClassVar[bool] = True
    default_mean_rule = "first_order"

    def __init__(self, space: SearchSpace, seed: int, **options: Any) -> None:
        frozen = sorted({"mean_rule", "pd_floor"} & set(options))
        if frozen:
            raise OptimizerError(
                f"casbo-mean-only never updates its covariance, so {frozen} have no effect; "
                f"remove them from the options"
            )
        super().__init__(space, seed, **options)

    def _update(self, eps: Tensor, g: Tensor, beta: float) -> tuple[Tensor, Tensor]:
        """``mu <- mu - beta A_0 g_bar`` on every block; the factor stays ``A_0``."""
        g_bar = torch.einsum("nb,nbd->bd", g, eps) / eps.shape[0]
        self.mean = self.mean - beta * torch.einsum("bij,bj->bi", self.factor, g_bar)
        no_event = torch.zeros(self.space.n_blocks, dtype=torch.bool, device=g.device)
        return no_event, torch.ones(self.space.n_blocks, dtype=g.dtype, device=g.device)
