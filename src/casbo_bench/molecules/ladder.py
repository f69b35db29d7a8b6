"""The error ladder's molecules: who is on each rung, and their properties by two judges.

A predictor task (``mol-alpha``, ``mol-gap``, ``mol-mu``) asks for molecules whose property
is a target value. The error ladder (:mod:`casbo_bench.analysis.ladder` builds the table)
reports the mean absolute error ``|property - target|`` of several sets of molecules, each a
*rung*:

| rung | molecules |
|---|---|
| ``naive`` | random QM9 molecules of the diffusion model's training split (``generative``) |
| ``n-atoms`` | the same, restricted to the task's number of heavy atoms |
| ``unguided`` | samples of the respaced sampler the optimizers steer, fresh N(0, I) noises |
| a method | the best molecule of each of its runs (the molecule benchmark's traces) |

Every molecule is judged twice (:func:`score_molecules`): by the property predictor (the
black box the methods optimize) and by GFN2-xTB mapped to DFT units by the stored linear
calibration (:mod:`casbo_bench.molecules.xtb_calibration`; alpha by the finite-field
polarizability). A method that games the predictor is close to the target by the
predictor and far from it by xTB. Only a molecule the task would score is judged: RDKit
sanitizes it and it is in one piece (the rule of
:meth:`casbo_bench.molecules.problem.MoleculeProblem._score`); the others are counted.

Draws are seeded by :func:`casbo_bench.seeding.derive_rng` on ``("ladder", rung, task,
seed)``, so a rung is the same molecules whoever asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.atoms import MAX_ATOMS
from casbo_bench.molecules.data import MoleculeDataset, format_xyz, parse_xyz
from casbo_bench.molecules.diffusion import FixedSizeSampler
from casbo_bench.molecules.property_model import PropertyPredictor
from casbo_bench.molecules.rebuild import rebuild_molecule
from casbo_bench.molecules.xtb_calibration import LinearFit, xtb_observables
from casbo_bench.seeding import derive_rng

NAIVE = "naive"
N_ATOMS = "n-atoms"
UNGUIDED = "unguided"
BASELINE_RUNGS: tuple[str, ...] = (NAIVE, N_ATOMS, UNGUIDED)
"""The rungs that are not methods, lowest information first."""

DATASET_SPLIT = "generative"
"""The split the dataset rungs draw from: the diffusion model's training molecules."""

MOLECULE_COLUMNS: tuple[str, ...] = (
    "task",
    "rung",
    "kind",
    "replicate",
    "xyz",
    "smiles",
    "scorable",
    "predicted",
    "xtb_ok",
    "xtb_raw",
    "xtb_dft",
    "target",
    "error_predictor",
    "error_xtb",
)
"""The columns of a task's ladder molecules (one row per molecule; schema
:mod:`casbo_bench.schemas.ladder`)."""


class LadderError(UserFacingError, ValueError):
    """The ladder cannot be drawn or scored as asked."""


def draw_dataset_rung(
    dataset: MoleculeDataset,
    rung: str,
    task: str,
    n: int,
    seed: int,
    n_atoms: int | None = None,
    split: str = DATASET_SPLIT,
) -> list[str]:
    """The xyz texts of ``n`` molecules of ``split`` drawn without replacement (seeded).

    Args:
        rung: ``naive`` or ``n-atoms`` (it names the random stream).
        n_atoms: keep only molecules of this many heavy atoms (the ``n-atoms`` rung).

    Returns:
        ``min(n, available)`` texts (fewer when the pool is smaller: the caller records n).

    Raises:
        LadderError: no molecule of the split has ``n_atoms`` heavy atoms.
    """
    pool = dataset.split_indices(split)
    if n_atoms is not None:
        pool = pool[dataset.num_atoms[pool] == n_atoms]
    if len(pool) == 0:
        raise LadderError(f"the {split} split holds no molecule with {n_atoms} heavy atoms")
    rng = derive_rng("ladder", rung, task, seed)
    rows = rng.choice(pool, size=min(n, len(pool)), replace=False)
    return [format_xyz(dataset.positions[row], dataset.atom_types[row]) for row in rows]


