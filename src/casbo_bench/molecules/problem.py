"""The molecule problem: noise in, a scored 3D molecule out (the tasks of
:mod:`casbo_bench.problems.molecule`).

One rollout of :class:`MoleculeProblem` is:

1. the respaced EDM sampler (:class:`~casbo_bench.molecules.diffusion.FixedSizeSampler`) turns
   the ``K x 7n`` injected noises into a structure of n heavy atoms;
2. :func:`~casbo_bench.molecules.rebuild.rebuild_molecule` reads it as an RDKit molecule
   (never raises; ``ok=False`` when RDKit cannot sanitize it);
3. the task scores it (QED, the property predictor against a target, or GFN2-xTB), or gives
   the task's penalty when the molecule is invalid, falls apart into several fragments, or
   its score cannot be computed.

The step losses are zero except the last column, ``-score``. :meth:`MoleculeProblem.rollout_details`
also returns per rollout (the runner writes them as ``detail_*`` trace columns):

| key | dtype | meaning |
|---|---|---|
| ``score`` | float64 | the task score (``-loss``); the penalty where invalid or fragmented |
| ``value`` | float64 | the scored quantity (QED, predicted property, xTB value), else NaN |
| ``valid`` | bool | RDKit sanitized the rebuilt molecule |
| ``valid_table`` | bool | EDM's rule: the distance-table bond orders sanitize as they are |
| ``stable`` | bool | molecule stability (every atom within its valence, heavy-atom rule) |
| ``fragments`` | int64 | connected components of the bond graph |
| ``smiles`` | str or None | canonical SMILES without stereochemistry (None where invalid) |
| ``xyz`` | str | the structure, one ``symbol x y z`` line per atom (Angstrom; :func:`parse_xyz`) |
| ``checkpoint`` | str | sha256 of the sampler's checkpoint (every run of a table must share it) |

Models are loaded once per process and folder (the checkpoint is verified against its
manifest), so every repetition of a job samples the same weights even while a training run
rewrites the folder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.molecules.data import ATOM_SYMBOLS
from casbo_bench.molecules.diffusion import FixedSizeSampler
from casbo_bench.molecules.evaluate import CheckpointError, load_verified_model
from casbo_bench.molecules.metrics import stable_atoms
from casbo_bench.molecules.predictor import LoadedPredictor, PredictorError, load_predictor
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_batch
from casbo_bench.molecules.scores import QED_PENALTY, qed_score, xtb_properties
from casbo_bench.molecules.training import (
    SAMPLING_FILE,
    PretrainedModel,
    TrainingError,
    resolve_device,
)
from casbo_bench.problems.base import FloatArray, Problem, ProblemError, RolloutDetails
from casbo_bench.problems.molecule import MoleculeTask

REPOSITORY = Path(__file__).resolve().parents[3]
DEFAULT_CHECKPOINT = REPOSITORY / "models" / "edm_qm9_heavy"
DEFAULT_PREDICTOR = REPOSITORY / "models" / "property_predictor"

PREDICTOR_PENALTY_SIGMAS = 5.0
"""Predictor tasks: the error cap and penalty, in standard deviations of the property split."""

XTB_PENALTY = 0.0
"""xTB tasks: the score of an invalid molecule or a failed calculation (dipole, gap >= 0)."""


@functools.cache
def _sampling_model(directory: str, device: str) -> tuple[PretrainedModel, str]:
    """The verified EDM of ``directory`` on ``device`` and its sha256 (loaded once)."""
    try:
        model, checkpoint = load_verified_model(directory, resolve_device(device))
    except (CheckpointError, TrainingError) as error:
        raise ProblemError(f"cannot load the molecule sampler: {error}") from None
    return model, checkpoint.sha256(SAMPLING_FILE)


@functools.cache
def _property_predictor(directory: str, device: str) -> LoadedPredictor:
    """The verified property predictor of ``directory`` on ``device`` (loaded once)."""
    try:
        return load_predictor(directory, resolve_device(device))
    except (CheckpointError, PredictorError, TrainingError) as error:
        raise ProblemError(
            f"cannot load the property predictor: {error}; train it with "
            f"`python -m casbo_bench.molecules.predictor --out {directory}`"
        ) from None


def format_xyz(positions: NDArray[Any], atom_types: NDArray[Any]) -> str:
    """One ``symbol x y z`` line per real atom (padding, type -1, dropped), Angstrom.

    >>> format_xyz(np.array([[0.0, 0.0, 0.0], [1.21, 0.0, 0.0]]), np.array([0, 2]))
    'C 0.00000 0.00000 0.00000\\nO 1.21000 0.00000 0.00000'
    """
    return "\n".join(
        f"{ATOM_SYMBOLS[int(kind)]} {x:.5f} {y:.5f} {z:.5f}"
        for (x, y, z), kind in zip(positions.tolist(), atom_types.tolist(), strict=True)
        if kind >= 0
    )


def parse_xyz(text: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The ``n x 3`` positions and ``n`` type indices of :func:`format_xyz`'s text.

    Raises:
        ValueError: a line is not ``symbol x y z`` with a symbol of C, N, O, F.
    """
    positions, types = [], []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] not in ATOM_SYMBOLS:
            raise ValueError(f"not an xyz line 'symbol x y z' of C, N, O or F: {line!r}")
        types.append(ATOM_SYMBOLS.index(parts[0]))
        positions.append([float(value) for value in parts[1:]])
    return np.array(positions, dtype=np.float64).reshape(-1, 3), np.array(types, dtype=np.int64)


