"""Quality metrics of heavy-atom molecules: stability, validity, uniqueness, novelty.

Each metric is computed from the molecules rebuilt by :mod:`casbo_bench.molecules.rebuild`.
For B molecules, of which ``V`` are valid and ``U`` distinct among the valid ones:

- **atom stability**: the fraction of atoms, over all B molecules, that are stable. An atom
  is stable when the sum of its distance-table bond orders (EDM's table, before any valence
  repair) is at most the valence of its element (C 4, N 3, O 2, F 1): the remainder is
  taken by implicit hydrogens. An atom in a structure that could not be read (non-finite
  coordinates) is unstable.
- **molecule stability**: the fraction of molecules whose atoms are all stable.
- **validity**: ``V / B``, the fraction that RDKit sanitizes after the rebuild (valence
  repair, double bonds, implicit hydrogens); **connected validity** also asks for one
  fragment. **Table validity** is EDM's stricter rule: the distance-table orders as they
  are, without repair or double-bond matching, must sanitize.
- **uniqueness**: ``U / V``, distinct canonical SMILES among the valid molecules.
- **novelty**: the fraction of the ``U`` distinct SMILES that are not in a reference set (the
  canonical SMILES of the training split).

EDM's stability counts explicit hydrogens: an atom is stable when its bond-order sum,
hydrogens included, *equals* an allowed valence, so a missing or extra hydrogen is caught.
Without hydrogens, an atom short of bonds is read as carrying more implicit hydrogens, so only
over-bonded atoms are unstable. Heavy-atom stability is therefore a weaker test than EDM's,
and the two sets of numbers are not comparable like for like.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.molecules.data import MoleculeDataset
from casbo_bench.molecules.rebuild import (
    VALENCE_BY_TYPE,
    RebuiltMolecule,
    canonical_smiles,
    canonical_smiles_set,
    rebuild_molecule,
)

# EDM's published QM9 figures (Hoogeboom et al. 2022, Table 1), WITH explicit hydrogens:
# not comparable like for like with the heavy-atom metrics of this module.
EDM_PUBLISHED_WITH_HYDROGENS: dict[str, float] = {
    "atom_stability": 0.987,
    "molecule_stability": 0.820,
    "validity": 0.919,
}


def stable_atoms(rebuilt: RebuiltMolecule) -> NDArray[np.bool_]:
    """A ``n`` boolean array: which atoms have a table bond-order sum within their valence."""
    if rebuilt.table_orders is None:
        return np.zeros(rebuilt.n_atoms, dtype=bool)
    order_sums = rebuilt.table_orders.sum(axis=1)
    return np.asarray(order_sums <= VALENCE_BY_TYPE[rebuilt.atom_types], dtype=bool)


@dataclass(frozen=True)
class QualityReport:
    """Quality metrics of a set of molecules (module docstring for the definitions).

    Fractions are NaN when their denominator is zero (no atoms, no valid molecules).
    """

    n_molecules: int
    n_atoms: int
    n_stable_atoms: int
    n_stable_molecules: int
    n_valid: int
    n_valid_connected: int
    n_valid_table: int
    n_unique: int
    n_novel: int
    atom_stability: float
    molecule_stability: float
    validity: float
    validity_connected: float
    validity_table: float
    uniqueness: float
    novelty: float

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (NaN becomes None)."""
        return {
            key: (None if isinstance(value, float) and np.isnan(value) else value)
            for key, value in asdict(self).items()
        }


def _fraction(count: int, total: int) -> float:
    return count / total if total > 0 else float("nan")


def quality_report(
    rebuilt: Sequence[RebuiltMolecule], reference_smiles: Iterable[str] | None = None
) -> QualityReport:
    """Stability, validity, uniqueness and novelty of rebuilt molecules.

    Args:
        rebuilt: the molecules, as :func:`~casbo_bench.molecules.rebuild.rebuild_molecule`
            returns them.
        reference_smiles: canonical SMILES novelty is measured against (the training split's,
            from :func:`training_smiles`); None leaves novelty NaN.

    >>> from casbo_bench.molecules.rebuild import rebuild_molecule
    >>> formaldehyde = rebuild_molecule([[0.0, 0.0, 0.0], [1.21, 0.0, 0.0]], [0, 2])
    >>> quality_report([formaldehyde, formaldehyde], {"C=O"}).uniqueness
    0.5
    """
    stability = [stable_atoms(molecule) for molecule in rebuilt]
    valid_smiles = [molecule.smiles for molecule in rebuilt if molecule.ok and molecule.smiles]
    unique = set(valid_smiles)
    n_atoms = sum(len(flags) for flags in stability)
    n_stable_atoms = sum(int(flags.sum()) for flags in stability)
    n_stable_molecules = sum(bool(len(flags) and flags.all()) for flags in stability)
    n_connected = sum(molecule.ok and molecule.n_fragments == 1 for molecule in rebuilt)
    n_valid_table = sum(molecule.table_sanitizes for molecule in rebuilt)
    if reference_smiles is None:
        n_novel, novelty = 0, float("nan")
    else:
        reference = frozenset(reference_smiles)
        n_novel = len(unique - reference)
        novelty = _fraction(n_novel, len(unique))
    n = len(rebuilt)
    return QualityReport(
        n_molecules=n,
        n_atoms=n_atoms,
        n_stable_atoms=n_stable_atoms,
        n_stable_molecules=n_stable_molecules,
        n_valid=len(valid_smiles),
        n_valid_connected=n_connected,
        n_valid_table=n_valid_table,
        n_unique=len(unique),
        n_novel=n_novel,
        atom_stability=_fraction(n_stable_atoms, n_atoms),
        molecule_stability=_fraction(n_stable_molecules, n),
        validity=_fraction(len(valid_smiles), n),
        validity_connected=_fraction(n_connected, n),
        validity_table=_fraction(n_valid_table, n),
        uniqueness=_fraction(len(unique), len(valid_smiles)),
        novelty=novelty,
    )


def training_smiles(dataset: MoleculeDataset, split: str = "generative") -> frozenset[str]:
    """Canonical SMILES (heavy atoms, no stereochemistry) of QM9's molecules in ``split``."""
    return canonical_smiles_set(dataset.subset(split).smiles.tolist())


def rebuild_dataset(dataset: MoleculeDataset) -> list[RebuiltMolecule]:
    """Rebuild every molecule of ``dataset`` from its heavy-atom geometry."""
    return [
        rebuild_molecule(positions, types)
        for positions, types in zip(dataset.positions, dataset.atom_types, strict=True)
    ]


def smiles_agreement(dataset: MoleculeDataset, rebuilt: Sequence[RebuiltMolecule]) -> float:
    """The fraction of molecules whose rebuilt SMILES equals QM9's (canonicalized alike)."""
    if len(rebuilt) != len(dataset):
        raise ValueError(
            f"{len(rebuilt)} rebuilt molecules for a dataset of {len(dataset)}; rebuild each"
        )
    matches = sum(
        molecule.ok and molecule.smiles == canonical_smiles(str(smiles))
        for molecule, smiles in zip(rebuilt, dataset.smiles, strict=True)
    )
    return _fraction(matches, len(rebuilt))
