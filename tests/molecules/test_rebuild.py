"""Tests of casbo_bench.molecules.rebuild: real QM9 geometries, hand-made cases, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from casbo_bench.molecules.data import MoleculeDataset, load_dataset
from casbo_bench.molecules.rebuild import (
    RebuiltMolecule,
    canonical_smiles,
    distance_bond_orders,
    maximum_weight_matching,
    rebuild_batch,
    rebuild_molecule,
    repair_valences,
)
from tests.molecules.structures import CARBON, FLUORINE, NITROGEN, OXYGEN, SUBSET


@pytest.fixture(scope="module")
def subset() -> MoleculeDataset:
    return load_dataset(SUBSET)


@pytest.fixture(scope="module")
def rebuilt(subset: MoleculeDataset) -> list[RebuiltMolecule]:
    return rebuild_batch(subset.positions, subset.atom_types)


def _agreement(subset: MoleculeDataset, rebuilt: list[RebuiltMolecule]) -> float:
    expected = [canonical_smiles(str(smiles)) for smiles in subset.smiles]
    return float(np.mean([m.ok and m.smiles == e for m, e in zip(rebuilt, expected, strict=True)]))


def test_real_qm9_geometries_sanitize(rebuilt: list[RebuiltMolecule]) -> None:
    assert len(rebuilt) == 1000
    assert np.mean([molecule.ok for molecule in rebuilt]) >= 0.97


def test_real_qm9_geometries_give_qm9_smiles(
    subset: MoleculeDataset, rebuilt: list[RebuiltMolecule]
) -> None:
    assert _agreement(subset, rebuilt) >= 0.95


def test_double_bond_matching_reads_more_molecules_right(
    subset: MoleculeDataset, rebuilt: list[RebuiltMolecule]
) -> None:
    plain = [
        rebuild_molecule(positions, types, conjugate=False)
        for positions, types in zip(subset.positions, subset.atom_types, strict=True)
    ]
    assert _agreement(subset, rebuilt) > _agreement(subset, plain)


def test_rebuild_ignores_rotation_translation_and_padding(subset: MoleculeDataset) -> None:
    rng = np.random.default_rng(3)
    for row in range(20):
        positions, types = subset.positions[row], subset.atom_types[row]
        real = types >= 0
        moved = Rotation.random(random_state=rng).apply(positions[real]) + rng.normal(size=3)
        expected = rebuild_molecule(positions, types)
        assert rebuild_molecule(moved, types[real]).smiles == expected.smiles


def _linear(types: list[int], spacing: float) -> RebuiltMolecule:
    positions = np.zeros((len(types), 3))
    positions[:, 0] = spacing * np.arange(len(types))
    return rebuild_molecule(positions, types)


@pytest.mark.parametrize(
    ("types", "spacing", "smiles"),
    [
        ([CARBON, OXYGEN], 1.21, "C=O"),
        ([CARBON, CARBON], 1.54, "CC"),
        ([CARBON, CARBON], 1.34, "C=C"),
        ([CARBON, CARBON], 1.20, "C#C"),
        ([CARBON, NITROGEN], 1.16, "C#N"),
        ([OXYGEN, CARBON, OXYGEN], 1.16, "O=C=O"),
        ([CARBON, FLUORINE], 1.35, "CF"),
        ([CARBON, CARBON], 2.50, "C.C"),
    ],
)
def test_small_molecules_from_bond_lengths(types: list[int], spacing: float, smiles: str) -> None:
    molecule = _linear(types, spacing)
    assert molecule.ok, molecule.reason
    assert molecule.smiles == smiles


def _ring(types: list[int], bond_length: float) -> NDArray[np.float64]:
    """A regular planar ring of ``len(types)`` atoms with the given bond length."""
    angles = 2 * np.pi * np.arange(len(types)) / len(types)
    radius = bond_length / (2 * np.sin(np.pi / len(types)))
    return np.stack([radius * np.cos(angles), radius * np.sin(angles), 0 * angles], axis=1)


def test_benzene_gets_a_kekule_structure() -> None:
    # Aromatic C-C bonds (1.395 A) lie between the single and double references: the distance
    # table alone gives no double bond (cyclohexane), the matching gives three.
    positions = _ring([CARBON] * 6, 1.395)
    assert rebuild_molecule(positions, [CARBON] * 6, conjugate=False).smiles == "C1CCCCC1"
    molecule = rebuild_molecule(positions, [CARBON] * 6)
    assert molecule.ok, molecule.reason
    assert molecule.smiles == "c1ccccc1"


@pytest.mark.parametrize(
    ("types", "smiles"),
    [
        ([NITROGEN] + [CARBON] * 5, "c1ccncc1"),
        ([NITROGEN, CARBON, NITROGEN] + [CARBON] * 3, "c1cncnc1"),
        ([NITROGEN, CARBON, CARBON, NITROGEN, CARBON, CARBON], "c1cnccn1"),
    ],
)
def test_azines_get_a_kekule_structure(types: list[int], smiles: str) -> None:
    # A regular hexagon of 1.37 A sides, between pyridine's C-C (1.39) and C-N (1.34).
    molecule = rebuild_molecule(_ring(types, 1.37), types)
    assert molecule.ok, molecule.reason
    assert molecule.smiles == smiles


def test_bent_atom_with_two_table_double_bonds_keeps_one() -> None:
    # Three carbons at 1.33 A and 120 degrees: the table makes both bonds double (a bent
    # allene); the middle atom is not linear, so only one double bond stays.
    positions = np.array([[0.0, 0.0, 0.0], [1.33, 0.0, 0.0], [1.995, 1.152, 0.0]])
    orders = distance_bond_orders(positions, np.array([CARBON, CARBON, CARBON]))
    assert orders[0, 1] == orders[1, 2] == 2
    molecule = rebuild_molecule(positions, [CARBON, CARBON, CARBON])
    assert molecule.smiles == "C=CC"


def test_valence_repair_lowers_the_most_stretched_multiple_bond_first() -> None:
    # A carbon with three double-bond-length neighbours (order sum 6 > 4) at 120 degrees:
    # O at 1.20 A (C=O reference 1.20: stretch 0), O at 1.21 A (stretch 1 pm) and C at
    # 1.36 A (C=C reference 1.34: stretch 2 pm). The C=C goes first, then the longer C=O.
    types = np.array([CARBON, OXYGEN, OXYGEN, CARBON])
    angles = np.radians([0.0, 120.0, 240.0])
    lengths = np.array([1.20, 1.21, 1.36])
    positions = np.vstack(
        [
            [0.0, 0.0, 0.0],
            np.stack([np.cos(angles), np.sin(angles), 0 * angles], 1) * lengths[:, None],
        ]
    )
    orders = distance_bond_orders(positions, types)
    assert orders[0].tolist() == [0, 2, 2, 2]
    repaired, reason = repair_valences(orders, positions, types)
    assert reason == ""
    assert repaired[0].tolist() == [0, 2, 1, 1]
    assert np.array_equal(repaired, repaired.T)
    assert rebuild_molecule(positions, types).smiles == "CC(=O)O"


def test_overbonded_atom_is_a_failure_with_a_reason() -> None:
    # A carbon with five single-bond neighbours at 1.5 A.
    directions = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    positions = np.vstack([[0.0, 0.0, 0.0], 1.5 * directions])
    molecule = rebuild_molecule(positions, [CARBON] * 6)
    assert not molecule.ok
    assert molecule.mol is None and molecule.smiles is None
    assert "atom 0 (C)" in molecule.reason and "valence is 4" in molecule.reason
    assert not molecule.table_sanitizes


def test_fluorine_with_two_neighbours_is_a_failure() -> None:
    positions = np.array([[0.0, 0.0, 0.0], [1.35, 0.0, 0.0], [-1.35, 0.0, 0.0]])
    molecule = rebuild_molecule(positions, [FLUORINE, CARBON, CARBON])
    assert not molecule.ok
    assert "(F)" in molecule.reason


def test_atoms_on_top_of_each_other_are_a_clash() -> None:
    molecule = rebuild_molecule(
        [[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [1.5, 0.0, 0.0]], [CARBON, CARBON, CARBON]
    )
    assert not molecule.ok
    assert "clash" in molecule.reason
    assert molecule.n_atoms == 3


@pytest.mark.parametrize(
    ("positions", "types", "fragment"),
    [
        ([[0.0, 0.0, np.nan]], [CARBON], "non-finite"),
        ([[0.0, 0.0, 0.0]], [7], "must index"),
        ([[0.0, 0.0, 0.0]], [-1], "no atoms"),
        ([[0.0, 0.0]], [CARBON], "n x 3"),
        ([[0.0, 0.0, 0.0]], [0.5], "integer"),
        ("not coordinates", [CARBON], "numeric"),
    ],
)
def test_bad_input_gives_a_reason_not_an_exception(
    positions: object, types: object, fragment: str
) -> None:
    molecule = rebuild_molecule(positions, types)
    assert not molecule.ok
    assert fragment in molecule.reason


def test_random_structures_never_raise() -> None:
    rng = np.random.default_rng(0)
    outcomes = []
    for _ in range(300):
        n = int(rng.integers(1, 10))
        positions = rng.normal(scale=float(rng.uniform(0.3, 2.0)), size=(n, 3))
        types = rng.integers(-1, 4, size=n)
        outcomes.append(rebuild_molecule(positions, types))
    assert all(isinstance(outcome, RebuiltMolecule) for outcome in outcomes)
    assert any(outcome.ok for outcome in outcomes)
    assert any(not outcome.ok for outcome in outcomes)
    assert all(outcome.reason for outcome in outcomes if not outcome.ok)


def test_rebuild_batch_rejects_arrays_that_are_not_a_batch() -> None:
    with pytest.raises(ValueError, match="B x N x 3"):
        rebuild_batch(np.zeros((2, 9, 3)), np.zeros((2, 8), dtype=int))


def test_maximum_weight_matching_against_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(2, 8))
        pairs = [pair for pair in itertools.combinations(range(n), 2) if rng.random() < 0.5]
        edges = [(i, j, float(rng.uniform(0.5, 1.2))) for i, j in pairs]
        best = 0.0
        for size in range(len(edges) + 1):
            for chosen in itertools.combinations(edges, size):
                atoms = [atom for i, j, _ in chosen for atom in (i, j)]
                if len(atoms) == len(set(atoms)):
                    best = max(best, sum(weight for _, _, weight in chosen))
        matching = maximum_weight_matching(edges)
        atoms = [atom for pair in matching for atom in pair]
        assert len(atoms) == len(set(atoms))
        weights = {(i, j): weight for i, j, weight in edges}
        assert sum(weights[pair] for pair in matching) == pytest.approx(best)


def test_canonical_smiles_drops_hydrogens_and_stereo() -> None:
    assert canonical_smiles("OCC") == canonical_smiles("C(O)C") == "CCO"
    assert canonical_smiles("C[C@H](O)F") == "CC(O)F"
    assert canonical_smiles("[H]OC([H])([H])[H]") == "CO"
    assert canonical_smiles("not a smiles") is None
