"""The molecule tasks and their size rule: the one table, free of torch, RDKit and numpy.

A molecule task steers the heavy-atom equivariant diffusion model through its noise hook
(:class:`casbo_bench.molecules.problem.MoleculeProblem`). This module says which tasks
exist and which sizes they take; it imports only the standard library, so the problem
registry (:mod:`casbo_bench.problems`), ``casbo-bench list`` and the workflow read it without
loading a model.

**Sizes.** A task either generates molecules of exactly ``n`` heavy atoms (a *fixed* size,
``n_atoms: n`` in a config) or draws each rollout's ``n`` from QM9's size distribution
(``n_atoms: qm9``, :data:`DRAWN_SIZE`), with a sampler of ``S`` reverse steps. The problem
contract's sizes are

    d = dim = 7 n        (fixed n; per atom: 3 coordinates and 4 atom-type logits)
    d = dim = 7 * 9 = 63 (drawn n: every molecule padded to 9 atoms, the padding masked)
    K = n_steps = S + 2  (the initial latent, S reverse steps, the final draw of p(x | z_0))

with 1 <= n <= 9 and S >= 1 (:func:`task_size`, and its inverse :func:`sampler_size`);
anything else is refused with the sizes to use. The default task, n = 9 and S = 20, is
``--dim 63 --steps 22``. A drawn-size task is registered under its task's name with
:data:`DRAWN_SUFFIX` (``mol-qed-qm9size``; :func:`problem_name`), so a run's problem name
says which size rule it ran and the two never share a trace. How ``n`` is drawn (a
deterministic function of the rollout's own initial latent) is
:class:`casbo_bench.molecules.diffusion.DrawnSizeSampler`'s rule.

**Tasks** (:data:`MOLECULE_TASKS`). A structure RDKit cannot sanitize, or one that falls
apart into several fragments, gets the task's penalty, never an error and never NaN:

| task | score | penalty |
|---|---|---|
| ``mol-qed`` | RDKit's QED of the rebuilt molecule, in (0, 1] | 0 |
| ``mol-alpha``, ``mol-gap``, ``mol-mu`` | ``-min(abs(pred - target), 5 sigma)`` | ``-5 sigma`` |
| ``mol-xtb-dipole``, ``mol-xtb-gap`` | GFN2-xTB's dipole (D) or HOMO-LUMO gap (eV) | 0 |

``pred`` is the property predictor's value (:mod:`casbo_bench.molecules.property_model`),
``target`` the 90th percentile of the property over QM9's ``property`` split and ``sigma``
its standard deviation there (both read from the predictor's manifest); the error cap keeps
every valid molecule at or above the penalty. The xTB scores are maximized. A task's
``kind`` picks its scorer (:data:`casbo_bench.molecules.problem.SCORERS`), so a new task is
one entry here, and a new kind of score one scorer class there.

The instance seed changes nothing: the model, the predictor and the targets are fixed, so
every seed is the same problem; repetitions differ in the optimizers' seeds and in the fixed
later noises of the latent methods (common random numbers).

>>> task_size(9, 20)
(63, 22)
>>> sampler_size("mol-qed", 63, 22)
(9, 20)
>>> problem_name("mol-gap", "qm9"), sampler_size("mol-gap-qm9size", 63, 22)
('mol-gap-qm9size', ('qm9', 20))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from casbo_bench.errors import ProblemError
from casbo_bench.molecules.atoms import MAX_ATOMS, N_FEATURES

DEFAULT_ATOMS = MAX_ATOMS
"""n of the default task: QM9's largest molecules."""

DEFAULT_SAMPLER_STEPS = 20
"""S of the default task: the smallest sampler whose molecules are mostly stable."""

EXTRA_INJECTIONS = 2
"""Injections besides the S reverse steps: the initial latent and the final draw."""

DRAWN_SIZE = "qm9"
"""``n_atoms`` of a task whose rollouts draw their size from QM9's distribution."""

DRAWN_SUFFIX = "-qm9size"
"""The suffix of a drawn-size task's problem name (``mol-qed`` -> ``mol-qed-qm9size``)."""

AtomCount = int | str
"""A task's size: n heavy atoms (1..9), or :data:`DRAWN_SIZE`."""

