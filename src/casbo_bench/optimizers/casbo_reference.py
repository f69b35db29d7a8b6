"""A plain NumPy reference of one CASBO iteration for one block, written to be read.

Read :func:`casbo_step` first: it is the update of method.md section 3 in its precision form,
with full ``d x d`` matrices and nothing clever, about twenty lines. The two helpers before it
turn a population's step losses into the scores the update uses. The fast, batched,
low-rank form in :mod:`casbo_bench.optimizers.casbo` is tested against this module; this one
is the oracle, never the path a run takes, and it defines no optimizer.

Notation, for one block: the law is N(mu, Sigma) with precision P = Sigma^{-1}; a population
of N candidates ``z_i`` with deviations ``d_i = z_i - mu`` and normalized scores ``g_i``
(lower is better); a step size ``beta``.
"""

from __future__ import annotations

import numpy as np

from casbo_bench.optimizers.base import FloatArray, OptimizerError


def score_to_go(losses: FloatArray) -> FloatArray:
    """``G[:, b] = sum_{j >= b} losses[:, j]`` for a ``N x B`` array of step losses.

    Blocks are in generation order: block 0 is the first step generated, so its score-to-go
    is the loss of the whole rollout.
    """
    n_blocks = losses.shape[1]
    return np.stack([losses[:, b:].sum(axis=1) for b in range(n_blocks)], axis=1)


def normalize_scores(scores: FloatArray, normalization: str) -> FloatArray:
    """Normalize a length-``N`` vector of one block's scores over the population.

    ``"zscore"``: ``(G - mean(G)) / std(G)`` (population std); ``"rank"``: average ranks
    (0-based, ties share the mean of their ranks) centred and scaled to unit variance;
    ``"none"``: ``G``. When all ``N`` scores are equal, ``"zscore"`` and ``"rank"`` return
    zeros: the update is then skipped (``g = 0`` leaves mu and Sigma unchanged).
    """
    if normalization == "none":
        return scores
    if normalization not in ("zscore", "rank"):
        raise OptimizerError(f"unknown normalization {normalization!r}")
    if scores.max() == scores.min():
        return np.zeros_like(scores)
    if normalization == "rank":
        scores = np.array(
            [np.sum(scores < s) + 0.5 * (np.sum(scores == s) - 1) for s in scores], dtype=float
        )
    centred = scores - scores.mean()
    return centred / centred.std()


def casbo_step(
    mean: FloatArray,
    covariance: FloatArray,
    candidates: FloatArray,
    g: FloatArray,
    beta: float,
    mean_rule: str = "exact",
    pd_floor: float = 0.25,
) -> tuple[FloatArray, FloatArray, bool]:
    """One CASBO iteration for one block, in precision form.

    ``P <- P + beta (1/N) sum_i g_i P d_i d_i^T P``;
    ``mu <- mu - beta Sigma_new (1/N) sum_i g_i P d_i`` (``"exact"``) or
    ``mu <- mu - beta Sigma (1/N) sum_i g_i P d_i`` (``"first_order"``).

    Args:
        mean: mu, a ``d`` array.
        covariance: Sigma, a ``d x d`` array.
        candidates: a ``N x d`` array of the candidates ``z_i``.
        g: a ``N`` array of normalized scores.
        beta: the step size.
        mean_rule: ``"exact"`` or ``"first_order"``.
        pd_floor: the smallest eigenvalue the whitened step ``Sigma^{1/2} P_new Sigma^{1/2}``
            may have (the fast module's ``DEFAULT_PD_FLOOR``).

    Returns:
        ``(mean, covariance, clipped)``: the new mu and Sigma, and whether the floor acted.
    """
    n = candidates.shape[0]
    precision = np.linalg.inv(covariance)
    deviations = candidates - mean  # rows d_i = z_i - mu

    ### Natural gradient of the expected score, in precision coordinates
    whitened_dev = deviations @ precision  # rows P d_i
    grad_mean = (g[:, None] * whitened_dev).sum(axis=0) / n  # (1/N) sum g_i P d_i
    grad_precision = (g[:, None] * whitened_dev).T @ whitened_dev / n  # (1/N) sum g_i P d d^T P

    ### Safeguard: the new precision must stay positive definite
    root = np.linalg.cholesky(covariance)  # any square root L: L L^T = Sigma
    increment = root.T @ (beta * grad_precision) @ root  # the step seen from N(0, I): M - I
    lam, vectors = np.linalg.eigh(increment)
    clipped = bool(lam.min() < pd_floor - 1)
    lam = np.maximum(lam, pd_floor - 1)  # M's eigenvalues 1 + lam stay >= pd_floor
    root_inv = np.linalg.inv(root)
    step_precision = root_inv.T @ (vectors * lam) @ vectors.T @ root_inv  # beta grad_P if unclipped

    ### Adapt the precision
    new_precision = precision + step_precision  # P + beta (1/N) sum g_i P d_i d_i^T P
    new_covariance = np.linalg.inv(new_precision)

    ### Move the mean
    if mean_rule == "exact":
        new_mean = mean - beta * new_covariance @ grad_mean  # the Sigma just adapted
    elif mean_rule == "first_order":
        new_mean = mean - beta * covariance @ grad_mean  # the old Sigma (INGO's code)
    else:
        raise OptimizerError(f"unknown mean_rule {mean_rule!r}")
    return new_mean, 0.5 * (new_covariance + new_covariance.T), clipped
