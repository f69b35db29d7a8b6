"""xNES: utilities, one update by hand, the start, seeding, convergence, invariance, options."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg

from casbo_bench.optimizers import OptimizerError, SearchSpace, make_optimizer
from casbo_bench.optimizers.base import default_population_size
from casbo_bench.optimizers.xnes import (
    SIGMA_FLOOR,
    XNES,
    XNESSettings,
    XNESState,
    rank_utilities,
    symmetric_expm,
    utilities,
    xnes_learning_rate,
    xnes_step,
)

TARGET = 1e-6
TEST_SEEDS = range(100, 105)
"""Seeds the convergence tests run; the budgets below were set on seeds 0-9, not these."""

Loss = Callable[[np.ndarray], np.ndarray]
"""A loss of a ``n x D`` batch of flattened candidates: a ``n`` array."""


def sphere(x: np.ndarray) -> np.ndarray:
    return np.asarray((x**2).sum(axis=1))


def rotated_ellipsoid(dim: int, log10_condition: float, seed: int) -> tuple[Loss, np.ndarray]:
    """``f(x) = (x - x*)^T H (x - x*)`` with ``H = Q diag(10^(c (i-1)/(d-1))) Q^T``, and H."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    hessian = (q * 10.0 ** (log10_condition * np.arange(dim) / (dim - 1))) @ q.T
    shift = rng.uniform(-1.0, 1.0, size=dim)

    def loss(x: np.ndarray) -> np.ndarray:
        y = x - shift
        return np.asarray(np.einsum("ni,ij,nj->n", y, hessian, y))

    return loss, hessian


def run(opt: XNES, loss: Loss, budget: int, target: float = -math.inf) -> list[np.ndarray]:
    """Ask/tell until ``budget`` evaluations or best loss <= target; every batch asked."""
    asked = []
    while opt.n_evaluations < budget and opt.best_loss > target:
        candidates = opt.ask()
        flat = candidates.reshape(candidates.shape[0], -1)
        opt.tell(candidates, loss(flat)[:, None])
        asked.append(candidates)
    return asked


# --- utilities ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 17, 100])
def test_rank_utilities_sum_to_zero_and_do_not_increase(n: int) -> None:
    u = rank_utilities(n)
    assert u.shape == (n,)
    assert abs(u.sum()) < 1e-15
    assert np.all(np.diff(u) <= 0) and u[0] > 0
    # The worse half (ranks >= N/2 + 1) gets exactly -1/N.
    worse = np.arange(1, n + 1) >= n / 2 + 1
    np.testing.assert_allclose(u[worse], -1.0 / n, rtol=1e-14)


def test_rank_utilities_closed_form_at_n4() -> None:
    # ln(3) and ln(3) - ln(2) over their sum, minus 1/4; ranks 3 and 4 get weight 0.
    w = np.array([math.log(3), math.log(3) - math.log(2), 0.0, 0.0])
    np.testing.assert_allclose(rank_utilities(4), w / w.sum() - 0.25, rtol=1e-15)


def test_utilities_follow_the_ranks_of_the_losses() -> None:
    losses = np.array([5.0, -1.0, 3.0, 10.0, 0.5, 7.0])
    u = utilities(losses)
    np.testing.assert_array_equal(u[np.argsort(losses)], rank_utilities(6))


def test_tied_losses_share_the_average_utility() -> None:
    by_rank = rank_utilities(5)
    u = utilities(np.array([2.0, 1.0, 2.0, 0.0, 2.0]))
    np.testing.assert_allclose(u[[3, 1]], by_rank[:2], rtol=1e-15)
    np.testing.assert_allclose(u[[0, 2, 4]], by_rank[2:].mean(), rtol=1e-14)
    assert abs(u.sum()) < 1e-15
    np.testing.assert_array_equal(utilities(np.full(6, 3.5)), np.zeros(6))


