"""COCO's bbob family: names, COCO's own instances, the loss f - f_opt, the sizes it refuses,
the initial law N(0, 2^2 I), and the COCO data its runs write through cocoex's observer."""

from __future__ import annotations

import re
from pathlib import Path

import cocoex
import numpy as np
import pytest

from casbo_bench import optimizers, problems
from casbo_bench.cli import main
from casbo_bench.problems import ProblemError, make_problem
from casbo_bench.problems.bbob import (
    BBOB_DIMS,
    BbobProblem,
    bbob_names,
    coco_instance,
)
from casbo_bench.runner import Job, RepetitionSeeds, _build, run_job

NAMES = bbob_names()


def coco_problem(function: int, dim: int, instance: int) -> tuple[cocoex.Suite, cocoex.Problem]:
    """cocoex's own problem (and its suite, which must outlive it)."""
    suite = cocoex.Suite(
        "bbob", f"instances: {instance}", f"dimensions: {dim} function_indices: {function}"
    )
    return suite, suite[0]


def test_the_24_functions_are_registered_with_a_summary_each() -> None:
    assert [f"bbob-f{number:02d}" for number in range(1, 25)] == NAMES
    assert set(NAMES) <= set(problems.available_problems())
    summaries = problems.describe_problems()
    assert summaries["bbob-f08"].startswith("COCO bbob f8, Rosenbrock")
    assert all(summaries[name] for name in NAMES)
    assert problems.own_instances("bbob-f01") and not problems.own_instances("sphere")
    assert problems.writes_coco_data("bbob-f24") and not problems.writes_coco_data("sphere")


@pytest.mark.parametrize("name", NAMES)
def test_values_are_cocoex_own_for_coco_instance_seed_plus_one(name: str) -> None:
    function = int(name[-2:])
    points = np.random.default_rng(function).normal(scale=2.0, size=(6, 1, 5))
    for seed in (0, 4, 11):
        problem = make_problem(name, 5, seed=seed)
        assert isinstance(problem, BbobProblem)
        assert (problem.function, problem.instance) == (function, seed + 1)
        assert problem.coco_id == f"bbob_f{function:03d}_i{seed + 1:02d}_d05"
        suite, coco = coco_problem(function, 5, seed + 1)
        expected = np.array([coco(point[0]) for point in points])
        losses = problem.rollout(points)
        assert losses.shape == (6, 1)
        np.testing.assert_array_equal(losses[:, 0], expected - problem.best_value)
        assert (losses >= 0).all()
        assert problem.rollout(problem.best_parameter[None, None, :])[0, 0] == 0.0
        coco.free()
        del suite


def test_every_coco_dimension_builds_and_the_optimum_is_in_the_domain() -> None:
    for dim in BBOB_DIMS:
        problem = make_problem("bbob-f21", dim, seed=2)
        assert problem.dim == dim
        assert np.all(np.abs(problem.best_parameter) <= 5.0)
        assert problem.rollout(np.zeros((1, 1, dim)))[0, 0] > 0


def test_instances_are_coco_numbers_and_the_seed_reaches_the_builder_as_is() -> None:
    assert [coco_instance(seed) for seed in (0, 1, 4, 14)] == [1, 2, 5, 15]
    bbob = Job(optimizer="random", problem="bbob-f03", dim=2, seeds=(7,), budget=4)
    sphere = Job(optimizer="random", problem="sphere", dim=2, seeds=(7,), budget=4)
    assert RepetitionSeeds.derive(bbob, 7).instance == 7
    assert RepetitionSeeds.derive(sphere, 7).instance != 7


@pytest.mark.parametrize(
    ("dim", "steps", "scoring", "named"),
    [
        (2, 2, "final", "K = 1"),
        (2, 1, "cumulative", "scoring 'final'"),
        (4, 1, "final", "2, 3, 5, 10, 20, 40"),
    ],
)
def test_sizes_bbob_lacks_are_refused_in_one_line(
    dim: int, steps: int, scoring: str, named: str
) -> None:
    with pytest.raises(ProblemError, match=re.escape(named)) as caught:
        make_problem("bbob-f01", dim, n_steps=steps, scoring=scoring)
    assert "\n" not in str(caught.value)
    with pytest.raises(ProblemError, match=re.escape(named)):
        problems.check_problem("bbob-f01", dim, steps, scoring)