class MoleculeProblem(Problem):
    """A molecule task on the EDM sampler (module docstring).

    Attributes:
        task: what is scored.
        sampler: the noise hook: ``B x K x 7n`` noise -> molecules of n atoms.
        checkpoint_sha256: the sha256 of the sampler's weights.
        predictor: the property predictor (predictor tasks only).
        target: the predictor task's target value (NaN for other tasks).
        penalty: the score of an invalid molecule.
    """

    scoring = "final"

    def __init__(
        self,
        task: MoleculeTask,
        sampler: FixedSizeSampler,
        checkpoint_sha256: str,
        predictor: LoadedPredictor | None = None,
    ) -> None:
        self.task = task
        self.sampler = sampler
        self.checkpoint_sha256 = checkpoint_sha256
        self.predictor = predictor
        self.name = task.name
        self.dim = sampler.dim
        self.n_steps = sampler.n_injections
        self.target = float("nan")
        self.cap = float("nan")
        if task.kind == "qed":
            self.penalty = QED_PENALTY
        elif task.kind == "xtb":
            self.penalty = XTB_PENALTY
        else:
            if predictor is None or task.quantity not in predictor.model.properties:
                raise ProblemError(
                    f"{task.name} needs a property predictor of {task.quantity!r}; give one"
                )
            manifest = predictor.manifest
            percentiles = manifest["property_split_percentiles"][task.quantity]
            self.target = float(percentiles[f"p{task.target_percentile}"])
            sigma = float(manifest["normalization"][task.quantity]["std"])
            self.cap = PREDICTOR_PENALTY_SIGMAS * sigma
            self.penalty = -self.cap

    @classmethod
    def load(
        cls,
        task: MoleculeTask,
        n_atoms: int,
        sampler_steps: int,
        checkpoint: str | None = None,
        predictor: str | None = None,
        device: str = "cpu",
    ) -> MoleculeProblem:
        """The task on the checkpoint (and predictor) folders, loaded once per process.

        Raises:
            ProblemError: a folder is missing or does not match its manifest, or the
                sampler cannot take ``sampler_steps``.
        """
        model, sha256 = _sampling_model(str(checkpoint or DEFAULT_CHECKPOINT), device)
        if sampler_steps > model.diffusion.timesteps:
            raise ProblemError(
                f"{task.name}: the sampler has T = {model.diffusion.timesteps} steps; ask for "
                f"S <= {model.diffusion.timesteps} (n_steps <= {model.diffusion.timesteps + 2})"
            )
        sampler = FixedSizeSampler(model.diffusion, n_atoms, sampler_steps)
        loaded = None
        if task.kind == "predictor":
            loaded = _property_predictor(str(predictor or DEFAULT_PREDICTOR), device)
        return cls(task, sampler, sha256, loaded)

    def rollout(self, noise: FloatArray) -> FloatArray:
        """Step losses of a ``B x K x 7n`` batch: zero but the last column, ``-score``."""
        return self.rollout_details(noise)[0]

    def rollout_details(self, noise: FloatArray) -> tuple[FloatArray, RolloutDetails]:
        """Step losses and the per-rollout details of the module docstring's table."""
        noise = self.check_noise(noise)
        samples = self.sampler(noise)
        positions = samples.positions.detach().cpu().double().numpy()
        atom_types = samples.atom_types.detach().cpu().numpy()
        rebuilt = rebuild_batch(positions, atom_types)
        scores, values = self._score(rebuilt, positions, atom_types)
        losses = np.zeros((len(rebuilt), self.n_steps))
        losses[:, -1] = -scores
        details: RolloutDetails = {
            "score": scores,
            "value": values,
            "valid": np.array([molecule.ok for molecule in rebuilt], dtype=bool),
            "valid_table": np.array([m.table_sanitizes for m in rebuilt], dtype=bool),
            "stable": np.array([_molecule_stable(m) for m in rebuilt], dtype=bool),
            "fragments": np.array([m.n_fragments for m in rebuilt], dtype=np.int64),
            "smiles": np.array([m.smiles if m.ok else None for m in rebuilt], dtype=object),
            "xyz": np.array(
                [format_xyz(p, t) for p, t in zip(positions, atom_types, strict=True)],
                dtype=object,
            ),
            "checkpoint": np.full(len(rebuilt), self.checkpoint_sha256, dtype=object),
        }
        return losses, details

    def _score(
        self,
        rebuilt: list[RebuiltMolecule],
        positions: NDArray[np.float64],
        atom_types: NDArray[Any],
    ) -> tuple[FloatArray, FloatArray]:
        """Scores (penalty where not scorable) and scored values (NaN where not computed).

        Only a valid molecule in one piece is scored: a structure that falls apart into
        fragments (an exploded sample reads as "C.C.C.O...") is no molecule, however RDKit
        sanitizes its pieces, and would otherwise earn e.g. a QED near the average.
        """
        valid = np.array([m.ok and m.n_fragments == 1 for m in rebuilt], dtype=bool)
        values = np.full(len(rebuilt), np.nan)
        if self.task.kind == "qed":
            values[valid] = [qed_score(m) for m, ok in zip(rebuilt, valid, strict=True) if ok]
        elif self.task.kind == "xtb":
            for index in np.flatnonzero(valid):
                result = xtb_properties(rebuilt[index])
                if result.ok:
                    values[index] = (
                        result.dipole_debye if self.task.quantity == "dipole" else result.gap_ev
                    )
        else:
            assert self.predictor is not None  # checked in __init__
            column = self.predictor.model.properties.index(self.task.quantity)
            predicted = self.predictor.model.predict(positions, atom_types)[:, column]
            values = np.where(valid, predicted, np.nan)
        scored = np.isfinite(values)
        if self.task.kind == "predictor":
            scores = -np.minimum(np.abs(values - self.target), self.cap)
        else:
            scores = values
        return np.where(scored, scores, self.penalty), values


def _molecule_stable(molecule: RebuiltMolecule) -> bool:
    stable = stable_atoms(molecule)
    return bool(len(stable) and stable.all())
