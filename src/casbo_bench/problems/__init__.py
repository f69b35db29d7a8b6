"""Problems: test functions under linear-Gaussian chains, COCO's bbob functions, and molecule
tasks on a pre-trained diffusion model (see :mod:`.base` for the contract).

:func:`make_problem` builds a seeded problem by name. Names come from problem *families*: the
test functions (one module each under :mod:`casbo_bench.problems.functions`) form one
family, COCO's bbob suite (:mod:`casbo_bench.problems.bbob`) another, the molecule tasks
(:mod:`casbo_bench.molecules.tasks`) a third; a family is one entry of :data:`FAMILIES` (a
function listing its names and one building a problem), so a new kind of problem is
registered without touching the others. Importing this package needs neither torch, RDKit
nor cocoex: each is imported only when a problem that needs it is built.

>>> problem = make_problem("sphere", dim=3, n_steps=2, scoring="cumulative", seed=0)
>>> problem.rollout(np.zeros((5, 2, 3))).shape
(5, 2)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np

from casbo_bench.molecules.tasks import (
    check_scoring,
    describe_tasks,
    get_task,
    sampler_size,
    task_names,
)
from casbo_bench.names import SCORINGS
from casbo_bench.problems.base import FloatArray, Problem, ProblemError
from casbo_bench.problems.bbob import bbob_names, check_bbob, describe_bbob, make_bbob_problem
from casbo_bench.problems.chain import (
    BETA_MAX,
    BETA_MIN,
    ChainProblem,
    LinearGaussianChain,
    step_weights,
)
from casbo_bench.problems.functions import available_functions, describe_functions, get_function
from casbo_bench.problems.functions.base import TestFunction
from casbo_bench.problems.instance import FunctionInstance, haar_orthogonal
from casbo_bench.seeding import derive_rng

__all__ = [
    "FAMILIES",
    "ChainProblem",
    "FloatArray",
    "FunctionInstance",
    "LinearGaussianChain",
    "Problem",
    "ProblemError",
    "ProblemFamily",
    "TestFunction",
    "available_functions",
    "available_problems",
    "check_problem",
    "describe_problems",
    "family_uses_torch",
    "get_function",
    "haar_orthogonal",
    "make_problem",
    "own_instances",
    "smallest_dim",
    "step_weights",
    "writes_coco_data",
]


@dataclass(frozen=True)
class ProblemFamily:
    """A kind of problem: the names it answers to and how to build one.

    Attributes:
        names: returns the registry names of the family's problems.
        build: ``build(name, dim, n_steps, scoring, seed, **options) -> Problem``, called
            with validated sizes, scoring and seed; raises ProblemError for bad options.
        summaries: returns name -> one line saying what the problem is, without importing
            anything heavy (``casbo-bench list``).
        check: ``check(name, dim, n_steps, scoring)`` raises ProblemError for a size or
            scoring the family does not have, without importing anything heavy (the config
            check calls it on every cell before any job); None: every size is built.
        own_instances: the family numbers its own instances (COCO's): the runner builds
            repetition ``s`` with ``seed=s`` itself, so seed ``s`` is the same published
            instance in every job and every config, instead of a seed derived from the
            experiment's axes (docs/architecture.md).
        uses_torch: building or evaluating the family's problems runs torch code (the
            workflow's memory and GPU requests).
    """

    names: Callable[[], list[str]]
    build: Callable[..., Problem]
    summaries: Callable[[], dict[str, str]]
    check: Callable[[str, int, int, str], None] | None = None
    own_instances: bool = False
    uses_torch: bool = False


def make_function_problem(
    name: str,
    dim: int,
    n_steps: int,
    scoring: str,
    seed: int,
    rotated: bool = True,
    beta_min: float = BETA_MIN,
    beta_max: float = BETA_MAX,
) -> ChainProblem:
    """A seeded test-function instance scored along a seeded linear-Gaussian chain.

    The instance (shift, then rotation) is drawn from ``default_rng(seed)``; the chain from
    the derived stream ``derive_rng("dynamics", seed)``, so the two never share draws and
    the same instance comes with any K.

    Args:
        rotated: False gives the instance ``Q = I`` (same shift as the rotated one).
        beta_min, beta_max: the chain's noise schedule (:mod:`casbo_bench.problems.chain`).
    """
    function = get_function(name)
    if dim < function.min_dim:
        raise ProblemError(f"{name} needs dim >= {function.min_dim}; got dim={dim}")
    instance = FunctionInstance.sample(function, dim, np.random.default_rng(seed), rotated)
    chain = LinearGaussianChain.sample(
        dim, n_steps, derive_rng("dynamics", seed), beta_min=beta_min, beta_max=beta_max
    )
    return ChainProblem(instance, chain, scoring)


MOLECULE_PROBLEM_MODULE = "casbo_bench.molecules.problem"
"""The module of the molecule problem (torch, RDKit), imported by name when one is built."""


def make_molecule_problem(
    name: str,
    dim: int,
    n_steps: int,
    scoring: str,
    seed: int,
    models_dir: str | None = None,
    checkpoint: str | None = None,
    predictor: str | None = None,
    device: str = "cpu",
    sampler_dtype: str = "float32",
    checkpoint_sha256: str | None = None,
) -> Problem:
    """The molecule task ``name`` with ``n = dim / 7`` atoms (or, for a name ending in
    ``-qm9size``, sizes drawn per rollout at ``dim = 63``) and ``S = n_steps - 2`` steps.

    Name, sizes and scoring are checked first, against the torch-free task table; only then
    is :data:`MOLECULE_PROBLEM_MODULE` imported (by name, like an optimizer plugin).

    Args:
        name: a molecule task (:data:`casbo_bench.molecules.tasks.MOLECULE_TASKS`), or one
            with :data:`~casbo_bench.molecules.tasks.DRAWN_SUFFIX` (sizes drawn per rollout).
        dim: d = 7 n (63 for drawn sizes).
        n_steps: K = S + 2.
        scoring: only ``"final"``.
        seed: unused (every seed is the same problem).
        models_dir: the folder of the stored models (default: ``models`` in the current
            folder; :mod:`casbo_bench.molecules.checkpoint`).
        checkpoint: the EDM folder (default: ``<models_dir>/edm_qm9_heavy``).
        predictor: the property predictor folder (default:
            ``<models_dir>/property_predictor``).
        device: where the sampler and the predictor run: ``cpu``, ``cuda`` or ``auto``.
        sampler_dtype: ``"float32"`` (the stored model's precision) or ``"float64"``
            (:mod:`casbo_bench.molecules.problem`).
        checkpoint_sha256: the sha256 of the EDM's ``sampling.pt`` the job was planned for
            (None: whichever the folder holds).

    Raises:
        ProblemError: an unknown task, sizes that break the rule, another scoring, a
            model folder that cannot be read or holds another checkpoint than
            ``checkpoint_sha256``, or an unknown ``sampler_dtype``.
    """
    task = get_task(name)
    n_atoms, sampler_steps = sampler_size(name, dim, n_steps)
    check_scoring(name, scoring)
    problem_class = importlib.import_module(MOLECULE_PROBLEM_MODULE).MoleculeProblem
    problem: Problem = problem_class.load(
        task,
        n_atoms,
        sampler_steps,
        models_dir=models_dir,
        checkpoint=checkpoint,
        predictor=predictor,
        device=device,
        sampler_dtype=sampler_dtype,
        expected_sha256=checkpoint_sha256,
    )
    return problem


FAMILIES: dict[str, ProblemFamily] = {
    "function": ProblemFamily(available_functions, make_function_problem, describe_functions),
    "bbob": ProblemFamily(
        bbob_names, make_bbob_problem, describe_bbob, check=check_bbob, own_instances=True
    ),
    "molecule": ProblemFamily(task_names, make_molecule_problem, describe_tasks, uses_torch=True),
}
"""Problem families by label; register a new kind of problem by adding an entry."""


def family_of(name: str) -> ProblemFamily:
    """The family that has problem ``name``.

    Raises:
        ProblemError: an unknown name (the message lists the known ones).
    """
    for family in FAMILIES.values():
        if name in family.names():
            return family
    raise ProblemError(f"unknown problem {name!r}; choose one of {', '.join(available_problems())}")


def check_problem(name: str, dim: int, n_steps: int, scoring: str) -> None:
    """Raise ProblemError when ``name``'s family does not have this size or scoring (its
    ``check``); nothing heavy is imported."""
    check = family_of(name).check
    if check is not None:
        check(name, dim, n_steps, scoring)


def own_instances(name: str) -> bool:
    """Whether problem ``name`` is built with the repetition seed itself (its family numbers
    its own instances, as COCO's bbob does); False for a name of no family (building it
    fails, naming the known ones)."""
    return any(family.own_instances and name in family.names() for family in FAMILIES.values())


def family_uses_torch(name: str) -> bool:
    """Whether problem ``name``'s family runs torch code; False for a name of no family."""
    return any(family.uses_torch and name in family.names() for family in FAMILIES.values())


def writes_coco_data(name: str) -> bool:
    """Whether problem ``name`` can record its runs in COCO's data format (its builder takes
    ``coco_folder``)."""
    return "coco_folder" in inspect.signature(family_of(name).build).parameters


def available_problems() -> list[str]:
    """Names of every problem of every family, sorted."""
    return sorted(name for family in FAMILIES.values() for name in family.names())


def smallest_dim(name: str) -> int | None:
    """The smallest d problem ``name`` admits where its family states one (a test function's
    ``min_dim``), else None."""
    return get_function(name).min_dim if name in available_functions() else None


def describe_problems() -> dict[str, str]:
    """Every problem name with its one-line summary, sorted by name."""
    summaries = {
        name: summary
        for family in FAMILIES.values()
        for name, summary in family.summaries().items()
    }
    return dict(sorted(summaries.items()))


def make_problem(
    name: str,
    dim: int,
    n_steps: int = 1,
    scoring: str = "final",
    seed: int = 0,
    **options: Any,
) -> Problem:
    """Build the seeded problem ``name`` with K = ``n_steps`` injections of size ``dim``.

    Args:
        name: a name from :func:`available_problems`.
        dim: d >= 1.
        n_steps: K >= 1 (1: the plain problem ``x_0 = xi_1``).
        scoring: ``"final"`` (only x_0 is scored) or ``"cumulative"`` (every state).
        seed: a non-negative integer; the same seed gives the same problem.
        **options: family options; for test functions ``rotated`` (default True),
            ``beta_min`` and ``beta_max`` (see :func:`make_function_problem`); for bbob
            ``coco_folder`` and ``coco_algorithm``
            (:func:`casbo_bench.problems.bbob.make_bbob_problem`).

    Raises:
        ProblemError: an unknown name, scoring or option, or an impossible size or seed.
    """
    for label, value, least in (("dim", dim, 1), ("n_steps", n_steps, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
            raise ProblemError(f"{label} must be an integer >= {least}; got {value!r}")
    if scoring not in SCORINGS:
        raise ProblemError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
    family = family_of(name)
    arguments = (name, int(dim), int(n_steps), scoring, int(seed))
    try:
        inspect.signature(family.build).bind(*arguments, **options)
    except TypeError as error:
        raise ProblemError(
            f"problem {name!r} does not take option(s) {sorted(options)}: {error}"
        ) from None
    return family.build(*arguments, **options)