def draw_unguided_rung(sampler: FixedSizeSampler, task: str, n: int, seed: int) -> list[str]:
    """The xyz texts of ``n`` samples of ``sampler`` from fresh N(0, I) noises (seeded)."""
    rng = derive_rng("ladder", UNGUIDED, task, seed)
    noise = rng.standard_normal((n, sampler.n_injections, sampler.dim))
    samples = sampler(noise)
    positions = samples.positions.detach().cpu().double().numpy()
    atom_types = samples.atom_types.detach().cpu().numpy()
    return [format_xyz(p, t) for p, t in zip(positions, atom_types, strict=True)]


def _padded(texts: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``B x 9 x 3`` positions and ``B x 9`` types (-1 padding) of xyz texts."""
    positions = np.zeros((len(texts), MAX_ATOMS, 3))
    types = np.full((len(texts), MAX_ATOMS), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        xyz, kinds = parse_xyz(text)
        positions[i, : len(kinds)] = xyz
        types[i, : len(kinds)] = kinds
    return positions, types


def score_molecules(
    frame: pd.DataFrame,
    predictor: PropertyPredictor,
    quantity: str,
    target: float,
    fit: LinearFit | None,
    field_step: float = 1e-3,
) -> pd.DataFrame:
    """Judge every molecule of ``frame`` by the predictor and by calibrated GFN2-xTB.

    Args:
        frame: rows with ``task``, ``rung``, ``kind``, ``replicate`` and ``xyz``.
        predictor: the property predictor (the task's black box).
        quantity: the QM9 property (``alpha``, ``gap``, ``mu``).
        target: the task's target value.
        fit: the xTB -> DFT line of ``quantity``; None leaves the xTB columns NaN.
        field_step: the finite field of the alpha calculation (a.u.).

    Returns:
        ``frame`` with the columns of :data:`MOLECULE_COLUMNS`; a molecule not scorable has
        NaN values and errors.
    """
    if quantity not in predictor.properties:
        raise LadderError(
            f"the predictor predicts {', '.join(predictor.properties)}; not {quantity!r}"
        )
    texts = frame["xyz"].tolist()
    rebuilt = [rebuild_molecule(*parse_xyz(text)) for text in texts]
    scorable = np.array([m.ok and m.n_fragments == 1 for m in rebuilt], dtype=bool)
    predicted = np.full(len(texts), np.nan)
    if len(texts):
        positions, types = _padded(texts)
        column = predictor.properties.index(quantity)
        predicted = np.where(scorable, predictor.predict(positions, types)[:, column], np.nan)
    xtb_ok = np.zeros(len(texts), dtype=bool)
    xtb_raw = np.full(len(texts), np.nan)
    if fit is not None:
        for i in np.flatnonzero(scorable):
            observed = xtb_observables(
                rebuilt[i], with_alpha=quantity == "alpha", field_step=field_step
            )
            value = observed.value(quantity) if observed.ok else float("nan")
            xtb_ok[i] = bool(np.isfinite(value))
            xtb_raw[i] = value
    xtb_dft = fit.apply(xtb_raw) if fit is not None else np.full(len(texts), np.nan)
    scored = frame.loc[:, ["task", "rung", "kind", "replicate", "xyz"]].copy()
    scored["smiles"] = [m.smiles if m.ok else None for m in rebuilt]
    scored["scorable"] = scorable
    scored["predicted"] = predicted
    scored["xtb_ok"] = xtb_ok
    scored["xtb_raw"] = xtb_raw
    scored["xtb_dft"] = xtb_dft
    scored["target"] = float(target)
    scored["error_predictor"] = np.abs(predicted - target)
    scored["error_xtb"] = np.abs(xtb_dft - target)
    return scored.reset_index(drop=True)


def rung_frame(
    task: str, rung: str, kind: str, texts: Sequence[str], replicates: Any = None
) -> pd.DataFrame:
    """Rows (``task``, ``rung``, ``kind``, ``replicate``, ``xyz``) of one rung's molecules;
    ``replicate`` is the molecule's index in the draw, or the run seed of a method's best."""
    replicate = np.arange(len(texts)) if replicates is None else np.asarray(replicates)
    return pd.DataFrame(
        {
            "task": task,
            "rung": rung,
            "kind": kind,
            "replicate": replicate.astype(np.int64),
            "xyz": list(texts),
        }
    )
