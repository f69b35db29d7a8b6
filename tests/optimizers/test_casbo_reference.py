"""The fast, batched CASBO update equals the plain NumPy reference (casbo_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casbo_bench.optimizers import OptimizerError, SearchSpace
from casbo_bench.optimizers import casbo_reference as reference
from casbo_bench.optimizers.casbo import (
    CASBO,
    normalize_scores,
    score_to_go,
    step_size,
    whitened_update,
)

TOLERANCE = 1e-10


def random_laws(rng: np.random.Generator, n_blocks: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``B x d`` means and ``B x d x d`` well-conditioned, non-symmetric square roots A."""
    means = rng.standard_normal((n_blocks, dim))
    factors = np.eye(dim) + 0.3 * rng.standard_normal((n_blocks, dim, dim)) / np.sqrt(dim)
    return means, factors


def fast_and_reference(
    seed: int,
    dim: int,
    popsize: int,
    beta: float,
    mean_rule: str,
    n_blocks: int = 3,
    with_deviations: bool = False,
) -> tuple[list[tuple[np.ndarray, np.ndarray, bool]], list[tuple[np.ndarray, np.ndarray, bool]]]:
    """One step on ``n_blocks`` random blocks, by :func:`whitened_update` and the reference.

    ``with_deviations`` hands the update the products ``A eps`` as a proposal forms them.
    """
    rng = np.random.default_rng(seed)
    means, factors = random_laws(rng, n_blocks, dim)
    eps = rng.standard_normal((popsize, n_blocks, dim))
    g = rng.standard_normal((popsize, n_blocks))
    deviations = np.einsum("bij,nbj->nbi", factors, eps) if with_deviations else None
    step = whitened_update(
        torch.from_numpy(means),
        torch.from_numpy(factors.copy()),
        torch.from_numpy(eps),
        torch.from_numpy(g),
        beta,
        mean_rule=mean_rule,  # type: ignore[arg-type]
        deviations=None if deviations is None else torch.from_numpy(deviations),
        overwrite_factor=with_deviations,
    )
    fast, oracle = [], []
    for b in range(n_blocks):
        a = step.factor[b].numpy()
        fast.append((step.mean[b].numpy(), a @ a.T, bool(step.clipped[b])))
        candidates = means[b] + eps[:, b] @ factors[b].T
        covariance = factors[b] @ factors[b].T
        oracle.append(
            reference.casbo_step(means[b], covariance, candidates, g[:, b], beta, mean_rule)
        )
    return fast, oracle


@pytest.mark.parametrize("mean_rule", ["exact", "first_order"])
@pytest.mark.parametrize(("dim", "popsize"), [(4, 10), (9, 10), (25, 8), (80, 16)])
@pytest.mark.parametrize(("beta", "acts"), [(0.05, False), (1.5, True)])
@pytest.mark.parametrize("with_deviations", [False, True])
def test_whitened_update_equals_reference(
    mean_rule: str, dim: int, popsize: int, beta: float, acts: bool, with_deviations: bool
) -> None:
    """Both forms of the update: the Householder QR with A multiplied again, and (given the
    proposal's A eps where d >= REUSE_ASPECT N: 25 x 8, 80 x 16) the Cholesky QR reusing it."""
    fast, oracle = fast_and_reference(
        dim * 100 + popsize, dim, popsize, beta, mean_rule, with_deviations=with_deviations
    )
    for (mean, cov, clipped), (ref_mean, ref_cov, ref_clipped) in zip(fast, oracle, strict=True):
        assert clipped == ref_clipped
        np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(cov, ref_cov, rtol=0, atol=TOLERANCE)
    # Each case really is the one it is named after: the safeguard acts in some block
    # (big step) or in none (small step).
    assert any(clipped for _, _, clipped in fast) == acts


def test_whitened_update_keeps_covariance_positive_definite_under_the_floor() -> None:
    rng = np.random.default_rng(3)
    means, factors = random_laws(rng, 2, 6)
    eps = torch.from_numpy(rng.standard_normal((12, 2, 6)))
    g = torch.from_numpy(-np.abs(rng.standard_normal((12, 2))))  # every M direction widens
    step = whitened_update(
        torch.from_numpy(means), torch.from_numpy(factors), eps, g, 5.0, pd_floor=0.25
    )
    assert bool(step.clipped.all())
    assert bool((step.smallest_eigenvalue < 0).all())  # M itself was indefinite
    for b in range(2):
        old = factors[b] @ factors[b].T
        new = step.factor[b].numpy() @ step.factor[b].numpy().T
        # Generalized eigenvalues of (Sigma_new, Sigma_old): the variance growth per direction.
        growth = np.linalg.eigvals(np.linalg.solve(old, new)).real
        assert growth.min() > 0
        assert growth.max() == pytest.approx(1 / 0.25, rel=1e-9)


