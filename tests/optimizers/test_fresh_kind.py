"""Each optimizer's ``fresh_kind`` says what its fresh samples are, and the tables read the
same value from its source (docs/method.md section 4). Loops over the registry."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from casbo_bench.analysis.tables import registered_fresh_kinds
from casbo_bench.names import FRESH_KINDS
from casbo_bench.optimizers import (
    ask_tell_optimizers,
    get_optimizer,
    make_optimizer,
    steering_methods,
)
from casbo_bench.runner import make_scope

REGISTERED = ask_tell_optimizers()


def test_every_optimizer_has_a_fresh_kind_read_from_its_source() -> None:
    kinds = registered_fresh_kinds()
    assert set(kinds) == set(REGISTERED) | set(steering_methods())  # steering: law
    assert set(kinds.values()) <= set(FRESH_KINDS)
    assert {name: kind for name, kind in kinds.items() if kind == "point"} == {
        "cmaes": "point",
        "cmaes-joint": "point",
        "random-latent": "point",
        "turbo": "point",
    }


@pytest.mark.parametrize("name", REGISTERED)
def test_fresh_kind_is_stated_in_the_class_body(name: str) -> None:
    """A literal in its own class, as the registry reads it (an inherited value would be
    invisible to the source reader)."""
    cls = get_optimizer(name)
    source = ast.parse(inspect.getsource(cls))
    stated = [
        node
        for node in ast.walk(source)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(target, ast.Name) and target.id == "fresh_kind"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert stated, f"{name}: state fresh_kind = 'law' or 'point' in the class body"
    assert cls.fresh_kind == registered_fresh_kinds()[name]


@pytest.mark.parametrize("name", REGISTERED)
def test_fresh_kind_matches_what_sample_final_hands_over(name: str) -> None:
    """``point``: every fresh sample is the best candidate told; ``law``: the samples differ."""
    scope = make_scope(get_optimizer(name).scope, 2, 3, 0, 1.0)
    optimizer = make_optimizer(name, scope.space, seed=0)
    for _ in range(2):
        candidates = optimizer.ask()
        optimizer.tell(candidates, (candidates**2).sum(axis=2))
    samples = optimizer.sample_final(5, np.random.default_rng(1))
    assert samples.shape[0] == 5
    repeated = bool(np.all(samples == samples[:1]))
    if get_optimizer(name).fresh_kind == "point":
        assert repeated and optimizer.best_candidate is not None
        np.testing.assert_array_equal(samples[0], optimizer.best_candidate)
    else:
        assert not repeated
