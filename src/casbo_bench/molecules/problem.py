"""The molecule problem: noise in, a scored 3D molecule out (the tasks of
:mod:`casbo_bench.molecules.tasks`).

One rollout of :class:`MoleculeProblem` is:

1. the respaced EDM sampler turns the ``K x d`` injected noises into a structure of n heavy
   atoms: at a fixed size (:class:`~casbo_bench.molecules.diffusion.FixedSizeSampler`) d = 7 n;
   with drawn sizes (:class:`~casbo_bench.molecules.diffusion.DrawnSizeSampler`, problem names
   ending in ``-qm9size``) d = 63 and each rollout's n is read off its own initial latent by
   the training set's atom-count histogram (the padded slots' noise is masked);
2. :func:`~casbo_bench.molecules.rebuild.rebuild_molecule` reads it as an RDKit molecule
   (never raises; ``ok=False`` when RDKit cannot sanitize it);
3. the task's :class:`Scorer` scores it (QED, the property predictor against a target, or
   GFN2-xTB), or the molecule gets the scorer's penalty when it is invalid, falls apart into
   several fragments, or its score cannot be computed.

A task's ``kind`` picks its scorer class in :data:`SCORERS`; the problem itself never asks
which kind it runs. The step losses are zero except the last column, ``-score``.
:meth:`MoleculeProblem.rollout_details` also returns per rollout (the runner writes them as
``detail_*`` trace columns):

| key | dtype | meaning |
|---|---|---|
| ``score`` | float64 | the task score (``-loss``); the penalty where invalid or fragmented |
| ``value`` | float64 | the scored quantity (QED, predicted property, xTB value), else NaN |
| ``valid`` | bool | RDKit sanitized the rebuilt molecule |
| ``valid_table`` | bool | EDM's rule: the distance-table bond orders sanitize as they are |
| ``stable`` | bool | molecule stability (every atom within its valence, heavy-atom rule) |
| ``fragments`` | int64 | connected components of the bond graph |
| ``n_atoms`` | int64 | heavy atoms of the molecule (the task's n, or the rollout's drawn n) |
| ``smiles`` | str or None | canonical SMILES without stereochemistry (None where invalid) |
| ``xyz`` | str | the structure, one ``symbol x y z`` line per atom (Angstrom;
  :func:`~casbo_bench.molecules.data.parse_xyz`) |
| ``checkpoint`` | str | sha256 of the sampler's checkpoint (every run of a table must share it) |

**Stepwise interface** (for the steering methods, :mod:`casbo_bench.optimizers.steering`):
``start(n, rng)`` draws n initial latents, ``step(handles, noise)`` takes one reverse
transition with the caller's ``n x d`` noises, ``score_x0(handles)`` scores each chain's
predicted clean sample ``x0_hat`` with the task's black box (counted as one call each; a cost,
never a result), ``select(handles, index)`` picks chains without replaying them, and
``finish(handles, noise)`` completes the chains at ``z_0`` into molecules scored like a
rollout (same step losses and details; one call each). :attr:`MoleculeProblem.cost` counts
the black-box calls and the denoiser evaluations (one network forward pass per molecule) of
every path, rollouts included: a rollout costs one call and ``S + 1`` evaluations.

Models are loaded once per process and folder (:mod:`casbo_bench.molecules.checkpoint`
verifies them against their manifests), so every repetition of a job samples the same
weights even while a training run rewrites the folder.

**Sampler precision** (``sampler_dtype``, :data:`SAMPLER_DTYPES`): the stored EMA weights are
float16, loaded as a float32 model, and the reverse chain runs in float32 unless
``"float64"`` is asked for (the same weights, converted exactly). Measured on 500 rollouts of
N(0, I) noise (n = 9, S = 20; ``benchmarks/rollouts.py``), float32 against float64: no
rollout's atom types or rebuilt molecule (canonical SMILES) differ (0 of 500; validity
98.8% in both); the largest atom displacement of a rollout is at most 2.9e-4 Angstrom
(99th percentile 9e-5, median 3e-6); QED scores are identical (QED reads the molecular
graph only); the property predictor's score (``mol-alpha``) moves by at most 2.3e-3
bohr^3 (median 8e-6). float64 sampling costs about twice the CPU time. At S = 3, where
many samples explode, the chain amplifies rounding far more (0.1 Angstrom between float32
batches), so these figures hold for the benchmark's S = 20, not for every sampler.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from casbo_bench.devices import resolve_device
from casbo_bench.molecules.checkpoint import (
    SAMPLING_FILE,
    CheckpointError,
    LoadedPredictor,
    PretrainedModel,
    edm_folder,
    load_predictor,
    load_sampler,
    predictor_folder,
)
from casbo_bench.molecules.data import format_xyz
from casbo_bench.molecules.diffusion import (
    ChainBatch,
    DrawnSizeSampler,
    EquivariantDiffusion,
    FixedSizeSampler,
    MoleculeSamples,
    StepwiseChains,
)
from casbo_bench.molecules.metrics import stable_atoms
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_batch
from casbo_bench.molecules.scores import QED_PENALTY, XtbResult, qed_score, xtb_properties
from casbo_bench.molecules.tasks import DRAWN_SIZE, SCORING, AtomCount, MoleculeTask, problem_name
from casbo_bench.problems.base import FloatArray, Problem, ProblemError, RolloutDetails

SAMPLER_DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""The floating-point types a molecule problem's sampler runs in, by name (module docstring)."""

