"""Tests of casbo_bench.optimizers.svdd: the choice rule, counts, seeds, no replay."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.optimizers import OptimizerError, get_steering
from casbo_bench.optimizers.svdd import SoftValueDecoding, choose
from tests.optimizers.steering_toy import ToyWalk


def test_registered_as_a_steering_method() -> None:
    assert get_steering("svdd") is SoftValueDecoding


def test_temperature_zero_keeps_the_argmax() -> None:
    scores = np.array([[0.1, 0.9, 0.3], [2.0, -1.0, 1.0]])
    assert choose(scores, 0.0, np.random.default_rng(0)).tolist() == [1, 0]


def test_softmax_choice_frequencies() -> None:
    rng = np.random.default_rng(0)
    scores = np.tile(np.log([1.0, 3.0]), (20_000, 1))  # temperature 1: probabilities 1/4, 3/4
    share = choose(scores, 1.0, rng).mean()
    assert share == pytest.approx(0.75, abs=0.01)
    # temperature 2 flattens: p(1) = sqrt(3) / (1 + sqrt(3))
    share = choose(scores, 2.0, rng).mean()
    assert share == pytest.approx(np.sqrt(3) / (1 + np.sqrt(3)), abs=0.01)


def test_counts_and_no_replay() -> None:
    toy = ToyWalk(transitions=5)
    method = SoftValueDecoding(0, candidates=3, chains=2)
    sweep = method.sweep(toy)
    assert sweep.step_losses.shape == (2, toy.n_steps)
    np.testing.assert_allclose(sweep.weights, 0.5)
    assert toy.calls == 2 * (5 * 3 + 1)  # S M candidate scores and one finished score each
    assert toy.transitions_applied == 2 * 5 * 3  # each candidate made once, never again
    assert method.cost_per_sample(5) == (16.0, 16.0)


def test_seeded_sweeps_are_reproducible() -> None:
    def run(seed: int) -> np.ndarray:
        return SoftValueDecoding(seed, candidates=2, temperature=0.5).sweep(ToyWalk()).step_losses

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_value_guidance_beats_the_unguided_chain() -> None:
    toy = ToyWalk(dim=3, transitions=5, target=2.0)
    guided = SoftValueDecoding(0, candidates=8, chains=8)
    unguided = SoftValueDecoding(0, candidates=1, chains=8)
    assert guided.sweep(toy).step_losses.mean() < unguided.sweep(toy).step_losses.mean() - 0.5


@pytest.mark.parametrize("options", [{"candidates": 0}, {"temperature": -0.1}, {"chains": 1.5}])
def test_bad_options_are_refused(options: dict) -> None:
    with pytest.raises(OptimizerError, match="svdd"):
        SoftValueDecoding(0, **options)
