"""What every registered optimizer owes the comparison protocol (docs/method.md section 4b).

The tests loop over the registry, so an optimizer added as one file is checked too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from casbo_bench import provenance
from casbo_bench.optimizers import (
    SearchSpace,
    ask_tell_optimizers,
    get_optimizer,
    make_optimizer,
)
from casbo_bench.problems import make_problem
from casbo_bench.runner import make_scope

REGISTERED = ask_tell_optimizers()


def first_batches(name: str, space: SearchSpace, n_seeds: int) -> np.ndarray:
    """Every coordinate of the first batch of ``n_seeds`` seeded optimizers, flattened."""
    batches = [make_optimizer(name, space, seed).ask().ravel() for seed in range(n_seeds)]
    return np.concatenate(batches)


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize(("mean", "scale"), [(0.0, 1.0), (1.5, 2.0)])
def test_first_batch_comes_from_the_initial_law(name: str, mean: float, scale: float) -> None:
    # 20 seeds x the first batch at d = 10: thousands of coordinates, so the sample mean and
    # spread pin the law to within a few percent; every method must agree with N(mu0, s0^2).
    space = SearchSpace(1, 10, initial_mean=mean, initial_scale=scale)
    values = first_batches(name, space, n_seeds=20)
    assert values.mean() == pytest.approx(mean, abs=0.15 * scale)
    assert values.std() == pytest.approx(scale, rel=0.12)


@pytest.mark.parametrize("name", REGISTERED)
def test_resolved_settings_are_recorded_with_their_numbers(name: str) -> None:
    optimizer = make_optimizer(name, SearchSpace(1, 4), seed=0)
    settings = optimizer.resolved_settings()
    assert settings, f"{name} records no settings"
    recorded = provenance.collect(None, {}, repetitions={"0": {"settings": settings}})
    back = json.loads(json.dumps(recorded))["repetitions"]["0"]["settings"]
    assert set(back) == set(settings)
    for key, value in settings.items():
        if isinstance(value, bool | int | float) and not isinstance(value, np.generic):
            assert back[key] == value, f"{name}: {key} recorded as {back[key]!r}"
    population = settings.get("popsize", settings.get("batch_size"))
    assert isinstance(population, int) and population >= 1, f"{name}: no population recorded"


@pytest.mark.parametrize("name", REGISTERED)
def test_first_batch_through_the_runner_starts_from_the_problem_law(name: str) -> None:
    # The runner hands the problem's initial law to the optimizer: on the sphere at d = 10
    # (N(0, I)) every method's first batch has unit spread, TuRBO's Sobol design included.
    problem = make_problem("sphere", 10, seed=0)
    values = []
    for seed in range(5):
        scope = make_scope(get_optimizer(name).scope, 1, 10, seed, problem.initial_scale)
        values.append(make_optimizer(name, scope.space, seed).ask().ravel())
    assert 0.7 <= np.concatenate(values).std() <= 1.4