SCORING = "final"
"""The only scoring of a molecule task: intermediate diffusion states are not molecules."""

ScoreKind = Literal["qed", "predictor", "xtb"]


@dataclass(frozen=True)
class MoleculeTask:
    """One molecule task: what is scored and how.

    Attributes:
        name: the registry name (``mol-...``).
        kind: ``"qed"`` (RDKit), ``"predictor"`` (the property predictor, a target) or
            ``"xtb"`` (GFN2-xTB, maximized); it picks the task's scorer.
        quantity: the scored quantity: ``qed``; ``alpha``, ``gap`` or ``mu`` (predictor);
            ``dipole`` or ``gap`` (xTB).
        unit: the unit of the quantity.
        target_percentile: predictor tasks: the percentile of the property split that is
            the target (its value is read from the predictor's manifest).
        description: one line for tables and docs.
    """

    name: str
    kind: ScoreKind
    quantity: str
    unit: str
    target_percentile: int | None = None
    description: str = ""


MOLECULE_TASKS: dict[str, MoleculeTask] = {
    task.name: task
    for task in (
        MoleculeTask("mol-qed", "qed", "qed", "", description="maximize RDKit's QED"),
        MoleculeTask(
            "mol-alpha",
            "predictor",
            "alpha",
            "bohr^3",
            90,
            "predicted polarizability alpha at the property split's 90th percentile",
        ),
        MoleculeTask(
            "mol-gap",
            "predictor",
            "gap",
            "eV",
            90,
            "predicted HOMO-LUMO gap at the property split's 90th percentile",
        ),
        MoleculeTask(
            "mol-mu",
            "predictor",
            "mu",
            "Debye",
            90,
            "predicted dipole moment at the property split's 90th percentile",
        ),
        MoleculeTask(
            "mol-xtb-dipole", "xtb", "dipole", "Debye", description="maximize the GFN2-xTB dipole"
        ),
        MoleculeTask(
            "mol-xtb-gap", "xtb", "gap", "eV", description="maximize the GFN2-xTB HOMO-LUMO gap"
        ),
    )
}
"""The molecule tasks by name (module docstring)."""


def task_names() -> list[str]:
    """The registry names of the molecule tasks: each task, then each with drawn sizes."""
    return [*MOLECULE_TASKS, *(name + DRAWN_SUFFIX for name in MOLECULE_TASKS)]


def describe_tasks() -> dict[str, str]:
    """Every molecule problem name with its one-line description."""
    fixed = {name: f"molecules: {task.description}" for name, task in MOLECULE_TASKS.items()}
    drawn = {
        name + DRAWN_SUFFIX: f"{line}, each molecule's size drawn from QM9's"
        for name, line in fixed.items()
    }
    return fixed | drawn


def split_name(name: str) -> tuple[str, bool]:
    """``(task name, drawn)``: a problem name without :data:`DRAWN_SUFFIX`, and whether it
    had it.

    >>> split_name("mol-qed-qm9size"), split_name("mol-qed")
    (('mol-qed', True), ('mol-qed', False))
    """
    if name.endswith(DRAWN_SUFFIX):
        return name.removesuffix(DRAWN_SUFFIX), True
    return name, False


def problem_name(task_name: str, n_atoms: AtomCount = DEFAULT_ATOMS) -> str:
    """The problem name of task ``task_name`` at size ``n_atoms`` (a config's task entry):
    the task's own for a fixed n, with :data:`DRAWN_SUFFIX` for :data:`DRAWN_SIZE`."""
    return task_name + DRAWN_SUFFIX if n_atoms == DRAWN_SIZE else task_name


def claim_problems(tasks: Sequence[Mapping[str, Any]]) -> set[str]:
    """The problems of a config's task entries whose runs are claim cells: every task but
    those marked ``count_in_claims: false`` (a score that saturates for every method, such as
    QED near 0.62, is reported in the molecule tables and judged nowhere)."""
    counted = {
        problem_name(task["name"], task.get("n_atoms", DEFAULT_ATOMS))
        for task in tasks
        if task.get("count_in_claims", True)
    }
    excluded = {
        problem_name(task["name"], task.get("n_atoms", DEFAULT_ATOMS))
        for task in tasks
        if not task.get("count_in_claims", True)
    }
    return counted - excluded


