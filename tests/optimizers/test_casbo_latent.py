"""CASBO-latent: CASBO's update on the initial latent alone."""

from __future__ import annotations

import numpy as np
import pytest

from casbo_bench.optimizers import (
    OptimizerError,
    SearchSpace,
    available_optimizers,
    make_optimizer,
)
from casbo_bench.optimizers.casbo import CASBO
from casbo_bench.optimizers.casbo_latent import CASBOLatent


def test_registered_with_latent_scope() -> None:
    assert "casbo-latent" in available_optimizers()
    assert CASBOLatent.scope == "latent"
    assert CASBO.scope == "per_step"


def test_more_than_one_block_is_refused() -> None:
    with pytest.raises(OptimizerError, match="one block"):
        make_optimizer("casbo-latent", SearchSpace(n_blocks=3, dim=4), seed=0)


def test_same_update_as_casbo_on_one_block() -> None:
    """With one block, casbo-latent and casbo are the same optimizer (same seed, same law)."""
    space = SearchSpace(n_blocks=1, dim=6)
    options = {"mean_rule": "first_order", "step_schedule": "inverse_sqrt"}
    latent = make_optimizer("casbo-latent", space, seed=4, **options)
    full = make_optimizer("casbo", space, seed=4, **options)
    shift = np.linspace(-1, 1, 6)
    for _ in range(5):
        a, b = latent.ask(), full.ask()
        np.testing.assert_array_equal(a, b)
        for opt, candidates in ((latent, a), (full, b)):
            opt.tell(candidates, ((candidates - shift) ** 2).sum(axis=2))
    np.testing.assert_array_equal(latent.gaussian_law().means, full.gaussian_law().means)
    np.testing.assert_array_equal(
        latent.gaussian_law().covariances, full.gaussian_law().covariances
    )


def test_options_are_validated_as_casbo() -> None:
    with pytest.raises(OptimizerError, match="step_schedule"):
        make_optimizer("casbo-latent", SearchSpace(n_blocks=1, dim=4), seed=0, step_schedule="x")
