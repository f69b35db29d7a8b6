"""The molecule problem family: target-guided 3D generation with the pre-trained EDM sampler.

A molecule task steers the heavy-atom equivariant diffusion model of
:mod:`casbo_bench.molecules` through its noise hook. One rollout runs the respaced sampler
with the injected noises and scores the molecule it produces; the score enters the loss as
``-score`` in the last step's column (final scoring: intermediate states are not molecules).

Sizes come from the contract's ``dim`` and ``n_steps``: a task generates molecules of
exactly ``n`` heavy atoms with a sampler of ``S`` reverse steps, so

    d = dim = 7 n      (per atom: 3 coordinates and 4 atom-type logits)
    K = n_steps = S + 2  (the initial latent, S reverse steps, the final draw of p(x | z_0))

with 1 <= n <= 9 and S >= 1; anything else is refused with the sizes to use. The default
task size, n = 9 and S = 20, is ``--dim 63 --steps 22`` (:func:`molecule_problem_size`).

Tasks (:data:`MOLECULE_TASKS`); a structure RDKit cannot sanitize, or one that falls apart
into several fragments, gets the task's penalty, never an error and never NaN:

| task | score | penalty |
|---|---|---|
| ``mol-qed`` | RDKit's QED of the rebuilt molecule, in (0, 1] | 0 |
| ``mol-alpha``, ``mol-gap``, ``mol-mu`` | ``-min(abs(pred - target), 5 sigma)`` | ``-5 sigma`` |
| ``mol-xtb-dipole``, ``mol-xtb-gap`` | GFN2-xTB's dipole (D) or HOMO-LUMO gap (eV) | 0 |

``pred`` is the property predictor's value (:mod:`casbo_bench.molecules.predictor`),
``target`` the 90th percentile of the property over QM9's ``property`` split and ``sigma`` its
standard deviation there (both read from the predictor's manifest); the error cap keeps every
valid molecule at or above the penalty. The xTB scores are maximized.

The instance seed changes nothing: the model, the predictor and the targets are fixed, so
every seed is the same problem; repetitions differ in the optimizers' seeds and in the fixed
later noises of the latent methods (common random numbers).

This module is light (no torch): the problem itself, which loads the model, is
:class:`casbo_bench.molecules.problem.MoleculeProblem`, imported by name when one is built,
like an optimizer plugin, so that commands which never build a molecule problem (the
analysis) need neither torch nor RDKit (tests/test_envs.py counts the molecules package among
the plugins of ``casbo-bench run``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from casbo_bench.problems.base import Problem, ProblemError

N_FEATURES = 7
"""Noise entries per atom: 3 coordinates and 4 atom-type logits (C, N, O, F)."""

PROBLEM_MODULE = "casbo_bench.molecules.problem"
"""The module of :class:`MoleculeProblem`, imported only when a molecule problem is built."""

MAX_ATOMS = 9
DEFAULT_ATOMS = 9
DEFAULT_SAMPLER_STEPS = 20
EXTRA_INJECTIONS = 2
"""Injections besides the S reverse steps: the initial latent and the final draw."""

ScoreKind = Literal["qed", "predictor", "xtb"]


@dataclass(frozen=True)
class MoleculeTask:
    """One molecule task: what is scored and how.

    Attributes:
        name: the registry name (``mol-...``).
        kind: ``"qed"`` (RDKit), ``"predictor"`` (the property predictor, a target) or
            ``"xtb"`` (GFN2-xTB, maximized).
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


def molecule_task_names() -> list[str]:
    """The registry names of the molecule tasks."""
    return list(MOLECULE_TASKS)


def describe_molecule_tasks() -> dict[str, str]:
    """Every molecule task's name with its one-line description."""
    return {name: f"molecules: {task.description}" for name, task in MOLECULE_TASKS.items()}


def molecule_problem_size(
    n_atoms: int = DEFAULT_ATOMS, sampler_steps: int = DEFAULT_SAMPLER_STEPS
) -> tuple[int, int]:
    """``(d, K) = (7 n, S + 2)``: the contract's sizes of a task with n atoms and S steps.

    >>> molecule_problem_size(9, 20)
    (63, 22)
    """
    if not 1 <= n_atoms <= MAX_ATOMS or sampler_steps < 1:
        raise ProblemError(
            f"a molecule task needs 1 <= n_atoms <= {MAX_ATOMS} and sampler_steps >= 1; got "
            f"n_atoms={n_atoms}, sampler_steps={sampler_steps}"
        )
    return N_FEATURES * n_atoms, sampler_steps + EXTRA_INJECTIONS


def sampler_size(name: str, dim: int, n_steps: int) -> tuple[int, int]:
    """``(n, S)`` of a task asked for with ``dim`` and ``n_steps`` (the module's rule).

    Raises:
        ProblemError: ``dim`` is not 7 n with 1 <= n <= 9, or ``n_steps`` < 3; the message
            gives the sizes to use.
    """
    default_dim, default_steps = molecule_problem_size()
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
    return dim // N_FEATURES, n_steps - EXTRA_INJECTIONS


def make_molecule_problem(
    name: str,
    dim: int,
    n_steps: int,
    scoring: str,
    seed: int,
    checkpoint: str | None = None,
    predictor: str | None = None,
    device: str = "cpu",
) -> Problem:
    """The molecule task ``name`` with ``n = dim / 7`` atoms and ``S = n_steps - 2`` steps.

    Args:
        name: a key of :data:`MOLECULE_TASKS`.
        dim: d = 7 n.
        n_steps: K = S + 2.
        scoring: only ``"final"`` (the molecule is scored once, at the end).
        seed: unused (every seed is the same problem; module docstring).
        checkpoint: the EDM checkpoint folder (default: the repository's
            ``models/edm_qm9_heavy``).
        predictor: the property predictor folder (default: ``models/property_predictor``).
        device: where the sampler and the predictor run: ``cpu``, ``cuda`` or ``auto``.

    Raises:
        ProblemError: an unknown task, sizes that break the rule, cumulative scoring, or a
            checkpoint that cannot be read.
    """
    if name not in MOLECULE_TASKS:
        raise ProblemError(
            f"unknown molecule task {name!r}; choose one of {', '.join(MOLECULE_TASKS)}"
        )
    n_atoms, sampler_steps = sampler_size(name, dim, n_steps)
    if scoring != "final":
        raise ProblemError(
            f"{name} scores only the final molecule (intermediate diffusion states are not "
            f"molecules); use scoring 'final', not {scoring!r}"
        )
    problem: Problem = importlib.import_module(PROBLEM_MODULE).MoleculeProblem.load(
        MOLECULE_TASKS[name],
        n_atoms,
        sampler_steps,
        checkpoint=checkpoint,
        predictor=predictor,
        device=device,
    )
    return problem