DEFAULT_SAMPLER_DTYPE = "float32"
"""The stored model's own precision, the one every molecule run so far has sampled in."""

PREDICTOR_PENALTY_SIGMAS = 5.0
"""Predictor tasks: the error cap and penalty, in standard deviations of the property split."""

XTB_PENALTY = 0.0
"""xTB tasks: the score of an invalid molecule or a failed calculation (dipole, gap >= 0)."""


@functools.cache
def _sampling_model(directory: str, device: str) -> tuple[PretrainedModel, str]:
    """The verified EDM of ``directory`` on ``device`` and its sha256 (loaded once)."""
    try:
        model, checkpoint = load_sampler(directory, device)
    except CheckpointError as error:
        raise ProblemError(f"cannot load the molecule sampler: {error}") from None
    return model, checkpoint.sha256(SAMPLING_FILE)


@functools.cache
def _sampling_diffusion(directory: str, device: str, dtype: str) -> EquivariantDiffusion:
    """The EDM of ``directory`` on ``device`` in ``dtype`` (converted once per process)."""
    model, _ = _sampling_model(directory, device)
    return model.diffusion.with_dtype(SAMPLER_DTYPES[dtype])


@functools.cache
def _property_predictor(directory: str, device: str) -> LoadedPredictor:
    """The verified property predictor of ``directory`` on ``device`` (loaded once)."""
    try:
        return load_predictor(directory, device)
    except CheckpointError as error:
        raise ProblemError(f"cannot load the property predictor: {error}") from None


# --- scorers: one class per kind of task -----------------------------------------------------


@dataclass(frozen=True)
class SampledMolecules:
    """A batch of B sampled structures as a scorer sees them.

    Attributes:
        positions: a ``B x n x 3`` float64 array (Angstrom).
        atom_types: a ``B x n`` integer array of indices into (C, N, O, F).
        rebuilt: the ``B`` rebuilt molecules.
        scorable: a ``B`` boolean array: valid and in one piece (only these are scored).
    """

    positions: NDArray[np.float64]
    atom_types: NDArray[Any]
    rebuilt: Sequence[RebuiltMolecule]
    scorable: NDArray[np.bool_]


class Scorer(ABC):
    """How a task scores its molecules: the scored values, their scores, and the penalty.

    Attributes:
        penalty: the score of a molecule that cannot be scored (invalid, in pieces, or its
            value not computed); no scorable molecule scores below it.
    """

    penalty: float

    @classmethod
    @abstractmethod
    def load(cls, task: MoleculeTask, predictor: Path, device: str) -> Scorer:
        """The scorer of ``task``, with what it needs loaded (``predictor``: the property
        predictor's folder; ``device``: a resolved torch device name)."""

    @abstractmethod
    def values(self, batch: SampledMolecules) -> FloatArray:
        """The scored quantity of each molecule, a ``B`` array: NaN where not scorable or
        not computed."""

    def scores(self, values: FloatArray) -> FloatArray:
        """The score of each value: the value itself (a quantity to maximize)."""
        return values


class QedScorer(Scorer):
    """RDKit's QED, maximized; the penalty is QED's infimum, 0."""

    penalty = QED_PENALTY

    @classmethod
    def load(cls, task: MoleculeTask, predictor: Path, device: str) -> QedScorer:
        return cls()

    def values(self, batch: SampledMolecules) -> FloatArray:
        values = np.full(len(batch.rebuilt), np.nan)
        values[batch.scorable] = [
            qed_score(m) for m, ok in zip(batch.rebuilt, batch.scorable, strict=True) if ok
        ]
        return values