def test_zero_scores_leave_the_law_unchanged() -> None:
    rng = np.random.default_rng(4)
    means, factors = random_laws(rng, 2, 5)
    eps = torch.from_numpy(rng.standard_normal((8, 2, 5)))
    step = whitened_update(
        torch.from_numpy(means), torch.from_numpy(factors), eps, torch.zeros(8, 2).double(), 0.7
    )
    assert torch.equal(step.mean, torch.from_numpy(means))
    assert torch.equal(step.factor, torch.from_numpy(factors))


def test_score_to_go_equals_reference() -> None:
    losses = np.random.default_rng(5).standard_normal((7, 4))
    fast = score_to_go(torch.from_numpy(losses)).numpy()
    np.testing.assert_allclose(fast, reference.score_to_go(losses), rtol=0, atol=1e-14)
    np.testing.assert_allclose(fast[:, 0], losses.sum(axis=1), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(fast[:, -1], losses[:, -1])


@pytest.mark.parametrize("normalization", ["zscore", "rank", "none"])
def test_normalize_scores_equals_reference(normalization: str) -> None:
    rng = np.random.default_rng(6)
    scores = rng.standard_normal((9, 4))
    scores[:, 1] = np.round(scores[:, 1])  # ties
    scores[:, 2] = 3.7  # all equal: the block is skipped
    g, active = normalize_scores(torch.from_numpy(scores), normalization)  # type: ignore[arg-type]
    for b in range(4):
        expected = reference.normalize_scores(scores[:, b], normalization)
        np.testing.assert_allclose(g[:, b].numpy(), expected, rtol=0, atol=1e-12)
    if normalization == "none":
        assert bool(active.all())
    else:
        assert active.tolist() == [True, True, False, True]
        np.testing.assert_array_equal(g[:, 2].numpy(), np.zeros(9))
        moments = g[:, [0, 1, 3]]
        np.testing.assert_allclose(moments.mean(dim=0).numpy(), 0, atol=1e-12)
        np.testing.assert_allclose(moments.std(dim=0, correction=0).numpy(), 1, atol=1e-12)


def test_rank_normalization_gives_ties_their_average_rank() -> None:
    scores = torch.tensor([[2.0], [1.0], [2.0], [5.0]], dtype=torch.float64)
    g, _ = normalize_scores(scores, "rank")
    ranks = np.array([1.5, 0.0, 1.5, 3.0])
    expected = (ranks - ranks.mean()) / (ranks - ranks.mean()).std()
    np.testing.assert_allclose(g[:, 0].numpy(), expected, rtol=0, atol=1e-14)


def test_reference_rejects_unknown_rules() -> None:
    with pytest.raises(OptimizerError, match="normalization"):
        reference.normalize_scores(np.ones(3), "minmax")
    with pytest.raises(OptimizerError, match="mean_rule"):
        reference.casbo_step(np.zeros(2), np.eye(2), np.ones((4, 2)), np.ones(4), 0.1, "second")


@pytest.mark.parametrize("mean_rule", ["exact", "first_order"])
@pytest.mark.parametrize("normalization", ["zscore", "rank"])
@pytest.mark.parametrize("schedule", ["constant", "inverse_sqrt"])
@pytest.mark.parametrize("dim", [4, 40])
def test_optimizer_iterations_equal_reference(
    mean_rule: str, normalization: str, schedule: str, dim: int
) -> None:
    """Ask/tell of CASBO on 3 blocks, step by step against the reference from the same law
    (at d = 40, N = 16 the update reuses the proposal's A eps: d >= REUSE_ASPECT N)."""
    space = SearchSpace(n_blocks=3, dim=dim)
    opt = CASBO(
        space,
        seed=11,
        mean_rule=mean_rule,
        normalization=normalization,
        step_schedule=schedule,
        beta0=0.4,
        device="cpu",
    )
    rng = np.random.default_rng(12)
    shift = rng.standard_normal((3, dim))
    for t in range(1, 6):
        before = opt.gaussian_law()
        candidates = opt.ask()
        losses = ((candidates - shift) ** 2).sum(axis=2) + rng.standard_normal((opt.popsize, 3))
        opt.tell(candidates, losses)
        after = opt.gaussian_law()
        to_go = reference.score_to_go(losses)
        beta = step_size(0.4, t, schedule)  # type: ignore[arg-type]
        for b in range(3):
            g = reference.normalize_scores(to_go[:, b], normalization)
            mean, cov, _ = reference.casbo_step(
                before.means[b], before.covariances[b], candidates[:, b], g, beta, mean_rule
            )
            np.testing.assert_allclose(after.means[b], mean, rtol=0, atol=TOLERANCE)
            np.testing.assert_allclose(after.covariances[b], cov, rtol=0, atol=TOLERANCE)
