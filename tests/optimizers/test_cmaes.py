"""CMA-ES (pycma ask/tell): convergence, seeding, restarts, options, its Gaussian law."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.optimizers import OptimizerError, SearchSpace, make_optimizer
from casbo_bench.optimizers.cmaes import (
    CMAES,
    PYCMA_SEED_LIMIT,
    default_population_size,
    pycma_seed,
)
from casbo_bench.problems import Problem, make_problem

TARGET = 1e-6
TEST_SEEDS = range(100, 105)
"""Seeds the convergence tests run; the budgets below were set on seeds 0-4, not these."""


def evaluations_to_target(problem: Problem, seed: int, budget: int) -> int | None:
    """Run cmaes until the best-so-far loss is <= TARGET (evaluations spent) or None."""
    opt = make_optimizer("cmaes", SearchSpace(1, problem.dim), seed)
    while opt.n_evaluations < budget:
        candidates = opt.ask()[: budget - opt.n_evaluations]
        opt.tell(candidates, problem.rollout(candidates))
        if opt.best_loss <= TARGET:
            return opt.n_evaluations
    return None


def asked_sequence(opt: CMAES, problem: Problem, n_batches: int) -> np.ndarray:
    """Every candidate asked in ``n_batches`` ask/tell rounds, stacked."""
    asked = []
    for _ in range(n_batches):
        candidates = opt.ask()
        opt.tell(candidates, problem.rollout(candidates))
        asked.append(candidates)
    return np.concatenate(asked)


@pytest.mark.parametrize(
    ("name", "budget"),
    [
        # Seeds 0-4 needed at most 1080 evaluations (sphere) and 3760 (ellipsoid), population
        # 10: the budgets leave a margin of about 40% and 33% over the worst of them.
        ("sphere", 1500),
        ("ellipsoid", 5000),
    ],
)
@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_reaches_1e6_on_rotated_quadratics_at_d10(name: str, budget: int, seed: int) -> None:
    problem = make_problem(name, 10, seed=seed, rotated=True)
    spent = evaluations_to_target(problem, seed, budget)
    assert spent is not None, f"cmaes did not reach {TARGET} on {name} within {budget}"


def test_default_population_is_4_plus_3_ln_d() -> None:
    assert [default_population_size(d) for d in (1, 2, 10, 100)] == [4, 6, 10, 17]
    assert CMAES(SearchSpace(1, 10), seed=0).ask().shape == (10, 1, 10)
    assert CMAES(SearchSpace(1, 10), seed=0, popsize=6).ask().shape == (6, 1, 10)


INITIAL_LAW_RTOL = 1e-4
"""pycma starts from C = diag(exp(1e-4 i / D)), not I exactly: distinct eigenvalues for its
eigensolver. The initial law is N(0, I) to within this relative tolerance."""


def test_first_batch_is_drawn_from_the_initial_law() -> None:
    law = CMAES(SearchSpace(1, 4), seed=0).gaussian_law()
    np.testing.assert_array_equal(law.means, np.zeros((1, 4)))
    np.testing.assert_allclose(law.covariances, np.eye(4)[None], rtol=INITIAL_LAW_RTOL, atol=0)


def test_same_seed_same_candidates_different_seed_different() -> None:
    problem = make_problem("ellipsoid", 5, seed=0)
    first = asked_sequence(CMAES(SearchSpace(1, 5), seed=7), problem, 20)
    again = asked_sequence(CMAES(SearchSpace(1, 5), seed=7), problem, 20)
    other = asked_sequence(CMAES(SearchSpace(1, 5), seed=8), problem, 20)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[:8], other[:8])


def test_interleaved_optimizers_do_not_share_a_stream() -> None:
    problem = make_problem("sphere", 5, seed=0)
    alone = asked_sequence(CMAES(SearchSpace(1, 5), seed=3), problem, 5)
    a, b = CMAES(SearchSpace(1, 5), seed=3), CMAES(SearchSpace(1, 5), seed=4)
    interleaved = []
    for _ in range(5):
        for opt in (a, b):
            candidates = opt.ask()
            opt.tell(candidates, problem.rollout(candidates))
            if opt is a:
                interleaved.append(candidates)
    np.testing.assert_array_equal(alone, np.concatenate(interleaved))


def test_numpy_global_state_is_left_alone() -> None:
    np.random.seed(12345)  # noqa: NPY002 (the state under test)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    asked_sequence(CMAES(SearchSpace(1, 5), seed=0), make_problem("sphere", 5), 5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_pycma_seed_is_derived_recorded_and_in_range() -> None:
    seeds = [pycma_seed(2**63 - 1, r) for r in range(50)]
    assert all(1 <= s <= PYCMA_SEED_LIMIT for s in seeds)
    assert len(set(seeds)) == 50
    opt = CMAES(SearchSpace(1, 3), seed=2**62 + 5)
    assert opt.pycma_seeds == [pycma_seed(2**62 + 5, 0)] and opt.pycma_seed == opt.pycma_seeds[0]
    assert opt._es.opts["seed"] == opt.pycma_seed


def test_restarts_from_the_initial_law_when_pycma_stops() -> None:
    # tolfun = 1e-2: pycma stops once the recent losses span less than 1e-2, long before
    # the budget on the sphere, so every stop must be followed by a restart from N(0, I).
    problem = make_problem("sphere", 4, seed=0)
    opt = CMAES(SearchSpace(1, 4), seed=0, tolfun=1e-2, tolfunhist=1e-2)
    restarted_laws = []
    while opt.n_evaluations < 3000:
        restarts = opt.n_restarts
        candidates = opt.ask()
        if opt.n_restarts > restarts:
            restarted_laws.append(opt.gaussian_law())
        opt.tell(candidates, problem.rollout(candidates))
    assert opt.n_restarts >= 2
    assert len(restarted_laws) == opt.n_restarts == len(opt.stop_reasons)
    assert all("tolfun" in r or "tolfunhist" in r for r in opt.stop_reasons)
    assert len(set(opt.pycma_seeds)) == opt.n_restarts + 1
    for law in restarted_laws:
        np.testing.assert_array_equal(law.means, np.zeros((1, 4)))
        np.testing.assert_allclose(law.covariances, np.eye(4)[None], rtol=INITIAL_LAW_RTOL, atol=0)


def test_no_restart_with_default_stopping_rules_on_a_short_budget() -> None:
    opt = CMAES(SearchSpace(1, 10), seed=0)
    asked_sequence(opt, make_problem("sphere", 10, seed=0), 50)
    assert opt.n_restarts == 0 and opt.stop_reasons == []


def test_gaussian_law_matches_the_samples_it_proposes() -> None:
    problem = make_problem("ellipsoid", 3, seed=1)
    opt = CMAES(SearchSpace(1, 3), seed=0, popsize=4000)
    asked_sequence(opt, problem, 4)
    law = opt.gaussian_law()
    samples = opt.ask()[:, 0]
    assert not np.allclose(law.covariances[0], law.covariances[0][0, 0] * np.eye(3), rtol=0.1)
    np.testing.assert_allclose(
        samples.mean(axis=0), law.means[0], atol=0.1 * law.covariances[0].diagonal().max() ** 0.5
    )
    np.testing.assert_allclose(
        np.cov(samples.T), law.covariances[0], atol=0.1 * law.covariances[0].diagonal().max()
    )


def test_blocks_are_searched_jointly() -> None:
    problem = make_problem("sphere", 3, n_steps=2, scoring="cumulative", seed=0)
    opt = CMAES(SearchSpace(2, 3), seed=0)
    candidates = opt.ask()
    assert candidates.shape == (default_population_size(6), 2, 3)
    opt.tell(candidates, problem.rollout(candidates))
    assert opt.gaussian_law().means.shape == (2, 3)


@pytest.mark.parametrize(
    "options",
    [{"sigma": 2.0}, {"popsize": 1}, {"popsize": 4.5}, {"tolfun": -1.0}, {"maxiter": 0}],
)
def test_bad_options_raise(options: dict[str, object]) -> None:
    with pytest.raises(OptimizerError):
        make_optimizer("cmaes", SearchSpace(1, 3), 0, **options)
