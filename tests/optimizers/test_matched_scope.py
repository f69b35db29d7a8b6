"""The matched-scope twins: CMA-ES over every noise, best-of-N over the latent, and CASBO's
mean-only control."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.optimizers import (
    OptimizerError,
    SearchSpace,
    ask_tell_optimizers,
    get_optimizer,
    make_optimizer,
)
from casbo_bench.optimizers.cmaes_joint import FULL_COVARIANCE_LIMIT
from casbo_bench.problems import make_problem
from casbo_bench.runner import Job, RepetitionSeeds, frozen_law_floor, make_scope, run_job


def test_cmaes_joint_searches_every_step_with_full_then_diagonal_covariance() -> None:
    full = make_optimizer("cmaes-joint", SearchSpace(5, 20), seed=0)
    assert full.scope == "per_step" and full.settings.covariance == "full"
    assert full.ask().shape[1:] == (5, 20)
    assert "CMA_diagonal" not in full.settings.pycma_options
    above = make_optimizer("cmaes-joint", SearchSpace(5, FULL_COVARIANCE_LIMIT // 5 + 1), seed=0)
    assert above.settings.covariance == "diagonal"
    assert above.settings.pycma_options["CMA_diagonal"] is True


def test_cmaes_records_its_pycma_seeds() -> None:
    opt = make_optimizer("cmaes", SearchSpace(1, 3), seed=7)
    recorded = opt.resolved_settings()
    assert recorded["pycma_seeds"] == opt.pycma_seeds and len(recorded["pycma_seeds"]) == 1
    assert recorded["popsize"] == 7 and recorded["sigma0"] == 1.0


def test_random_latent_draws_the_latent_and_keeps_the_common_later_noises() -> None:
    job = Job("random-latent", "sphere", 3, (0,), 32, n_steps=4, scoring="final")
    trace = run_job(job)
    assert len(trace) == 32
    latent = make_optimizer("random-latent", SearchSpace(1, 3), seed=1, batch_size=5)
    assert latent.scope == "latent" and latent.ask().shape == (5, 1, 3)


def test_mean_only_keeps_its_covariance_and_moves_its_mean() -> None:
    problem = make_problem("sphere", 4, n_steps=2, scoring="cumulative", seed=3)
    opt = make_optimizer("casbo-mean-only", SearchSpace(2, 4), seed=0)
    start = opt.gaussian_law()
    for _ in range(30):
        candidates = opt.ask()
        opt.tell(candidates, problem.rollout(candidates))
    law = opt.gaussian_law()
    np.testing.assert_array_equal(law.covariances, start.covariances)
    assert not np.allclose(law.means, start.means)
    with pytest.raises(OptimizerError, match="mean_rule"):
        make_optimizer("casbo-mean-only", SearchSpace(1, 2), seed=0, mean_rule="exact")


def test_the_frozen_law_floor_is_the_noise_term_of_a_quadratic() -> None:
    # A plain sphere f(x) = |x - x*|^2 under N(mu, I): J = |mu - x*|^2 + d, so the floor
    # over mu is exactly d.
    problem = make_problem("sphere", 5, seed=2)
    opt = make_optimizer("casbo-mean-only", SearchSpace(1, 5), seed=0)
    scope = make_scope("per_step", 1, 5, crn_seed=0)
    assert frozen_law_floor(problem, opt.gaussian_law(), scope) == pytest.approx(5.0, rel=1e-8)


def test_the_mean_only_floor_is_recorded_per_repetition() -> None:
    records: dict[str, dict[str, object]] = {}
    job = Job(
        "casbo-mean-only",
        "sphere",
        3,
        (0, 1),
        48,
        n_steps=2,
        scoring="cumulative",
        record_expected_loss=True,
    )
    trace = run_job(job, records)
    assert sorted(records) == ["0", "1"]
    for seed, record in records.items():
        floor = record["frozen_law_floor"]
        assert isinstance(floor, float) and floor > 0
        own = trace[trace["seed"] == int(seed)]
        assert own["expected_loss"].min() >= floor - 1e-9  # no law of its kind goes below
        assert record["optimal_loss"] == 0.0
    casbo_records: dict[str, dict[str, object]] = {}
    run_job(Job("casbo", "sphere", 3, (0,), 16, record_expected_loss=True), casbo_records)
    assert casbo_records["0"]["frozen_law_floor"] is None


def test_cmaes_joint_reports_its_law_when_diagonal() -> None:
    opt = make_optimizer("cmaes-joint", SearchSpace(5, 25), seed=0)
    candidates = opt.ask()
    opt.tell(candidates, (candidates**2).sum(axis=2))
    law = opt.gaussian_law()
    assert law.covariances.shape == (5, 25, 25)
    off_diagonal = law.covariances - np.einsum("bii->bi", law.covariances)[:, :, None] * np.eye(25)
    assert np.all(off_diagonal == 0.0) and np.all(np.einsum("bii->bi", law.covariances) > 0)


def test_random_latent_hands_over_its_best_latent() -> None:
    opt = make_optimizer("random-latent", SearchSpace(1, 3), seed=0, batch_size=8)
    candidates = opt.ask()
    opt.tell(candidates, (candidates**2).sum(axis=2))
    final = opt.sample_final(4, np.random.default_rng(0))
    np.testing.assert_array_equal(final, np.repeat(opt.best_candidate[None], 4, axis=0))


def test_latent_methods_share_the_frozen_later_noises() -> None:
    # Common random numbers: at one seed every latent method sees the same later noises.
    latent = [name for name in ask_tell_optimizers() if get_optimizer(name).scope == "latent"]
    assert {"random-latent", "cmaes", "casbo-latent"} <= set(latent)
    seen = {}
    for name in latent:
        scope = make_scope("latent", 4, 3, crn_seed=11)
        noise = scope.noise(make_optimizer(name, scope.space, seed=0).ask())
        seen[name] = noise[:, 1:]
    first = seen["random-latent"][0]
    for noise in seen.values():
        assert all(np.array_equal(row, first) for row in noise)
    # ... and the runner derives that seed from the cell and seed alone, not the method.
    jobs = [Job(name, "sphere", 3, (0,), 8, n_steps=4) for name in ("random-latent", "turbo")]
    assert len({RepetitionSeeds.derive(job, 5).crn for job in jobs}) == 1
