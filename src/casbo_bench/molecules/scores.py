"""Black-box scores of a rebuilt molecule: RDKit's QED and GFN2-xTB dipole and HOMO-LUMO gap.

Both scores read a molecule rebuilt from heavy atoms by
:func:`casbo_bench.molecules.rebuild.rebuild_molecule`; neither ever raises on a broken one.

**QED** (RDKit's quantitative estimate of drug-likeness, in (0, 1], larger is better) of the
sanitized molecule with implicit hydrogens. A structure that cannot be sanitized scores
``QED_PENALTY = 0.0``, the infimum of QED, so no broken structure outscores a valid one;
:class:`QedScores` counts them.

**GFN2-xTB** (semi-empirical tight binding, through the PyPI package ``tblite``), a physics
check that a learned property predictor cannot bias:

1. hydrogens are added by RDKit with coordinates (``AddHs(addCoords=True)``), heavy atoms kept
   where they are;
2. the hydrogens alone are relaxed by a force field (MMFF94, UFF where MMFF has no
   parameters) for at most ``relax_iterations`` steps, heavy atoms fixed;
3. a GFN2-xTB single point on the neutral closed-shell molecule gives the dipole moment
   ``|mu|`` (Debye) and the HOMO-LUMO gap ``e_LUMO - e_HOMO`` (eV).

The heavy-atom geometry is the molecule's own (generated, or QM9's DFT one): it is not
re-optimized, so the scores are those of the structure the sampler produced. xTB is defined
only for a sanitized molecule; a broken one (or an SCF failure) gives ``ok=False``, NaN
values and the reason, and the caller decides its penalty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rdkit import Chem
from rdkit.Chem import QED, rdForceFieldHelpers
from rdkit.rdBase import BlockLogs

from casbo_bench.molecules.data import HARTREE_TO_EV
from casbo_bench.molecules.rebuild import RebuiltMolecule

QED_PENALTY = 0.0
# CODATA 2018: the Bohr radius in Angstrom, and the atomic unit of dipole (e a_0) in Debye.
BOHR_IN_ANGSTROM = 0.529177210903
AU_DIPOLE_IN_DEBYE = 2.541746473


def qed_score(rebuilt: RebuiltMolecule) -> float:
    """QED of a rebuilt molecule, or ``QED_PENALTY`` when it could not be sanitized."""
    if not rebuilt.ok or rebuilt.mol is None:
        return QED_PENALTY
    with BlockLogs():
        try:
            return float(QED.qed(rebuilt.mol))
        except Exception:  # RDKit descriptor failures have no common exception type.
            return QED_PENALTY


@dataclass(frozen=True)
class QedScores:
    """QED of a batch of molecules.

    Attributes:
        values: a ``B`` float array, ``QED_PENALTY`` for unsanitizable structures.
        penalized: a ``B`` boolean array, true where the penalty was given.
    """

    values: NDArray[np.float64]
    penalized: NDArray[np.bool_]

    @property
    def n_penalized(self) -> int:
        """How many structures got the penalty."""
        return int(self.penalized.sum())

    @property
    def penalized_fraction(self) -> float:
        """The fraction of structures that got the penalty (NaN for an empty batch)."""
        return float(self.penalized.mean()) if len(self.penalized) else float("nan")


def qed_scores(rebuilt: Sequence[RebuiltMolecule]) -> QedScores:
    """:func:`qed_score` of every molecule, with the penalized ones marked."""
    penalized = np.array([not molecule.ok for molecule in rebuilt], dtype=bool)
    values = np.array([qed_score(molecule) for molecule in rebuilt], dtype=np.float64)
    return QedScores(values=values, penalized=penalized)


@dataclass(frozen=True)
class XtbResult:
    """GFN2-xTB properties of one molecule (module docstring).

    Attributes:
        ok: whether the calculation ran and converged.
        reason: empty when ``ok``; else one line saying what failed.
        dipole_debye: ``|mu|`` in Debye (NaN unless ``ok``).
        gap_ev: the HOMO-LUMO gap in eV (NaN unless ``ok``).
        energy_hartree: the total energy in Hartree (NaN unless ``ok``).
        hydrogen_seconds: wall time of adding and relaxing the hydrogens.
        xtb_seconds: wall time of the xTB single point.
        n_atoms: atoms in the calculation, hydrogens included (0 if it was not reached).
    """

    ok: bool
    reason: str
    dipole_debye: float = float("nan")
    gap_ev: float = float("nan")
    energy_hartree: float = float("nan")
    hydrogen_seconds: float = 0.0
    xtb_seconds: float = 0.0
    n_atoms: int = 0


def add_hydrogens(mol: Chem.Mol, relax_iterations: int = 200) -> Chem.Mol:
    """The molecule with explicit hydrogens placed in 3D, heavy atoms unmoved.

    Hydrogens get RDKit's idealized positions, then a force-field minimization (MMFF94, or UFF
    where MMFF has no parameters) moves the hydrogens only, for at most
    ``relax_iterations`` steps.

    Args:
        mol: a sanitized molecule with one conformer (Angstrom), hydrogens implicit.
        relax_iterations: the minimizer's step limit; 0 skips the relaxation.

    Raises:
        ValueError: the molecule has no conformer.
    """
    if mol.GetNumConformers() == 0:
        raise ValueError("the molecule has no 3D conformer; rebuild it from coordinates")
    with_hydrogens = Chem.AddHs(mol, addCoords=True)
    if relax_iterations <= 0 or with_hydrogens.GetNumAtoms() == mol.GetNumAtoms():
        return with_hydrogens
    with BlockLogs():
        properties = rdForceFieldHelpers.MMFFGetMoleculeProperties(with_hydrogens)
        if properties is not None:
            force_field = rdForceFieldHelpers.MMFFGetMoleculeForceField(with_hydrogens, properties)
        else:
            force_field = rdForceFieldHelpers.UFFGetMoleculeForceField(with_hydrogens)
    if force_field is None:
        return with_hydrogens
    for atom in with_hydrogens.GetAtoms():
        if atom.GetAtomicNum() != 1:
            force_field.AddFixedPoint(atom.GetIdx())
    force_field.Initialize()
    force_field.Minimize(maxIts=relax_iterations)
    return with_hydrogens


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else repr(error)


def _homo_lumo_gap(energies: NDArray[Any], occupations: NDArray[Any]) -> float:
    """``e_LUMO - e_HOMO`` (Hartree) of a closed shell from orbital energies and occupations.

    With ``N`` electrons (the occupations' sum), the HOMO is orbital ``N / 2 - 1`` in energy
    order; the Fermi smearing of the occupations does not move that index.
    """
    order = np.argsort(energies)
    n_occupied = round(float(np.sum(occupations)) / 2.0)
    if not 0 < n_occupied < len(energies):
        return float("nan")
    return float(energies[order[n_occupied]] - energies[order[n_occupied - 1]])


def xtb_properties(
    rebuilt: RebuiltMolecule, relax_iterations: int = 200, accuracy: float = 1.0
) -> XtbResult:
    """GFN2-xTB dipole and HOMO-LUMO gap of a rebuilt molecule (module docstring).

    Args:
        rebuilt: the molecule; a failed rebuild gives ``ok=False`` without a calculation.
        relax_iterations: force-field steps for the hydrogens (:func:`add_hydrogens`).
        accuracy: tblite's numerical accuracy (1.0 is its default).

    Returns:
        The properties and the wall times of both stages; never raises.
    """
    if not rebuilt.ok or rebuilt.mol is None:
        return XtbResult(ok=False, reason=f"not a valid molecule: {rebuilt.reason}")
    from tblite.interface import Calculator

    start = time.perf_counter()
    try:
        with_hydrogens = add_hydrogens(rebuilt.mol, relax_iterations)
    except Exception as error:  # RDKit force-field set-up raises assorted types.
        return XtbResult(ok=False, reason=f"adding hydrogens failed: {_first_line(error)}")
    hydrogen_seconds = time.perf_counter() - start
    numbers = np.array([atom.GetAtomicNum() for atom in with_hydrogens.GetAtoms()])
    positions = with_hydrogens.GetConformer().GetPositions() / BOHR_IN_ANGSTROM
    electrons = int(numbers.sum())
    start = time.perf_counter()
    try:
        calculator = Calculator("GFN2-xTB", numbers, positions, charge=0.0, uhf=electrons % 2)
        calculator.set("verbosity", 0)
        calculator.set("accuracy", accuracy)
        result = calculator.singlepoint()
        dipole = np.asarray(result.get("dipole"), dtype=np.float64)
        gap = _homo_lumo_gap(
            np.asarray(result.get("orbital-energies")),
            np.asarray(result.get("orbital-occupations")),
        )
        energy = float(result.get("energy"))
    except Exception as error:  # tblite raises its own error types (SCF, input).
        return XtbResult(
            ok=False,
            reason=f"GFN2-xTB failed: {_first_line(error)}",
            hydrogen_seconds=hydrogen_seconds,
            xtb_seconds=time.perf_counter() - start,
            n_atoms=len(numbers),
        )
    xtb_seconds = time.perf_counter() - start
    values = (float(np.linalg.norm(dipole)) * AU_DIPOLE_IN_DEBYE, gap * HARTREE_TO_EV, energy)
    if not np.isfinite(values).all():
        return XtbResult(
            ok=False,
            reason=f"GFN2-xTB gave non-finite results {values}",
            hydrogen_seconds=hydrogen_seconds,
            xtb_seconds=xtb_seconds,
            n_atoms=len(numbers),
        )
    return XtbResult(
        ok=True,
        reason="",
        dipole_debye=values[0],
        gap_ev=values[1],
        energy_hartree=values[2],
        hydrogen_seconds=hydrogen_seconds,
        xtb_seconds=xtb_seconds,
        n_atoms=len(numbers),
    )
