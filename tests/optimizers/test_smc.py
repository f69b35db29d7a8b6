"""Tests of casbo_bench.optimizers.smc: potentials, weights, resampling, counts, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.optimizers import OptimizerError, get_steering
from casbo_bench.optimizers.smc import (
    FeynmanKacSteering,
    _Potential,
    effective_sample_size,
    resampling_steps,
)
from casbo_bench.optimizers.steering import StepwiseProblem, log_normalized
from tests.optimizers.steering_toy import ToyWalk


def test_registered_as_a_steering_method() -> None:
    assert get_steering("smc") is FeynmanKacSteering
    assert isinstance(ToyWalk(), StepwiseProblem)


def test_resampling_steps_start_interval_and_never_the_last() -> None:
    assert resampling_steps(20, 5, 5) == [5, 10, 15]
    assert resampling_steps(6, 2, 0) == [2, 4]
    assert resampling_steps(3, 1, 1) == [1, 2]
    assert resampling_steps(3, 5, 5) == []


def test_effective_sample_size() -> None:
    assert effective_sample_size(np.zeros(8)) == pytest.approx(8.0)
    assert effective_sample_size(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1.0)
    # weights 1 and 3: (4)^2 / (1 + 9) = 1.6
    assert effective_sample_size(np.log([1.0, 3.0])) == pytest.approx(1.6)


def test_diff_potentials_telescope_to_the_final_reward() -> None:
    lam = 2.0
    potential = _Potential("diff", lam, 2)
    total = np.zeros(2)
    for scores in (np.array([0.1, 0.5]), np.array([0.3, -0.2])):
        total += potential.intermediate(scores)
    final = np.array([0.7, 0.4])
    total += potential.final(final)
    np.testing.assert_allclose(total, lam * final)


@pytest.mark.parametrize("kind", ["max", "sum"])
def test_max_and_sum_final_weights_divide_by_the_earlier_product(kind: str) -> None:
    lam = 3.0
    potential = _Potential(kind, lam, 2)
    history = [np.array([0.2, -0.1]), np.array([0.5, 0.0])]
    earlier = sum(potential.intermediate(scores) for scores in history)
    final_scores = np.array([0.1, 0.9])
    log_g = potential.final(final_scores)
    stacked = np.stack([*history, final_scores])
    statistic = stacked.max(axis=0) if kind == "max" else stacked.sum(axis=0)
    np.testing.assert_allclose(log_g, lam * statistic - earlier)
    # The product over the ancestry is exp(lambda statistic): the target is p exp(lam r).
    np.testing.assert_allclose(earlier + log_g, lam * statistic)


def test_resampling_keeps_the_statistics_of_the_ancestors() -> None:
    potential = _Potential("diff", 1.0, 3)
    potential.intermediate(np.array([1.0, 2.0, 3.0]))
    potential.select(np.array([2, 2, 0]))
    np.testing.assert_allclose(potential.previous, [3.0, 3.0, 1.0])
    np.testing.assert_allclose(potential.log_product, [3.0, 3.0, 1.0])


def test_counts_of_calls_and_denoiser_evaluations() -> None:
    toy = ToyWalk(transitions=6)
    method = FeynmanKacSteering(0, particles=5, interval=2, start_step=2)
    sweep = method.sweep(toy)
    assert len(sweep.weights) == 5
    assert sweep.weights.sum() == pytest.approx(1.0)
    steps = resampling_steps(6, 2, 2)  # [2, 4]
    assert toy.calls == 5 * (len(steps) + 1)
    assert toy.denoiser_evals == 5 * (6 + 1)
    assert method.cost_per_sample(6) == (len(steps) + 1, 7)


def test_branching_never_replays_a_prefix() -> None:
    toy = ToyWalk(transitions=6)
    FeynmanKacSteering(1, particles=4, interval=1, start_step=1, lam=50.0).sweep(toy)
    # every transition is taken once per particle: resampling copies states, never reruns
    assert toy.transitions_applied == 4 * 6


def test_seeded_sweeps_are_reproducible_and_seeds_differ() -> None:
    def run(seed: int) -> np.ndarray:
        method = FeynmanKacSteering(seed, particles=6, interval=1, start_step=1)
        return np.concatenate([method.sweep(ToyWalk()).step_losses for _ in range(2)])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_strong_potentials_select_the_best_particle() -> None:
    """With lambda huge, every particle after the first resampling descends from the best
    one, so the final particles score at least as well as unguided ones on average."""
    toy = ToyWalk(dim=3, transitions=4, target=2.0)
    steered = FeynmanKacSteering(0, particles=16, interval=1, start_step=1, lam=1e3)
    unguided = FeynmanKacSteering(0, particles=16, interval=1, start_step=1, lam=0.0)
    score_s = -np.mean([steered.sweep(toy).step_losses.sum(axis=1).mean() for _ in range(20)])
    score_u = -np.mean([unguided.sweep(toy).step_losses.sum(axis=1).mean() for _ in range(20)])
    assert score_s > score_u + 0.5


def test_adaptive_resampling_skips_when_the_weights_are_even() -> None:
    toy = ToyWalk(transitions=4)
    method = FeynmanKacSteering(0, particles=4, interval=1, start_step=1, lam=0.0, adaptive=True)
    sweep = method.sweep(toy)
    # lambda = 0: even weights, ESS = P, no resampling: weights stay uniform
    np.testing.assert_allclose(sweep.weights, 0.25)
    np.testing.assert_allclose(log_normalized(np.zeros(4)), 0.25)
    np.testing.assert_allclose(log_normalized(np.full(4, -np.inf)), 0.25)


@pytest.mark.parametrize(
    "options",
    [{"particles": 0}, {"potential": "min"}, {"lam": -1.0}, {"interval": 0}, {"adaptive": 1}],
)
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(OptimizerError, match="smc"):
        FeynmanKacSteering(0, **options)
