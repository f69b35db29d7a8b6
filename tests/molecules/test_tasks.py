"""Tests of casbo_bench.molecules.tasks: the task table and the size rule, free of torch."""

from __future__ import annotations

import pytest

from casbo_bench.molecules.atoms import MAX_ATOMS, N_FEATURES
from casbo_bench.molecules.tasks import (
    DEFAULT_ATOMS,
    DEFAULT_SAMPLER_STEPS,
    DRAWN_SIZE,
    DRAWN_SUFFIX,
    MOLECULE_TASKS,
    check_scoring,
    describe_tasks,
    get_task,
    problem_name,
    sampler_size,
    split_name,
    task_names,
    task_size,
)
from casbo_bench.problems.base import ProblemError


def test_sizes_follow_the_rule_both_ways() -> None:
    assert (DEFAULT_ATOMS, DEFAULT_SAMPLER_STEPS) == (9, 20)
    assert task_size() == (63, 22)
    for n_atoms in range(1, MAX_ATOMS + 1):
        for steps in (1, 3, 50):
            dim, n_steps = task_size(n_atoms, steps)
            assert (dim, n_steps) == (N_FEATURES * n_atoms, steps + 2)
            assert sampler_size("mol-qed", dim, n_steps) == (n_atoms, steps)
    # drawn sizes: padded to 9 atoms whatever S, and the name says so both ways
    for steps in (1, 20):
        dim, n_steps = task_size(DRAWN_SIZE, steps)
        assert (dim, n_steps) == (N_FEATURES * MAX_ATOMS, steps + 2)
        name = problem_name("mol-gap", DRAWN_SIZE)
        assert name == "mol-gap" + DRAWN_SUFFIX
        assert sampler_size(name, dim, n_steps) == (DRAWN_SIZE, steps)
    assert problem_name("mol-gap", 9) == "mol-gap" and problem_name("mol-gap") == "mol-gap"


@pytest.mark.parametrize(
    ("n_atoms", "steps"), [(0, 20), (10, 20), (9, 0), ("qm8", 20), ("9", 20), (True, 20)]
)
def test_impossible_task_sizes_are_refused(n_atoms: int | str, steps: int) -> None:
    with pytest.raises(
        ProblemError, match=r"1 <= n_atoms <= 9 \(or n_atoms 'qm9'.*\) and sampler_steps >= 1"
    ) as error:
        task_size(n_atoms, steps)
    assert "\n" not in str(error.value)


def test_a_drawn_size_problem_takes_dim_63_only() -> None:
    with pytest.raises(ProblemError, match=r"pads it to 9 atoms, so it takes dim = 63; got dim=28"):
        sampler_size("mol-qed" + DRAWN_SUFFIX, 28, 5)


@pytest.mark.parametrize(
    ("dim", "steps", "message"),
    [
        (60, 22, r"dim = 7 n .*--dim 63 for n = 9\); got dim=60"),
        (70, 22, r"dim = 7 n .*got dim=70"),
        (0, 22, r"dim = 7 n"),
        (63, 2, r"n_steps = S \+ 2 .*--steps 22 for S = 20\); got n_steps=2"),
    ],
)
def test_impossible_problem_sizes_say_which_to_use(dim: int, steps: int, message: str) -> None:
    with pytest.raises(ProblemError, match=message) as error:
        sampler_size("mol-gap", dim, steps)
    assert str(error.value).startswith("mol-gap takes")
    assert "\n" not in str(error.value)


def test_tasks_are_listed_described_and_looked_up() -> None:
    drawn = [name + DRAWN_SUFFIX for name in MOLECULE_TASKS]
    assert task_names() == [*MOLECULE_TASKS, *drawn]
    assert all(name.startswith("mol-") for name in task_names())
    assert set(describe_tasks()) == set(task_names())
    assert describe_tasks()["mol-qed"] == "molecules: maximize RDKit's QED"
    assert "drawn from QM9" in describe_tasks()["mol-qed-qm9size"]
    assert get_task("mol-mu").quantity == "mu"
    assert get_task("mol-mu-qm9size") is get_task("mol-mu")
    assert split_name("mol-mu-qm9size") == ("mol-mu", True)
    assert split_name("mol-mu") == ("mol-mu", False)
    assert all(
        task.target_percentile for task in MOLECULE_TASKS.values() if task.kind == "predictor"
    )
    with pytest.raises(
        ProblemError, match="unknown molecule task 'mol-nope'; choose one of mol-qed"
    ):
        get_task("mol-nope")


def test_only_final_scoring() -> None:
    check_scoring("mol-qed", "final")
    with pytest.raises(ProblemError, match="use scoring 'final', not 'cumulative'"):
        check_scoring("mol-qed", "cumulative")


def test_claim_problems_leave_out_saturated_tasks_and_name_drawn_sizes() -> None:
    from casbo_bench.molecules.tasks import claim_problems

    tasks = [
        {"name": "mol-qed", "n_atoms": 9, "count_in_claims": False},
        {"name": "mol-qed", "n_atoms": "qm9", "count_in_claims": False},
        {"name": "mol-gap", "n_atoms": 9},
        {"name": "mol-mu", "n_atoms": "qm9"},
    ]
    assert claim_problems(tasks) == {"mol-gap", "mol-mu-qm9size"}
    assert claim_problems([]) == set()
