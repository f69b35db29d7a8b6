"""Tests of casbo_bench.molecules.scores: QED with its penalty, hydrogens, GFN2-xTB."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import QED

from casbo_bench.molecules.data import PROPERTY_NAMES, load_dataset
from casbo_bench.molecules.rebuild import RebuiltMolecule, canonical_smiles, rebuild_molecule
from casbo_bench.molecules.scores import (
    QED_PENALTY,
    add_hydrogens,
    qed_score,
    qed_scores,
    xtb_properties,
)
from tests.molecules.structures import CARBON, OXYGEN, SUBSET, chain


def _clash() -> RebuiltMolecule:
    return rebuild_molecule([[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [1.5, 0.0, 0.0]], [0, 0, 0])


def _overbonded() -> RebuiltMolecule:
    directions = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    return rebuild_molecule(np.vstack([np.zeros(3), 1.5 * directions]), [CARBON] * 6)


def test_qed_of_a_valid_molecule_is_rdkits() -> None:
    subset = load_dataset(SUBSET)
    molecule = rebuild_molecule(subset.positions[0], subset.atom_types[0])
    assert molecule.ok and molecule.smiles is not None
    expected = QED.qed(Chem.MolFromSmiles(molecule.smiles))
    assert qed_score(molecule) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < qed_score(molecule) <= 1.0


def test_unsanitizable_structures_get_the_penalty_and_are_counted() -> None:
    molecules = [chain([CARBON, OXYGEN], 1.21), _clash(), _overbonded()]
    scores = qed_scores(molecules)
    assert scores.penalized.tolist() == [False, True, True]
    assert scores.n_penalized == 2
    assert scores.penalized_fraction == pytest.approx(2 / 3)
    assert scores.values[1] == scores.values[2] == QED_PENALTY
    # The penalty is below every valid molecule's QED.
    assert scores.values[0] > QED_PENALTY


def test_hydrogens_are_added_without_moving_heavy_atoms() -> None:
    subset = load_dataset(SUBSET)
    molecule = rebuild_molecule(subset.positions[0], subset.atom_types[0])
    assert molecule.mol is not None
    heavy = molecule.mol.GetConformer().GetPositions()
    with_hydrogens = add_hydrogens(molecule.mol)
    positions = with_hydrogens.GetConformer().GetPositions()
    n_hydrogens = sum(atom.GetTotalNumHs() for atom in molecule.mol.GetAtoms())
    assert with_hydrogens.GetNumAtoms() == molecule.mol.GetNumAtoms() + n_hydrogens
    np.testing.assert_allclose(positions[: len(heavy)], heavy, atol=1e-6)
    for bond in with_hydrogens.GetBonds():
        if 1 in (bond.GetBeginAtom().GetAtomicNum(), bond.GetEndAtom().GetAtomicNum()):
            length = np.linalg.norm(
                positions[bond.GetBeginAtomIdx()] - positions[bond.GetEndAtomIdx()]
            )
            assert 0.9 < length < 1.2  # X-H bonds after the force-field relaxation


def test_xtb_dipole_of_water_and_formaldehyde() -> None:
    water = xtb_properties(rebuild_molecule([[0.0, 0.0, 0.0]], [OXYGEN]))
    assert water.ok, water.reason
    assert water.n_atoms == 3
    # Experimental gas-phase dipoles: water 1.85 D, formaldehyde 2.33 D. GFN2-xTB at
    # force-field hydrogen positions is expected within a few tenths of a Debye.
    assert abs(water.dipole_debye - 1.85) < 0.6
    formaldehyde = xtb_properties(chain([CARBON, OXYGEN], 1.21))
    assert formaldehyde.ok, formaldehyde.reason
    assert abs(formaldehyde.dipole_debye - 2.33) < 0.3
    for result in (water, formaldehyde):
        assert math.isfinite(result.gap_ev) and result.gap_ev > 0
        assert math.isfinite(result.energy_hartree) and result.energy_hartree < 0
        assert result.xtb_seconds > 0


def test_xtb_on_a_broken_structure_reports_instead_of_raising() -> None:
    result = xtb_properties(_overbonded())
    assert not result.ok
    assert "not a valid molecule" in result.reason
    assert math.isnan(result.dipole_debye) and math.isnan(result.gap_ev)


def test_xtb_agrees_with_qm9_dft_on_rigid_molecules() -> None:
    # QM9's hydrogens are not used (the heavy atoms are), so molecules with O-H or N-H
    # rotors, whose dipole depends on where the hydrogens point, are left out.
    subset = load_dataset(SUBSET)
    mu_column, gap_column = PROPERTY_NAMES.index("mu"), PROPERTY_NAMES.index("gap")
    xtb_mu, dft_mu, xtb_gap, dft_gap = [], [], [], []
    for row in range(len(subset)):
        molecule = rebuild_molecule(subset.positions[row], subset.atom_types[row])
        if molecule.mol is None or molecule.smiles != canonical_smiles(str(subset.smiles[row])):
            continue
        if any(a.GetSymbol() in "NO" and a.GetTotalNumHs() for a in molecule.mol.GetAtoms()):
            continue
        result = xtb_properties(molecule)
        assert result.ok, result.reason
        xtb_mu.append(result.dipole_debye)
        xtb_gap.append(result.gap_ev)
        dft_mu.append(float(subset.properties[row, mu_column]))
        dft_gap.append(float(subset.properties[row, gap_column]))
        if len(xtb_mu) == 60:
            break
    assert len(xtb_mu) == 60
    assert np.median(np.abs(np.subtract(xtb_mu, dft_mu))) < 0.6
    assert np.corrcoef(xtb_mu, dft_mu)[0, 1] > 0.8
    # GFN2-xTB gaps are offset from B3LYP's but follow them.
    assert np.corrcoef(xtb_gap, dft_gap)[0, 1] > 0.7
