"""What every registered optimizer owes the comparison protocol (docs/method.md section 4b).

The tests loop over the registry, so an optimizer added as one file is checked too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from casbo_bench.optimizers import SearchSpace, available_optimizers, make_optimizer

REGISTERED = available_optimizers()


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
def test_resolved_settings_are_recorded_as_json(name: str) -> None:
    optimizer = make_optimizer(name, SearchSpace(1, 4), seed=0)
    settings = optimizer.resolved_settings()
    assert settings, f"{name} records no settings"
    text = json.dumps(settings, default=str)
    assert json.loads(text) == json.loads(json.dumps(settings, default=str))