XTB_QUANTITIES: dict[str, Callable[[XtbResult], float]] = {
    "dipole": attrgetter("dipole_debye"),
    "gap": attrgetter("gap_ev"),
}
"""xTB tasks: the quantity a task names -> how to read it from an xTB result."""


class XtbScorer(Scorer):
    """A GFN2-xTB property (dipole in D, HOMO-LUMO gap in eV), maximized; a failed
    calculation gets the penalty, 0."""

    penalty = XTB_PENALTY

    def __init__(self, quantity: str) -> None:
        if quantity not in XTB_QUANTITIES:
            raise ProblemError(
                f"an xTB task scores one of {', '.join(XTB_QUANTITIES)}; got {quantity!r}"
            )
        self.read = XTB_QUANTITIES[quantity]

    @classmethod
    def load(cls, task: MoleculeTask, predictor: Path, device: str) -> XtbScorer:
        return cls(task.quantity)

    def values(self, batch: SampledMolecules) -> FloatArray:
        values = np.full(len(batch.rebuilt), np.nan)
        for index in np.flatnonzero(batch.scorable):
            result = xtb_properties(batch.rebuilt[int(index)])
            if result.ok:
                values[index] = self.read(result)
        return values


class PredictorScorer(Scorer):
    """The property predictor's value against a target: ``-min(|pred - target|, cap)``.

    The target is the task's percentile of the property split and ``cap`` is
    ``PREDICTOR_PENALTY_SIGMAS`` standard deviations of it, both read from the predictor's
    manifest; the penalty is ``-cap``.

    Attributes:
        predictor: the loaded property predictor.
        column: the predictor's output column of the task's property.
        target: the target value.
        cap: the error cap.
    """

    def __init__(self, task: MoleculeTask, predictor: LoadedPredictor) -> None:
        if task.quantity not in predictor.model.properties:
            raise ProblemError(
                f"{task.name} needs a property predictor of {task.quantity!r}; the one given "
                f"predicts {', '.join(predictor.model.properties)}"
            )
        manifest = predictor.manifest
        percentiles = manifest["property_split_percentiles"][task.quantity]
        sigma = float(manifest["normalization"][task.quantity]["std"])
        self.predictor = predictor
        self.column = predictor.model.properties.index(task.quantity)
        self.target = float(percentiles[f"p{task.target_percentile}"])
        self.cap = PREDICTOR_PENALTY_SIGMAS * sigma
        self.penalty = -self.cap

    @classmethod
    def load(cls, task: MoleculeTask, predictor: Path, device: str) -> PredictorScorer:
        return cls(task, _property_predictor(str(predictor), device))

    def values(self, batch: SampledMolecules) -> FloatArray:
        predicted = self.predictor.model.predict(batch.positions, batch.atom_types)
        return np.where(batch.scorable, predicted[:, self.column], np.nan)

    def scores(self, values: FloatArray) -> FloatArray:
        return -np.minimum(np.abs(values - self.target), self.cap)


SCORERS: dict[str, type[Scorer]] = {
    "qed": QedScorer,
    "predictor": PredictorScorer,
    "xtb": XtbScorer,
}
"""A task's ``kind`` -> its scorer class; a new kind of score is one class and one entry."""


@dataclass
class SteeringCost:
    """What a problem's black box and sampler have spent (docs/method.md section 7b).

    Attributes:
        calls: black-box score calls: one per rollout, per scored ``x0_hat``, per finished chain.
        denoiser_evals: network forward passes, one per molecule per evaluation.
    """

    calls: int = 0
    denoiser_evals: int = 0


@dataclass(frozen=True)
class MoleculeHandles:
    """Opaque handles of partial chains for steering methods (:meth:`MoleculeProblem.start`)."""

    chains: ChainBatch

    def __len__(self) -> int:
        return len(self.chains)


# --- the problem -----------------------------------------------------------------------------


