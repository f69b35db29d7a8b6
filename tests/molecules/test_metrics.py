"""Tests of casbo_bench.molecules.metrics on hand-made molecules and real QM9 geometries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from casbo_bench.molecules.data import SPLIT_NAMES, load_dataset
from casbo_bench.molecules.metrics import (
    quality_report,
    rebuild_dataset,
    smiles_agreement,
    stable_atoms,
    training_smiles,
)
from casbo_bench.molecules.rebuild import RebuiltMolecule, canonical_smiles, rebuild_molecule
from tests.molecules.structures import CARBON, OXYGEN, SUBSET, chain


def _overbonded_carbon() -> RebuiltMolecule:
    directions = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    return rebuild_molecule(np.vstack([np.zeros(3), 1.5 * directions]), [CARBON] * 6)


def test_stable_atoms_follow_the_table_bond_order_sum() -> None:
    assert stable_atoms(chain([CARBON, OXYGEN], 1.21)).tolist() == [True, True]
    # The centre has five bonds: unstable; each neighbour has one: stable.
    assert stable_atoms(_overbonded_carbon()).tolist() == [False] + [True] * 5
    # Table orders before any repair: an O at double-bond distance from two carbons has an
    # order sum of 4 > 2.
    angle = np.radians(120.0)
    bent = 1.21 * np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [np.cos(angle), np.sin(angle), 0.0]])
    molecule = rebuild_molecule(bent, [OXYGEN, CARBON, CARBON])
    assert molecule.table_orders is not None
    assert molecule.table_orders[0].sum() == 4
    assert stable_atoms(molecule).tolist() == [False, True, True]
    # The valence repair lowers both bonds to single: a valid dimethyl ether. Stability
    # (table orders) and validity (repaired orders) measure different things.
    assert molecule.smiles == "COC"


def test_atoms_of_unreadable_structures_are_unstable() -> None:
    molecule = rebuild_molecule([[0.0, 0.0, np.nan], [1.5, 0.0, 0.0]], [CARBON, CARBON])
    assert not molecule.ok
    assert stable_atoms(molecule).tolist() == [False, False]


def test_quality_report_on_hand_made_molecules() -> None:
    formaldehyde = chain([CARBON, OXYGEN], 1.21)
    ethane = chain([CARBON, CARBON], 1.54)
    two_methanes = chain([CARBON, CARBON], 3.0)
    clash = rebuild_molecule([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]], [CARBON, CARBON])
    overbonded = _overbonded_carbon()
    molecules = [formaldehyde, formaldehyde, ethane, two_methanes, clash, overbonded]
    report = quality_report(molecules, reference_smiles={"C=O", "CCC"})
    assert report.n_molecules == 6
    assert report.n_valid == 4
    assert report.validity == pytest.approx(4 / 6)
    assert report.n_valid_connected == 3  # two methanes are two fragments
    assert report.n_unique == 3  # C=O, CC, C.C
    assert report.uniqueness == pytest.approx(3 / 4)
    assert report.n_novel == 2  # CC and C.C are not in the reference
    assert report.novelty == pytest.approx(2 / 3)
    # Atoms: 2 + 2 + 2 + 2 + 2 + 6. The clash pair's table order is 3 (a C-C "triple"), within
    # carbon's valence, so both clash atoms count as stable; the over-bonded centre does not.
    assert report.n_atoms == 16
    assert report.n_stable_atoms == 15
    assert report.atom_stability == pytest.approx(15 / 16)
    assert report.n_stable_molecules == 5
    assert report.molecule_stability == pytest.approx(5 / 6)
    # EDM's rule sanitizes the four readable molecules; the clash is sanitizable as C#C but
    # is rejected before RDKit, and the over-bonded carbon fails either way.
    assert report.n_valid_table == 4


def test_empty_report_has_undefined_fractions() -> None:
    report = quality_report([], reference_smiles=set())
    assert report.n_molecules == 0
    assert math.isnan(report.validity) and math.isnan(report.uniqueness)
    assert report.as_dict()["validity"] is None


def test_novelty_is_undefined_without_a_reference() -> None:
    report = quality_report([chain([CARBON, OXYGEN], 1.21)])
    assert math.isnan(report.novelty)
    assert report.validity == 1.0


def test_real_qm9_ceiling_on_the_subset() -> None:
    subset = load_dataset(SUBSET)
    rebuilt = rebuild_dataset(subset)
    reference = training_smiles(subset, "generative")
    generative = subset.subset("generative")
    assert len(reference) <= len(generative)
    assert canonical_smiles(str(generative.smiles[0])) in reference
    report = quality_report(rebuilt, reference)
    assert report.validity >= 0.97
    assert report.atom_stability >= 0.99
    assert report.uniqueness >= 0.99
    assert smiles_agreement(subset, rebuilt) >= 0.95
    # The generative split's own molecules are, by construction, not novel (bar the few whose
    # rebuilt SMILES differs from QM9's).
    generative_code = SPLIT_NAMES.index("generative")
    in_training = [
        m for m, split in zip(rebuilt, subset.split, strict=True) if split == generative_code
    ]
    assert quality_report(in_training, reference).novelty <= 0.05
