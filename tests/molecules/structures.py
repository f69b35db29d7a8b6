"""Inputs shared by the molecule tests: the committed QM9 subset, the stored models and
hand-made structures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from casbo_bench.molecules.checkpoint import MANIFEST_FILE, SAMPLING_FILE, read_checkpoint
from casbo_bench.molecules.data import ATOM_SYMBOLS
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_molecule

ROOT = Path(__file__).resolve().parents[2]

SUBSET = ROOT / "tests" / "data" / "qm9_subset.npz"
"""1,000 seeded QM9 molecules in the cached format (docs/molecules.md, "Test subset")."""

CHECKPOINT = ROOT / "models" / "edm_qm9_heavy"
STORED_PREDICTOR = ROOT / "models" / "property_predictor"
"""The stored model folders."""

CARBON, NITROGEN, OXYGEN, FLUORINE = (ATOM_SYMBOLS.index(symbol) for symbol in "CNOF")


def chain(types: list[int], spacing: float) -> RebuiltMolecule:
    """Atoms of ``types`` on the x axis, ``spacing`` Angstrom apart, rebuilt."""
    positions = np.zeros((len(types), 3))
    positions[:, 0] = spacing * np.arange(len(types))
    return rebuild_molecule(positions, types)


def copy_checkpoint(target: Path) -> Path:
    """A copy of the stored EDM folder (manifest and sampling.pt) at ``target``."""
    checkpoint = read_checkpoint(CHECKPOINT)
    target.mkdir(parents=True)
    (target / MANIFEST_FILE).write_text(json.dumps(checkpoint.manifest))
    (target / SAMPLING_FILE).write_bytes(checkpoint.contents[SAMPLING_FILE])
    return target


def stepped_and_whole(chains: Any, sampler: Any, noise: Any) -> tuple[Any, Any]:
    """The molecules of ``noise`` (``B x (S + 2) x dim``) stepped one transition at a time
    through ``chains`` (:class:`~casbo_bench.molecules.diffusion.StepwiseChains`), and the
    same noise through ``sampler`` in one call, for the two to be compared."""
    batch = chains.start(noise[:, 0])
    for i in range(1, noise.shape[1] - 1):
        batch = chains.step(batch, noise[:, i])
    return chains.finish(batch, noise[:, -1]), sampler(noise)