def get_task(name: str) -> MoleculeTask:
    """The task of problem ``name`` (a task's name, or it with :data:`DRAWN_SUFFIX`).

    Raises:
        ProblemError: no task has that name (the message lists them).
    """
    task_name, _ = split_name(name)
    if task_name not in MOLECULE_TASKS:
        raise ProblemError(
            f"unknown molecule task {name!r}; choose one of {', '.join(MOLECULE_TASKS)} "
            f"(each also with sizes drawn from QM9's: {DRAWN_SUFFIX} after the name)"
        )
    return MOLECULE_TASKS[task_name]


def task_size(
    n_atoms: AtomCount = DEFAULT_ATOMS, sampler_steps: int = DEFAULT_SAMPLER_STEPS
) -> tuple[int, int]:
    """``(d, K)``: the contract's sizes of a task with n atoms and S steps (the one rule).

    ``d = 7 n`` for a fixed n and ``d = 7 * 9 = 63`` for :data:`DRAWN_SIZE` (molecules
    padded to 9 atoms); ``K = S + 2``.

    Raises:
        ProblemError: n is neither in 1..9 nor :data:`DRAWN_SIZE`, or S < 1.

    >>> task_size(4, 3), task_size("qm9", 3)
    ((28, 5), (63, 5))
    """
    fixed = isinstance(n_atoms, int) and not isinstance(n_atoms, bool)
    if not (n_atoms == DRAWN_SIZE or (fixed and 1 <= int(n_atoms) <= MAX_ATOMS)) or (
        sampler_steps < 1
    ):
        raise ProblemError(
            f"a molecule task needs 1 <= n_atoms <= {MAX_ATOMS} (or n_atoms {DRAWN_SIZE!r}: "
            f"each molecule's size drawn from QM9's) and sampler_steps >= 1; got "
            f"n_atoms={n_atoms!r}, sampler_steps={sampler_steps}"
        )
    atoms = MAX_ATOMS if n_atoms == DRAWN_SIZE else int(n_atoms)
    return N_FEATURES * atoms, sampler_steps + EXTRA_INJECTIONS


def sampler_size(name: str, dim: int, n_steps: int) -> tuple[AtomCount, int]:
    """``(n, S)`` of problem ``name`` asked for with ``dim`` and ``n_steps``: the inverse of
    :func:`task_size` (n is :data:`DRAWN_SIZE` for a name with :data:`DRAWN_SUFFIX`).

    Raises:
        ProblemError: ``dim`` is not 7 n with 1 <= n <= 9 (63 for drawn sizes), or
            ``n_steps`` < 3; the message gives the sizes to use.
    """
    default_dim, default_steps = task_size()
    _, drawn = split_name(name)
    if drawn and dim != default_dim:
        raise ProblemError(
            f"{name} draws each molecule's size and pads it to {MAX_ATOMS} atoms, so it takes "
            f"dim = {default_dim}; got dim={dim}"
        )
    if dim % N_FEATURES or not 1 <= dim // N_FEATURES <= MAX_ATOMS:
        raise ProblemError(
            f"{name} takes dim = 7 n for n heavy atoms, 1 <= n <= {MAX_ATOMS} (e.g. --dim "
            f"{default_dim} for n = {DEFAULT_ATOMS}); got dim={dim}"
        )
    if n_steps < 1 + EXTRA_INJECTIONS:
        raise ProblemError(
            f"{name} takes n_steps = S + 2 for a sampler of S >= 1 reverse steps (e.g. --steps "
            f"{default_steps} for S = {DEFAULT_SAMPLER_STEPS}); got n_steps={n_steps}"
        )
    n_atoms: AtomCount = DRAWN_SIZE if drawn else dim // N_FEATURES
    return n_atoms, n_steps - EXTRA_INJECTIONS


def check_scoring(name: str, scoring: str) -> None:
    """Refuse any scoring but :data:`SCORING` for task ``name`` (a ProblemError saying why)."""
    if scoring != SCORING:
        raise ProblemError(
            f"{name} scores only the final molecule (intermediate diffusion states are not "
            f"molecules); use scoring {SCORING!r}, not {scoring!r}"
        )