class MoleculeProblem(Problem):
    """A molecule task on the EDM sampler (module docstring).

    Attributes:
        task: what is scored.
        sampler: the noise hook: ``B x K x d`` noise -> molecules (of n atoms, d = 7 n; or of
            drawn sizes padded to 9 atoms, d = 63).
        checkpoint_sha256: the sha256 of the sampler's weights.
        scorer: the task's scorer.
        penalty: the score of a molecule that cannot be scored (the scorer's).
    """

    scoring = SCORING

    def __init__(
        self,
        task: MoleculeTask,
        sampler: FixedSizeSampler,
        checkpoint_sha256: str,
        scorer: Scorer,
        name: str | None = None,
    ) -> None:
        self.task = task
        self.sampler = sampler
        self.checkpoint_sha256 = checkpoint_sha256
        self.scorer = scorer
        self.penalty = scorer.penalty
        self.name = task.name if name is None else name
        self.dim = sampler.dim
        self.n_steps = sampler.n_injections
        self.cost = SteeringCost()

    @classmethod
    def load(
        cls,
        task: MoleculeTask,
        n_atoms: AtomCount,
        sampler_steps: int,
        models_dir: str | os.PathLike[str] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        predictor: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        sampler_dtype: str = DEFAULT_SAMPLER_DTYPE,
        expected_sha256: str | None = None,
    ) -> MoleculeProblem:
        """The task on the stored models, loaded once per process and folder.

        Args:
            task: the task.
            n_atoms: n, the molecule size, or ``"qm9"``: each rollout's size drawn from the
                checkpoint's atom-count histogram (QM9's generative split).
            sampler_steps: S, the sampler's reverse steps.
            models_dir: the folder of the model folders (default ``models``).
            checkpoint: the EDM folder (default: ``edm_qm9_heavy`` in ``models_dir``).
            predictor: the property predictor folder (default: ``property_predictor`` in
                ``models_dir``); read by predictor tasks only.
            device: ``cpu``, ``cuda`` or ``auto``.
            sampler_dtype: ``"float32"`` or ``"float64"``, the precision of the reverse
                chain (module docstring); the problem reports it as :attr:`sampler_dtype`.
            expected_sha256: the sha256 of ``sampling.pt`` the caller was planned for (the
                workflow passes the stored manifest's, so a replaced model reruns its jobs
                instead of mixing checkpoints); None accepts the folder's.

        Raises:
            ProblemError: a folder is missing or does not match its manifest, it holds
                another checkpoint than ``expected_sha256``, the device does not exist,
                the sampler cannot take ``sampler_steps``, or an unknown ``sampler_dtype``.
        """
        if sampler_dtype not in SAMPLER_DTYPES:
            raise ProblemError(
                f"{task.name}: the sampler runs in {' or '.join(SAMPLER_DTYPES)}; got "
                f"sampler_dtype={sampler_dtype!r}"
            )
        torch_device = str(resolve_device(device, task.name, ProblemError))
        checkpoint = edm_folder(models_dir) if checkpoint is None else checkpoint
        predictor = predictor_folder(models_dir) if predictor is None else predictor
        directory = str(Path(checkpoint).resolve())
        model, sha256 = _sampling_model(directory, torch_device)
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise ProblemError(
                f"{task.name}: the EDM checkpoint in {directory} has sampling.pt sha256 "
                f"{sha256}, not the {expected_sha256} this job was planned for; the model "
                "was replaced: run the workflow again (it plans the jobs for the new model) "
                f"or give --checkpoint-sha256 {sha256}"
            )
        diffusion = _sampling_diffusion(directory, torch_device, sampler_dtype)
        if sampler_steps > model.diffusion.timesteps:
            raise ProblemError(
                f"{task.name}: the sampler has T = {model.diffusion.timesteps} steps; ask for "
                f"S <= {model.diffusion.timesteps} (n_steps <= {model.diffusion.timesteps + 2})"
            )
        sampler = (
            DrawnSizeSampler(diffusion, model.atom_count_histogram, sampler_steps)
            if n_atoms == DRAWN_SIZE
            else FixedSizeSampler(diffusion, int(n_atoms), sampler_steps)
        )
        scorer = SCORERS[task.kind].load(task, Path(predictor).resolve(), torch_device)
        return cls(task, sampler, sha256, scorer, problem_name(task.name, n_atoms))

    @property
    def sampler_dtype(self) -> str:
        """The name of the precision the sampler runs in (a key of :data:`SAMPLER_DTYPES`)."""
        return str(self.sampler.dtype).removeprefix("torch.")

    def rollout(self, noise: FloatArray) -> FloatArray:
        """Step losses of a ``B x K x d`` batch: zero but the last column, ``-score``."""
        return self.rollout_details(noise)[0]

    def rollout_details(self, noise: FloatArray) -> tuple[FloatArray, RolloutDetails]:
        """Step losses and the per-rollout details of the module docstring's table."""
        noise = self.check_noise(noise)
        samples = self.sampler(noise)
        self.cost.calls += len(noise)
        self.cost.denoiser_evals += len(noise) * self.forward_passes_per_rollout
        return self._details(samples)

    # --- the stepwise interface (module docstring) -------------------------------------------

    @property
    def forward_passes_per_rollout(self) -> int:
        """Denoiser evaluations of one rollout: ``S + 1`` (S transitions and ``p(x | z_0)``)."""
        return int(self.sampler.schedule.n_steps) + 1

    @functools.cached_property
    def _chains(self) -> StepwiseChains:
        return StepwiseChains(self.sampler)

    @property
    def n_transitions(self) -> int:
        """S, the reverse transitions between :meth:`start` and :meth:`finish`."""
        return self._chains.n_transitions

    def _counted(self, before: int) -> None:
        self.cost.denoiser_evals += self._chains.forward_passes - before

    def start(self, n: int, rng: np.random.Generator) -> MoleculeHandles:
        """n chains at ``z_T``, their initial latents ``n x d`` draws of N(0, I) from ``rng``
        (with drawn sizes each latent also sets its chain's number of atoms, as in a rollout)."""
        latent = rng.standard_normal((n, self.dim))
        return MoleculeHandles(self._chains.start(latent))

    def step(self, handles: MoleculeHandles, noise: FloatArray) -> MoleculeHandles:
        """One reverse transition of every chain with its noise (``n x d``)."""
        before = self._chains.forward_passes
        chains = self._chains.step(handles.chains, np.asarray(noise, dtype=np.float64))
        self._counted(before)
        return MoleculeHandles(chains)

    def select(
        self, handles: MoleculeHandles, index: Sequence[int] | NDArray[Any]
    ) -> MoleculeHandles:
        """The chains ``index`` (repeats allowed), as they are: nothing is replayed (a chain
        picked twice has its denoiser prediction computed once, before it is copied)."""
        before = self._chains.forward_passes
        chains = self._chains.select(handles.chains, index)
        self._counted(before)
        return MoleculeHandles(chains)

    def score_x0(self, handles: MoleculeHandles) -> tuple[MoleculeHandles, FloatArray]:
        """The task score of each chain's ``x0_hat`` (one black-box call each) and the
        handles with their denoiser predictions kept (so the next step reuses them)."""
        before = self._chains.forward_passes
        chains, samples = self._chains.predicted_clean(handles.chains)
        self._counted(before)
        self.cost.calls += len(chains)
        positions, atom_types = _arrays(samples)
        scores, _ = self._score(rebuild_batch(positions, atom_types), positions, atom_types)
        return MoleculeHandles(chains), scores

    def finish(
        self, handles: MoleculeHandles, noise: FloatArray
    ) -> tuple[FloatArray, RolloutDetails]:
        """The completed molecules of chains at ``z_0`` with their final noise (``n x d``),
        scored like :meth:`rollout_details` (one call each)."""
        before = self._chains.forward_passes
        final = np.asarray(noise, dtype=np.float64) if self.sampler.schedule.final_noise else None
        samples = self._chains.finish(handles.chains, final)
        self._counted(before)
        self.cost.calls += len(handles.chains)
        return self._details(samples)

    def _details(self, samples: MoleculeSamples) -> tuple[FloatArray, RolloutDetails]:
        """Step losses and details of sampled molecules (:meth:`rollout_details`)."""
        positions, atom_types = _arrays(samples)
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
            "n_atoms": samples.num_atoms.detach().cpu().numpy().astype(np.int64),
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
        scorable = np.array([m.ok and m.n_fragments == 1 for m in rebuilt], dtype=bool)
        values = self.scorer.values(SampledMolecules(positions, atom_types, rebuilt, scorable))
        scored = np.isfinite(values)
        return np.where(scored, self.scorer.scores(values), self.penalty), values


def _arrays(samples: MoleculeSamples) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """``B x n x 3`` positions (float64) and ``B x n`` atom types of ``samples``."""
    positions = samples.positions.detach().cpu().double().numpy()
    return positions, samples.atom_types.detach().cpu().numpy()


def _molecule_stable(molecule: RebuiltMolecule) -> bool:
    stable = stable_atoms(molecule)
    return bool(len(stable) and stable.all())
