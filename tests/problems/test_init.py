"""make_problem, the problem families and their errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from casbo_bench.problems import (
    FAMILIES,
    ChainProblem,
    Problem,
    ProblemError,
    ProblemFamily,
    available_functions,
    available_problems,
    describe_problems,
    make_problem,
)


def test_available_problems_are_the_test_functions_bbob_and_the_molecule_tasks() -> None:
    functions = available_functions()
    bbob = [name for name in available_problems() if name.startswith("bbob-")]
    molecules = [name for name in available_problems() if name not in functions + bbob]
    assert available_problems() == sorted(functions + bbob + molecules)
    assert "l1-ellipsoid" in functions
    assert bbob == [f"bbob-f{number:02d}" for number in range(1, 25)]
    assert molecules and all(name.startswith("mol-") for name in molecules)
    assert "mol-qed" in molecules


@pytest.mark.parametrize("name", available_functions())
@pytest.mark.parametrize(("k", "scoring"), [(1, "final"), (3, "final"), (3, "cumulative")])
def test_make_problem_builds_a_chain_problem(name: str, k: int, scoring: str) -> None:
    problem = make_problem(name, dim=4, n_steps=k, scoring=scoring, seed=5)
    assert isinstance(problem, ChainProblem)
    assert (problem.name, problem.dim, problem.n_steps, problem.scoring) == (name, 4, k, scoring)
    assert problem.optimal_loss == 0.0
    noise = np.random.default_rng(0).standard_normal((3, k, 4))
    losses = problem.rollout(noise)
    assert losses.shape == (3, k)
    assert np.isfinite(losses).all()
    assert (losses >= 0).all()


def test_same_seed_same_problem_different_seed_different() -> None:
    noise = np.random.default_rng(0).standard_normal((4, 3, 5))
    a, b, c = (make_problem("ackley", 5, 3, "cumulative", seed=s) for s in (2, 2, 3))
    np.testing.assert_array_equal(a.rollout(noise), b.rollout(noise))
    assert not np.allclose(a.rollout(noise), c.rollout(noise))


def test_instance_is_shared_across_chain_lengths_and_chain_is_a_separate_stream() -> None:
    plain = make_problem("sphere", 6, 1, seed=4)
    chained = make_problem("sphere", 6, 3, seed=4)
    assert isinstance(plain, ChainProblem) and isinstance(chained, ChainProblem)
    np.testing.assert_array_equal(plain.instance.rotation, chained.instance.rotation)
    np.testing.assert_array_equal(plain.instance.shift, chained.instance.shift)
    assert not np.allclose(chained.chain.base_rotation, chained.instance.rotation)


def test_unrotated_option() -> None:
    problem = make_problem("ellipsoid", 4, seed=1, rotated=False)
    rotated = make_problem("ellipsoid", 4, seed=1)
    assert isinstance(problem, ChainProblem) and isinstance(rotated, ChainProblem)
    np.testing.assert_array_equal(problem.instance.rotation, np.eye(4))
    np.testing.assert_array_equal(problem.instance.shift, rotated.instance.shift)


def test_beta_options_reach_the_chain() -> None:
    problem = make_problem("sphere", 2, 3, seed=0, beta_min=0.1, beta_max=0.3)
    assert isinstance(problem, ChainProblem)
    np.testing.assert_allclose(problem.chain.scale**2, [1.0, 0.3, 0.1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "sphere", "dim": 0}, "dim must be an integer >= 1; got 0"),
        ({"name": "sphere", "dim": 2.5}, "dim must be an integer >= 1; got 2.5"),
        ({"name": "sphere", "dim": True}, "dim must be an integer >= 1; got True"),
        ({"name": "sphere", "dim": 3, "n_steps": 0}, "n_steps must be an integer >= 1; got 0"),
        ({"name": "sphere", "dim": 3, "seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"name": "sphere", "dim": 3, "scoring": "sum"}, "unknown scoring 'sum'; choose one of"),
        ({"name": "rosenbrock", "dim": 1}, "rosenbrock needs dim >= 2"),
        (
            {"name": "sphere", "dim": 3, "shifted": False},
            r"does not take option\(s\) \['shifted'\]",
        ),
        ({"name": "sphere", "dim": 3, "n_steps": 2, "beta_min": 0.0}, "0 < beta_min"),
    ],
)
def test_impossible_input_raises_problem_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        make_problem(**kwargs)  # type: ignore[arg-type]


def test_unknown_problem_lists_every_problem() -> None:
    expected = f"unknown problem 'spere'; choose one of {', '.join(available_problems())}"
    with pytest.raises(ProblemError, match=re.escape(expected)):
        make_problem("spere", 3)


def test_numpy_integers_are_accepted() -> None:
    problem = make_problem("sphere", np.int64(3), np.int64(2), seed=np.int64(1))
    assert (problem.dim, problem.n_steps) == (3, 2)


def test_a_new_family_is_one_dictionary_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    class Constant(Problem):
        def __init__(self, dim: int, n_steps: int) -> None:
            self.name, self.dim, self.n_steps = "constant", dim, n_steps

        def rollout(self, noise: np.ndarray) -> np.ndarray:
            return np.ones(self.check_noise(noise).shape[:2])

    def build(name: str, dim: int, n_steps: int, scoring: str, seed: int) -> Problem:
        return Constant(dim, n_steps)

    family = ProblemFamily(
        names=lambda: ["constant"], build=build, summaries=lambda: {"constant": "all ones"}
    )
    monkeypatch.setitem(FAMILIES, "toy", family)
    assert "constant" in available_problems()
    assert describe_problems()["constant"] == "all ones"
    problem = make_problem("constant", 2, 3)
    assert problem.loss(np.zeros((4, 3, 2))).tolist() == [3.0] * 4
    with pytest.raises(ProblemError, match="does not take option"):
        make_problem("constant", 2, rotated=False)
