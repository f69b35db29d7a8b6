"""Inputs shared by the molecule tests: the committed QM9 subset and hand-made structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from casbo_bench.molecules.data import ATOM_SYMBOLS
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_molecule

SUBSET = Path(__file__).resolve().parents[1] / "data" / "qm9_subset.npz"
"""1,000 seeded QM9 molecules in the cached format (docs/molecules.md, "Test subset")."""

CARBON, NITROGEN, OXYGEN, FLUORINE = (ATOM_SYMBOLS.index(symbol) for symbol in "CNOF")


def chain(types: list[int], spacing: float) -> RebuiltMolecule:
    """Atoms of ``types`` on the x axis, ``spacing`` Angstrom apart, rebuilt."""
    positions = np.zeros((len(types), 3))
    positions[:, 0] = spacing * np.arange(len(types))
    return rebuild_molecule(positions, types)