def test_the_update_does_not_depend_on_the_order_of_equal_losses() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 3))
    losses = np.array([1.0, 2.0, 2.0, 0.5, 2.0, 3.0])
    state = XNESState(mean=np.zeros(3), sigma=1.0, factor=np.eye(3))
    settings = XNESSettings.validated(3, popsize=None, eta_mu=1.0, eta_sigma=None, eta_B=None)
    perm = np.array([0, 4, 1, 3, 2, 5])  # swaps two of the tied candidates
    first = xnes_step(state, s, losses, settings).state
    swapped = xnes_step(state, s[perm], losses[perm], settings).state
    np.testing.assert_allclose(swapped.mean, first.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(swapped.sigma, first.sigma, rtol=1e-13)
    np.testing.assert_allclose(swapped.factor, first.factor, rtol=1e-13, atol=1e-15)


def test_equal_losses_leave_the_law_unchanged() -> None:
    opt = XNES(SearchSpace(1, 3), seed=0)
    candidates = opt.ask()
    opt.tell(candidates, np.ones((candidates.shape[0], 1)))
    np.testing.assert_array_equal(opt.state.mean, np.zeros(3))
    assert opt.state.sigma == 1.0
    np.testing.assert_array_equal(opt.state.factor, np.eye(3))


# --- defaults and one update by hand --------------------------------------------------------


def test_published_defaults() -> None:
    assert [default_population_size(d) for d in (1, 2, 5, 10, 100)] == [4, 6, 8, 10, 17]
    for d in (1, 2, 5, 10):
        assert xnes_learning_rate(d) == pytest.approx((9 + 3 * math.log(d)) / (5 * d**1.5))
    assert xnes_learning_rate(1) == pytest.approx(1.8)


def test_resolved_settings_hold_the_rates_and_popsize_as_numbers() -> None:
    settings = XNES(SearchSpace(2, 3), seed=0).resolved_settings()
    assert settings == {
        "popsize": 9,
        "eta_mu": 1.0,
        "eta_sigma": pytest.approx(xnes_learning_rate(6)),
        "eta_B": pytest.approx(xnes_learning_rate(6)),
    }
    assert type(settings["popsize"]) is int
    assert all(type(settings[key]) is float for key in ("eta_mu", "eta_sigma", "eta_B"))
    custom = XNES(SearchSpace(1, 3), seed=0, popsize=12, eta_mu=0.5, eta_sigma=0.1, eta_B=0.0)
    assert custom.resolved_settings() == {
        "popsize": 12,
        "eta_mu": 0.5,
        "eta_sigma": 0.1,
        "eta_B": 0.0,
    }


def hand_update(
    mean: np.ndarray,
    sigma: float,
    factor: np.ndarray,
    s: np.ndarray,
    losses: np.ndarray,
    eta_mu: float,
    eta_sigma: float,
    eta_b: float,
) -> tuple[np.ndarray, float, np.ndarray]:
    """The formulas of the task, term by term, with loops (no ties among ``losses``)."""
    n, dim = s.shape
    order = sorted(range(n), key=lambda i: losses[i])
    weights = [max(0.0, math.log(n / 2 + 1) - math.log(i)) for i in range(1, n + 1)]
    u = [w / sum(weights) - 1.0 / n for w in weights]
    g_delta = np.zeros(dim)
    g_m = np.zeros((dim, dim))
    for rank, i in enumerate(order):
        g_delta += u[rank] * s[i]
        g_m += u[rank] * (np.outer(s[i], s[i]) - np.eye(dim))
    g_sigma = np.trace(g_m) / dim
    g_b = g_m - g_sigma * np.eye(dim)
    new_mean = mean + eta_mu * sigma * factor @ g_delta
    new_sigma = sigma * math.exp(eta_sigma * g_sigma / 2)
    new_factor = factor @ scipy.linalg.expm(eta_b * g_b / 2)
    return new_mean, new_sigma, new_factor


def test_two_updates_match_a_hand_computation_at_d2() -> None:
    space = SearchSpace(1, 2, initial_mean=0.5, initial_scale=2.0)
    opt = XNES(space, seed=3)
    eta = (9 + 3 * math.log(2)) / (5 * 2 * math.sqrt(2))
    mean, sigma, factor = np.full(2, 0.5), 2.0, np.eye(2)
    for losses in ([3.0, 1.0, 4.0, 1.5, 9.0, 2.6], [0.2, 0.7, 0.1, 0.9, 0.4, 0.3]):
        candidates = opt.ask()
        assert candidates.shape == (6, 1, 2)
        # The draws behind the candidates, recovered from the law they came from.
        s = np.linalg.solve(sigma * factor, (candidates[:, 0] - mean).T).T
        opt.tell(candidates, np.array(losses)[:, None])
        mean, sigma, factor = hand_update(mean, sigma, factor, s, np.array(losses), 1.0, eta, eta)
        np.testing.assert_allclose(opt.state.mean, mean, rtol=1e-12, atol=1e-14)
        assert opt.state.sigma == pytest.approx(sigma, rel=1e-12)
        np.testing.assert_allclose(opt.state.factor, factor, rtol=1e-12, atol=1e-14)
    assert not np.allclose(factor, np.eye(2))  # B moved: the second step tested B's role
    assert np.linalg.det(opt.state.factor) == pytest.approx(1.0, rel=1e-12)


def test_xnes_step_with_fixed_draws_matches_the_hand_computation() -> None:
    s = np.array([[0.3, -1.2], [1.5, 0.4], [-0.7, -0.1], [0.0, 2.2], [-1.9, 0.8], [0.6, 0.6]])
    losses = np.array([0.9, 0.1, 0.5, 2.0, 0.3, 1.1])
    factor = np.array([[1.2, 0.3], [-0.2, 0.9]])
    state = XNESState(mean=np.array([1.0, -2.0]), sigma=0.7, factor=factor)
    settings = XNESSettings(popsize=6, eta_mu=0.8, eta_sigma=0.3, eta_B=0.45)
    step = xnes_step(state, s, losses, settings)
    mean, sigma, new_factor = hand_update(state.mean, 0.7, factor, s, losses, 0.8, 0.3, 0.45)
    np.testing.assert_allclose(step.state.mean, mean, rtol=1e-13)
    assert step.state.sigma == pytest.approx(sigma, rel=1e-13)
    np.testing.assert_allclose(step.state.factor, new_factor, rtol=1e-12)
    assert not step.rejected and not step.sigma_floored
    np.testing.assert_array_equal(state.factor, factor)  # the old state is left alone


def test_symmetric_expm_matches_scipy() -> None:
    a = np.random.default_rng(0).standard_normal((5, 5))
    sym = a + a.T
    np.testing.assert_allclose(symmetric_expm(sym), scipy.linalg.expm(sym), rtol=1e-11)


# --- start, seeding, the law ----------------------------------------------------------------


def test_first_batch_is_drawn_from_the_initial_law() -> None:
    space = SearchSpace(2, 3, initial_mean=0.5, initial_scale=2.0)
    opt = XNES(space, seed=0, popsize=20000)
    law = opt.gaussian_law()
    np.testing.assert_array_equal(law.means, np.full((2, 3), 0.5))
    np.testing.assert_array_equal(law.covariances, np.broadcast_to(4.0 * np.eye(3), (2, 3, 3)))
    flat = opt.ask().reshape(20000, 6)
    # Standard errors: 2 / sqrt(20000) = 0.014 for the mean, about 0.03 for a variance of 4.
    np.testing.assert_allclose(flat.mean(axis=0), 0.5, atol=0.06)
    np.testing.assert_allclose(np.cov(flat.T), 4.0 * np.eye(6), atol=0.15)


def test_same_seed_same_candidates_different_seed_different() -> None:
    loss, _ = rotated_ellipsoid(5, 3.0, seed=0)
    first = run(XNES(SearchSpace(1, 5), seed=7), loss, 400)
    again = run(XNES(SearchSpace(1, 5), seed=7), loss, 400)
    other = run(XNES(SearchSpace(1, 5), seed=8), loss, 400)
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
    assert not np.allclose(first[0], other[0])


def test_sample_final_draws_from_the_law_with_the_given_generator() -> None:
    loss, _ = rotated_ellipsoid(3, 2.0, seed=1)
    opt = XNES(SearchSpace(1, 3), seed=0)
    run(opt, loss, 300)
    law = opt.gaussian_law()
    samples = opt.sample_final(40000, np.random.default_rng(5))
    assert samples.shape == (40000, 1, 3)
    np.testing.assert_array_equal(samples, opt.sample_final(40000, np.random.default_rng(5)))
    scale = law.covariances[0].diagonal().max()
    np.testing.assert_allclose(samples[:, 0].mean(axis=0), law.means[0], atol=0.05 * scale**0.5)
    np.testing.assert_allclose(np.cov(samples[:, 0].T), law.covariances[0], atol=0.05 * scale)
    # The optimizer's own stream is untouched by sample_final.
    twin = XNES(SearchSpace(1, 3), seed=0)
    run(twin, loss, 300)
    np.testing.assert_array_equal(opt.ask(), twin.ask())


# --- convergence and invariance -------------------------------------------------------------


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_reaches_1e6_on_the_5d_sphere(seed: int) -> None:
    # Seeds 0-9 needed at most 1192 evaluations (population 8): a margin of about 65%.
    opt = XNES(SearchSpace(1, 5, initial_mean=1.0), seed=seed)
    run(opt, sphere, 2000, TARGET)
    assert opt.best_loss <= TARGET, f"xnes reached only {opt.best_loss:.3g} in 2000 evaluations"
    assert opt.safeguard_events == 0


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_adapts_its_covariance_to_a_rotated_ellipsoid(seed: int) -> None:
    # Condition 10^6 at d = 4. Seeds 0-4 reached 1e-6 within 1408 evaluations, with the
    # whitened covariance H^1/2 C H^1/2 within a condition number of 8 of a multiple of I.
    loss, hessian = rotated_ellipsoid(4, 6.0, seed=seed)
    opt = XNES(SearchSpace(1, 4), seed=seed)
    run(opt, loss, 2500, TARGET)
    assert opt.best_loss <= TARGET
    covariance = opt.gaussian_law().covariances[0]
    assert np.linalg.cond(covariance) > 1e4  # the law stretched along the flat directions
    root = scipy.linalg.sqrtm(hessian).real
    whitened = np.linalg.eigvalsh(root @ covariance @ root)
    assert whitened.max() / whitened.min() < 30
    # The law's widest direction is the Hessian's flattest one.
    widest = np.linalg.eigh(covariance)[1][:, -1]
    flattest = np.linalg.eigh(hessian)[1][:, 0]
    assert abs(widest @ flattest) > 0.99


def test_rank_based_invariant_to_shifting_and_scaling_the_losses() -> None:
    loss, _ = rotated_ellipsoid(4, 3.0, seed=2)

    def shifted(x: np.ndarray) -> np.ndarray:
        return 2.5 * loss(x) + 7.0

    # 60 iterations: the losses stay far above the rounding of the shift, so no ties appear.
    plain = run(XNES(SearchSpace(1, 4), seed=1), loss, 480)
    moved = run(XNES(SearchSpace(1, 4), seed=1), shifted, 480)
    np.testing.assert_array_equal(np.concatenate(plain), np.concatenate(moved))


# --- blocks, safeguards, options ------------------------------------------------------------


def test_blocks_are_searched_jointly() -> None:
    space = SearchSpace(3, 2, initial_scale=2.0)
    opt = XNES(space, seed=0)
    assert opt.ask().shape == (default_population_size(6), 3, 2)
    opt = XNES(space, seed=0)
    target = np.array([[1.0, -1.0], [0.5, 0.0], [-0.5, 2.0]])
    first_best = math.inf
    while opt.n_evaluations < 3000:
        candidates = opt.ask()
        step_losses = ((candidates - target) ** 2).sum(axis=2)  # n x K, one loss per block
        opt.tell(candidates, step_losses)
        if opt.iteration == 1:
            first_best = opt.best_loss
    assert opt.best_loss < 1e-6 * first_best
    law = opt.gaussian_law()
    assert law.means.shape == (3, 2) and law.covariances.shape == (3, 2, 2)
    np.testing.assert_allclose(law.means, target, atol=1e-3)
    joint = opt.state.covariance
    for b in range(3):
        np.testing.assert_allclose(
            law.covariances[b], joint[2 * b : 2 * b + 2, 2 * b : 2 * b + 2], rtol=1e-12
        )
    assert opt.sample_final(5, np.random.default_rng(0)).shape == (5, 3, 2)


def test_sigma_underflow_is_floored_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    opt = XNES(SearchSpace(1, 2), seed=0)
    opt.state = XNESState(mean=np.zeros(2), sigma=SIGMA_FLOOR, factor=np.eye(2))
    with caplog.at_level(logging.WARNING, logger="casbo_bench.optimizers.xnes"):
        for _ in range(20):
            candidates = opt.ask()
            # Reward the draws nearest the mean: G_sigma < 0, so sigma shrinks.
            draws = (candidates[:, 0] - opt.state.mean) / opt.state.sigma
            opt.tell(candidates, (draws**2).sum(axis=1, keepdims=True))
    assert opt.state.sigma == SIGMA_FLOOR
    assert opt.safeguard_events > 0
    assert "sigma underflowed" in caplog.text


def test_a_non_finite_update_is_rejected_and_counted() -> None:
    # sigma = 1e300 and eta_mu = 1e10 send the mean step past the largest float.
    opt = XNES(SearchSpace(1, 2, initial_scale=1e300), seed=0, eta_mu=1e10)
    candidates = opt.ask()
    opt.tell(candidates, np.arange(float(candidates.shape[0]))[:, None])
    np.testing.assert_array_equal(opt.state.mean, np.zeros(2))
    assert opt.state.sigma == 1e300 and opt.iteration == 1
    assert opt.safeguard_events == 1


def test_tell_must_match_the_last_ask() -> None:
    opt = XNES(SearchSpace(1, 2), seed=0)
    candidates = opt.ask()
    opt._s = None
    with pytest.raises(OptimizerError, match="does not match"):
        opt.tell(candidates, np.zeros((candidates.shape[0], 1)))


def test_registered_as_xnes() -> None:
    opt = make_optimizer("xnes", SearchSpace(2, 2), 0, popsize=5)
    assert isinstance(opt, XNES) and opt.scope == "per_step"
    assert opt.ask().shape == (5, 2, 2)


@pytest.mark.parametrize(
    "options",
    [
        {"sigma": 2.0},
        {"popsize": 1},
        {"popsize": 4.5},
        {"popsize": True},
        {"eta_mu": 0.0},
        {"eta_mu": "1"},
        {"eta_sigma": -0.1},
        {"eta_sigma": math.inf},
        {"eta_B": math.nan},
        {"eta_B": False},
    ],
)
def test_bad_options_raise(options: dict[str, object]) -> None:
    with pytest.raises(OptimizerError, match="xnes"):
        XNES(SearchSpace(1, 3), 0, **options)  # type: ignore[arg-type]