def test_every_method_starts_from_n_0_4i_on_bbob() -> None:
    """The problem states s0 = 2 and the runner builds every optimizer's space with it
    (tests/optimizers/test_contract.py checks each optimizer's first batch against its
    space's law)."""
    for name in ("random", "cmaes", "xnes"):
        job = Job(optimizer=name, problem="bbob-f01", dim=3, seeds=(0,), budget=4)
        problem, optimizer, _, _ = _build(job, RepetitionSeeds.derive(job, 0))
        assert problem.initial_scale == 2.0
        assert (optimizer.space.initial_mean, optimizer.space.initial_scale) == (0.0, 2.0), name
    space = optimizers.SearchSpace(1, 3, initial_scale=problem.initial_scale)
    draws = optimizers.make_optimizer("random", space, seed=0, batch_size=4000).ask()
    assert abs(float(draws.std()) - 2.0) < 0.05


def test_the_runner_records_coco_instance_and_f_opt() -> None:
    records: dict[str, dict[str, object]] = {}
    trace = run_job(
        Job(optimizer="cmaes", problem="bbob-f01", dim=2, seeds=(0, 3), budget=30), records
    )
    assert len(trace) == 60 and (trace["loss"] >= 0).all()
    for seed in (0, 3):
        entry = records[str(seed)]
        instance = entry["problem_instance"]
        assert isinstance(instance, dict)
        assert (instance["function"], instance["instance"]) == (1, seed + 1)
        bare = cocoex.BareProblem("bbob", 1, 2, seed + 1)
        assert instance["f_opt"] == bare.best_value()
        assert entry["optimal_loss"] == 0.0
        settings = entry["settings"]
        assert isinstance(settings, dict) and settings["sigma0"] == 2.0


def _info_runs(folder: Path) -> dict[int, int]:
    """COCO instance -> evaluations, read from the ``.info`` files of an observer folder."""
    runs: dict[int, int] = {}
    for info in folder.rglob("*.info"):
        for instance, evaluations in re.findall(r"(\d+):(\d+)\|", info.read_text()):
            runs[int(instance)] = int(evaluations)
    return runs


def test_a_run_writes_coco_data_of_its_budget_into_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = ["run", "--method", "random", "--label", "best-of-n", "--problem", "bbob-f01"]
    arguments += ["--dim", "2", "--seeds", "0", "1", "--budget", "40", "--fresh-samples", "8"]
    arguments += ["--coco-folder", "coco/best-of-n/f01_d2", "--out", "trace.parquet"]
    assert main(arguments) == 0
    folder = tmp_path / "coco" / "best-of-n" / "f01_d2"
    (info,) = folder.glob("*.info")
    assert info.name == "bbobexp_f1.info"
    text = info.read_text()
    assert "algId = 'best-of-n'" in text and "DIM = 2" in text
    assert (folder / "data_f1" / "bbobexp_f1_DIM2.dat").is_file()
    # Both seeds (COCO instances 1, 2), each with exactly its budget: fresh samples unrecorded.
    assert _info_runs(folder) == {1: 40, 2: 40}
    # Nothing in ./exdata, cocoex's default place.
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "coco",
        "trace.parquet",
        "trace.parquet.sha256",
    ]


def test_end_search_stops_recording_and_the_next_problem_takes_the_observer(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "observed"
    first = make_problem("bbob-f02", 3, seed=0, coco_folder=str(folder), coco_algorithm="a")
    assert isinstance(first, BbobProblem) and first.observed
    first.rollout(np.zeros((5, 1, 3)))
    first.end_search()
    assert not first.observed
    first.rollout(np.ones((3, 1, 3)))  # unobserved now
    second = make_problem("bbob-f02", 3, seed=1, coco_folder=str(folder), coco_algorithm="a")
    second.rollout(np.zeros((2, 1, 3)))
    # A third built while the second is still open closes it first (cocoex observes one).
    third = make_problem("bbob-f02", 3, seed=2, coco_folder=str(folder), coco_algorithm="a")
    assert isinstance(second, BbobProblem) and not second.observed
    third.rollout(np.zeros((1, 1, 3)))
    third.end_search()
    assert _info_runs(folder) == {1: 5, 2: 2, 3: 1}
    with pytest.raises(ProblemError, match="'a'"):
        make_problem("bbob-f02", 3, seed=3, coco_folder=str(folder), coco_algorithm="b")


def test_a_coco_folder_that_holds_files_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "used"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ProblemError, match="already holds files"):
        make_problem("bbob-f01", 2, coco_folder=str(folder), coco_algorithm="a")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["used"]
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = make_problem("bbob-f01", 2, coco_folder=str(empty), coco_algorithm="a")
    problem.rollout(np.zeros((1, 1, 2)))
    problem.end_search()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty", "used"]
    assert any(empty.glob("*.info"))
