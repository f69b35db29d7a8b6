"""CASBO-diag: the CASBO update with a diagonal covariance per block (INGO's diagonal form).

An ablation of :mod:`casbo_bench.optimizers.casbo`: the same scores, step sizes and options,
but each block's law is N(mu_b, diag(sigma_b^2)), so the update is elementwise. In precision
form, with ``eps_i = (z_i - mu) / sigma``,

    sigma^{-2} <- sigma^{-2} (1 + beta_t (1/N) sum_i g_i eps_i^2)
    mu         <- mu - beta_t sigma_new^2 (1/N) sum_i g_i (z_i - mu) / sigma^2

which is ``m = 1 + beta_t (1/N) sum_i g_i eps_i^2`` (the diagonal of the full method's M),
``sigma <- sigma m^{-1/2}`` and ``mu <- mu - beta_t sigma m^{-1} g_bar`` with
``g_bar = (1/N) sum_i g_i eps_i`` (``mean_rule="first_order"`` drops the ``m^{-1}``). The
safeguard raises every ``m`` below ``pd_floor`` to it. Cost ``O(d N)`` per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from casbo_bench.optimizers.base import GaussianLaw, OptimizerError, SearchSpace
from casbo_bench.optimizers.casbo import DEFAULT_PD_FLOOR, MEAN_RULES, CASBOBase, MeanRule


@dataclass(frozen=True)
class DiagonalStep:
    """The result of :func:`diagonal_update` for ``B`` blocks.

    Attributes:
        mean: the new means, a ``B x d`` tensor.
        scale: the new standard deviations sigma, a ``B x d`` tensor.
        smallest_eigenvalue: the smallest entry of each block's m before the floor, ``B``.
        clipped: a ``B`` boolean tensor, True where the floor raised an entry.
    """

    mean: Tensor
    scale: Tensor
    smallest_eigenvalue: Tensor
    clipped: Tensor


def diagonal_update(
    mean: Tensor,
    scale: Tensor,
    eps: Tensor,
    g: Tensor,
    beta: float,
    mean_rule: MeanRule = "exact",
    pd_floor: float = DEFAULT_PD_FLOOR,
) -> DiagonalStep:
    """One diagonal CASBO step for ``B`` blocks: ``m = 1 + beta (1/N) sum_i g_i eps_i^2``.

    ``sigma <- sigma m^{-1/2}``; ``mu <- mu - beta sigma m^{-1} g_bar`` (``"exact"``) or
    ``mu - beta sigma g_bar`` (``"first_order"``), ``m`` floored at ``pd_floor``.

    Args:
        mean: a ``B x d`` tensor of means mu.
        scale: a ``B x d`` tensor of standard deviations sigma.
        eps: a ``N x B x d`` tensor of the standard normals behind the candidates.
        g: a ``N x B`` tensor of normalized scores (lower is better).
        beta: the step size beta_t > 0.
        mean_rule: ``"exact"`` or ``"first_order"``.
        pd_floor: the floor on the entries of m, in (0, 1].
    """
    weights = g.unsqueeze(-1) / eps.shape[0]  # N x B x 1: g_i / N
    m = 1.0 + beta * (weights * eps.square()).sum(dim=0)  # B x d
    g_bar = (weights * eps).sum(dim=0)  # B x d
    smallest = m.amin(dim=-1)
    clipped = smallest < pd_floor
    m = m.clamp(min=pd_floor)
    if mean_rule == "exact":
        direction = scale * g_bar / m
    elif mean_rule == "first_order":
        direction = scale * g_bar
    else:
        raise OptimizerError(f"unknown mean_rule {mean_rule!r}; choose one of {MEAN_RULES}")
    return DiagonalStep(
        mean=mean - beta * direction,
        scale=scale * m.rsqrt(),
        smallest_eigenvalue=smallest,
        clipped=clipped,
    )


class CASBODiag(CASBOBase):
    """CASBO with a diagonal covariance per block, scope per_step.

    Takes the options of :class:`casbo_bench.optimizers.casbo.CASBO` (popsize, beta0,
    normalization, mean_rule, step_schedule, pd_floor, device, dtype); ``pd_floor`` bounds
    each entry of the elementwise ``m``. Two defaults differ, chosen against the diagonal
    ("fast") INGO port, the published code of this diagonal form: ``beta0 = 1/sqrt(d)`` and
    the first-order mean step ``mu - beta sigma g_bar``. The full-covariance default 1/d
    is the rule for a law with ``d^2 / 2`` free parameters; a diagonal law has ``d``, and
    the port's larger step is what its authors run it with. Pass ``beta0="1/d"`` and
    ``mean_rule="exact"`` for the full method's settings.

    Attributes:
        scale: the ``B x d`` tensor of standard deviations sigma.

    >>> opt = CASBODiag(SearchSpace(n_blocks=2, dim=5), seed=0)
    >>> candidates = opt.ask()
    >>> opt.tell(candidates, (candidates**2).sum(axis=2))
    >>> opt.gaussian_law().covariances.shape
    (2, 5, 5)
    """

    name = "casbo-diag"
    uses_torch = True
    fresh_kind = "law"
    scope = "per_step"
    default_beta0 = "1/sqrt(d)"
    default_mean_rule = "first_order"

    def __init__(self, space: SearchSpace, seed: int, **options: Any) -> None:
        super().__init__(space, seed, **options)
        self.scale = torch.full(
            (space.n_blocks, space.dim), space.initial_scale, **self._tensor_kind
        )

    def _propose(self, eps: Tensor) -> Tensor:
        """``z = mu + sigma eps`` (elementwise) for a ``n x B x d`` tensor ``eps``."""
        return self.mean + self.scale * eps

    def _update(self, eps: Tensor, g: Tensor, beta: float) -> tuple[Tensor, Tensor]:
        """The elementwise step of :func:`diagonal_update` on every block."""
        step = diagonal_update(
            self.mean,
            self.scale,
            eps,
            g,
            beta,
            mean_rule=self.settings.mean_rule,
            pd_floor=self.settings.pd_floor,
        )
        self.mean, self.scale = step.mean, step.scale
        return step.clipped, step.smallest_eigenvalue

    def gaussian_law(self) -> GaussianLaw:
        """The current laws: ``B x d`` means and ``B x d x d`` covariances ``diag(sigma^2)``."""
        variances = self.scale.cpu().to(torch.float64).square().numpy()
        return GaussianLaw(
            means=self.mean.cpu().to(torch.float64).numpy(),
            covariances=variances[:, :, None] * np.eye(self.space.dim),
        )
