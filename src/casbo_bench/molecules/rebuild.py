"""Rebuilding an RDKit molecule from a heavy-atom 3D structure.

A generated (or QM9) molecule is a set of heavy atoms (C, N, O, F) with positions in
Angstrom and no hydrogens. The chemical graph is read from the geometry in five steps:

1. **Distance-table bond orders** (as in EDM's analysis). For atoms ``i, j`` of elements
   ``a, b`` at distance ``r`` (pm), with reference lengths ``r_1(a, b) > r_2(a, b) > r_3(a, b)``
   of the single, double and triple bond (``BOND_LENGTHS_PM``) and margins
   ``m = (10, 5, 3)`` pm::

       order(i, j) = 3 if r < r_3 + m_3,  2 if r < r_2 + m_2,  1 if r < r_1 + m_1,  else 0.

   Element pairs without a double (triple) bond in the table never get one. These orders
   are what atom stability is measured on (:mod:`casbo_bench.molecules.metrics`).
2. **Valence repair.** Every atom is neutral with the largest valence of its element
   (``MAX_VALENCE``: C 4, N 3, O 2, F 1). While an atom's bond-order sum exceeds it, the
   multiple bond at an over-valent atom that is least convincing, the one whose length
   ``r`` is furthest above the reference of its current order, loses one order. Single
   bonds are never removed: an atom with more neighbours than its valence is a failure.
3. **Double bonds as a matching** (:func:`assign_double_bonds`). Triple bonds and the double
   bonds of linear sp centres stay. Every other double bond is reconsidered: the double
   bonds become the matching of largest total double-bond character
   ``(r_1 - r) / (r_1 - r_2)`` among bonds of character >= 0.5 between atoms with spare
   valence. This reads the Kekule structures of aromatic rings, whose bond lengths lie
   between the single and double references; without it (``conjugate=False``) a ring
   often gets too few double bonds, or two at one bent atom (docs/molecules.md has the
   measured SMILES match rates of both).
4. **Implicit hydrogens.** Each atom keeps its remaining valence as implicit hydrogens.
5. **RDKit sanitization** (aromaticity, Kekule structures, valences) decides validity; the
   canonical SMILES is written without stereochemistry.

Charges are never assigned, so zwitterions and nitro groups (about 1% of QM9) are read as
neutral molecules with other SMILES; bonds longer than the table's single-bond limit (in
strained cages) are missed.

Atoms closer than ``CLASH_DISTANCE`` (0.9 Angstrom, below the shortest heavy-atom bond in the
table, N#N at 1.10) are a clash, not a bond, and make the structure invalid.

:func:`rebuild_molecule` never raises on bad input (wrong shapes, unknown types, non-finite
coordinates, clashes, over-bonded atoms, RDKit errors): it returns a
:class:`RebuiltMolecule` with ``ok=False`` and a one-line ``reason``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rdkit import Chem
from rdkit.rdBase import BlockLogs

from casbo_bench.molecules.atoms import ATOM_SYMBOLS, ATOMIC_NUMBERS

# Standard covalent bond lengths in pm (textbook averages over organic molecules): single,
# double, triple for each unordered pair of (C, N, O, F); None where the bond does not occur.
BOND_LENGTHS_PM: dict[tuple[str, str], tuple[float, float | None, float | None]] = {
    ("C", "C"): (154.0, 134.0, 120.0),
    ("C", "N"): (147.0, 129.0, 116.0),
    ("C", "O"): (143.0, 120.0, 113.0),
    ("C", "F"): (135.0, None, None),
    ("N", "N"): (145.0, 125.0, 110.0),
    ("N", "O"): (140.0, 121.0, None),
    ("N", "F"): (136.0, None, None),
    ("O", "O"): (148.0, 121.0, None),
    ("O", "F"): (142.0, None, None),
    ("F", "F"): (142.0, None, None),
}
# Tolerances above the reference length of single, double and triple bonds (pm).
BOND_MARGINS_PM: tuple[float, float, float] = (10.0, 5.0, 3.0)
MAX_VALENCE: dict[str, int] = {"C": 4, "N": 3, "O": 2, "F": 1}
CLASH_DISTANCE = 0.9  # Angstrom
# Least double-bond character (0 at the single, 1 at the double reference length) for a bond
# to take part in the double-bond matching (step 3): closer to the double than the single.
CONJUGATION_THRESHOLD = 0.5

_RDKIT_BOND_TYPES = {
    1: Chem.BondType.SINGLE,
    2: Chem.BondType.DOUBLE,
    3: Chem.BondType.TRIPLE,
}


def _reference_lengths() -> NDArray[np.float64]:
    """A ``4 x 4 x 3`` array of reference lengths (pm) by type index; NaN where absent."""
    table = np.full((len(ATOM_SYMBOLS), len(ATOM_SYMBOLS), 3), np.nan)
    for (first, second), lengths in BOND_LENGTHS_PM.items():
        values = [np.nan if length is None else length for length in lengths]
        i, j = ATOM_SYMBOLS.index(first), ATOM_SYMBOLS.index(second)
        table[i, j] = table[j, i] = values
    return table


REFERENCE_LENGTHS_PM = _reference_lengths()
VALENCE_BY_TYPE = np.array([MAX_VALENCE[symbol] for symbol in ATOM_SYMBOLS], dtype=np.int64)


@dataclass(frozen=True)
class RebuiltMolecule:
    """The outcome of rebuilding one heavy-atom structure.

    Attributes:
        ok: whether RDKit sanitized the molecule.
        reason: empty when ``ok``; else one line saying what failed.
        atom_types: a ``n`` int64 array of indices into (C, N, O, F) of the real atoms (empty
            when the input was unreadable).
        table_orders: the ``n x n`` distance-table bond orders (before the valence repair;
            what atom stability is measured on); None when the input was unreadable.
        bond_orders: the ``n x n`` bond orders the molecule was built with (after the valence
            repair and the double-bond matching); None when not reached.
        mol: the sanitized heavy-atom molecule (implicit hydrogens, one conformer in
            Angstrom) when ``ok``, else None.
        smiles: its canonical SMILES without stereochemistry when ``ok``, else None.
        table_sanitizes: whether the distance-table orders as they are (EDM's rule: no
            valence repair, no double-bond matching) give a molecule RDKit sanitizes.
    """

    ok: bool
    reason: str
    atom_types: NDArray[np.int64]
    table_orders: NDArray[np.int64] | None = None
    bond_orders: NDArray[np.int64] | None = None
    mol: Chem.Mol | None = None
    smiles: str | None = None
    table_sanitizes: bool = False

    @property
    def n_atoms(self) -> int:
        """The number of real (heavy) atoms read from the input."""
        return len(self.atom_types)

    @property
    def n_fragments(self) -> int:
        """Connected components of the bond graph (0 when there is no graph)."""
        orders = self.bond_orders if self.bond_orders is not None else self.table_orders
        if orders is None or self.n_atoms == 0:
            return 0
        return _count_components(orders > 0)


def _count_components(adjacency: NDArray[np.bool_]) -> int:
    """Connected components of an ``n x n`` symmetric adjacency matrix."""
    n = adjacency.shape[0]
    seen = np.zeros(n, dtype=bool)
    components = 0
    for start in range(n):
        if seen[start]:
            continue
        components += 1
        stack = [start]
        seen[start] = True
        while stack:
            atom = stack.pop()
            for neighbour in np.flatnonzero(adjacency[atom] & ~seen):
                seen[neighbour] = True
                stack.append(int(neighbour))
    return components


def distance_bond_orders(positions: NDArray[Any], atom_types: NDArray[Any]) -> NDArray[np.int64]:
    """EDM-style bond orders from interatomic distances (module docstring, step 1).

    Args:
        positions: a ``n x 3`` array in Angstrom.
        atom_types: a ``n`` integer array of indices into (C, N, O, F).

    Returns:
        A symmetric ``n x n`` int64 array with entries in {0, 1, 2, 3}, zero diagonal.
    """
    positions = np.asarray(positions, dtype=np.float64)
    types = np.asarray(atom_types, dtype=np.int64)
    distances = 100.0 * np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    references = REFERENCE_LENGTHS_PM[types[:, None], types[None, :]]
    orders = np.zeros(distances.shape, dtype=np.int64)
    # Comparisons with NaN (no such bond for this pair) are False, as intended.
    with np.errstate(invalid="ignore"):
        for order, margin in zip((1, 2, 3), BOND_MARGINS_PM, strict=True):
            orders[distances < references[..., order - 1] + margin] = order
    np.fill_diagonal(orders, 0)
    return orders


def repair_valences(
    orders: NDArray[np.int64], positions: NDArray[Any], atom_types: NDArray[Any]
) -> tuple[NDArray[np.int64], str]:
    """Lower multiple bonds until no atom exceeds its valence (module docstring, step 2).

    Args:
        orders: a symmetric ``n x n`` bond-order array (not modified).
        positions: a ``n x 3`` array in Angstrom.
        atom_types: a ``n`` integer array of indices into (C, N, O, F).

    Returns:
        The repaired orders and an empty string, or the orders reached and a one-line reason
        when an atom stays over-valent with single bonds only.
    """
    orders = orders.copy()
    types = np.asarray(atom_types, dtype=np.int64)
    valences = VALENCE_BY_TYPE[types]
    distances = 100.0 * np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    references = REFERENCE_LENGTHS_PM[types[:, None], types[None, :]]
    while True:
        excess = orders.sum(axis=1) - valences
        over = excess > 0
        if not over.any():
            return orders, ""
        candidates = (orders >= 2) & (over[:, None] | over[None, :])
        if not candidates.any():
            atom = int(np.argmax(excess))
            symbol = ATOM_SYMBOLS[types[atom]]
            return orders, (
                f"atom {atom} ({symbol}) has {int(orders[atom].sum())} bonds to "
                f"{int((orders[atom] > 0).sum())} neighbours; its valence is {valences[atom]}"
            )
        rows, cols = np.nonzero(np.triu(candidates))
        current = references[rows, cols, orders[rows, cols] - 1]
        stretch = distances[rows, cols] - current
        # Prefer a bond between two over-valent atoms: one step fixes both.
        both = over[rows] & over[cols]
        pick = np.lexsort((-stretch, ~both))[0]
        i, j = rows[pick], cols[pick]
        orders[i, j] -= 1
        orders[j, i] -= 1


def conjugation_character(positions: NDArray[Any], atom_types: NDArray[Any]) -> NDArray[np.float64]:
    """Double-bond character of every pair from its length: ``(r_1 - r) / (r_1 - r_2)``.

    1 at the double-bond reference length, 0 at the single one (so about 0.75 for an aromatic
    C-C bond of 1.39 A); NaN for element pairs without a double bond. A ``n x n`` array.
    """
    types = np.asarray(atom_types, dtype=np.int64)
    distances = 100.0 * np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    references = REFERENCE_LENGTHS_PM[types[:, None], types[None, :]]
    single, double = references[..., 0], references[..., 1]
    return np.asarray((single - distances) / (single - double), dtype=np.float64)


def linear_centres(
    orders: NDArray[np.int64], positions: NDArray[Any], min_angle: float = 150.0
) -> NDArray[np.bool_]:
    """Atoms with exactly two multiple bonds at an angle of at least ``min_angle`` degrees.

    Such an atom is an sp centre (allene, ketene, isocyanate, carbodiimide, CO2-like): its
    two double bonds are real. Two multiple bonds at a bent atom (about 120 degrees in a ring)
    are an artefact of intermediate bond lengths. Returns a ``n`` boolean array.
    """
    positions = np.asarray(positions, dtype=np.float64)
    linear = np.zeros(len(orders), dtype=bool)
    for atom in range(len(orders)):
        partners = np.flatnonzero(orders[atom] >= 2)
        if len(partners) != 2:
            continue
        first, second = positions[partners] - positions[atom]
        cosine = first @ second / (np.linalg.norm(first) * np.linalg.norm(second))
        linear[atom] = cosine <= np.cos(np.radians(min_angle))
    return linear


def assign_double_bonds(
    orders: NDArray[np.int64], positions: NDArray[Any], atom_types: NDArray[Any]
) -> NDArray[np.int64]:
    """Place the double bonds as a maximum-weight matching (module docstring, step 3).

    Triple bonds and the two double bonds of a linear sp centre (:func:`linear_centres`) are
    kept. Every other double bond is first made single. An atom is then eligible for a double
    bond when it has spare valence and no kept multiple bond. A bond between two eligible
    atoms whose double-bond character (:func:`conjugation_character`) is at least
    ``CONJUGATION_THRESHOLD`` is a candidate, weighted by its character. The double bonds are
    the candidates of the matching (no atom takes two) of largest total weight.

    This reads Kekule structures of aromatic rings, whose bond lengths lie between the single
    and double references (the distance table alone gives a ring too few double bonds, or two
    at one bent atom), and leaves clear double bonds where they are: a C=O of character 0.9
    wins over a C-N of 0.6 at the same carbon (amides).

    Returns:
        The new ``n x n`` orders (``orders`` is not modified).
    """
    orders = orders.copy()
    types = np.asarray(atom_types, dtype=np.int64)
    linear = linear_centres(orders, positions)
    kept = (orders == 3) | ((orders == 2) & (linear[:, None] | linear[None, :]))
    orders[(orders == 2) & ~kept] = 1
    spare = VALENCE_BY_TYPE[types] - orders.sum(axis=1)
    eligible = (spare >= 1) & ~kept.any(axis=1)
    character = conjugation_character(positions, types)
    with np.errstate(invalid="ignore"):
        candidates = (
            (orders == 1)
            & eligible[:, None]
            & eligible[None, :]
            & (character >= CONJUGATION_THRESHOLD)
        )
    rows, cols = np.nonzero(np.triu(candidates))
    edges = [(int(i), int(j), float(character[i, j])) for i, j in zip(rows, cols, strict=True)]
    for i, j in maximum_weight_matching(edges):
        orders[i, j] = orders[j, i] = 2
    return orders


def maximum_weight_matching(edges: Sequence[tuple[int, int, float]]) -> list[tuple[int, int]]:
    """The matching of largest total weight among positive-weight ``(i, j, weight)`` edges.

    Exact, by dynamic programming over the set of atoms still free: the lowest free atom is
    either left unmatched or matched to one of its free neighbours. Exponential in the number
    of atoms in the worst case, which is immaterial for a molecule of at most 9 heavy atoms.
    """
    vertices = sorted({vertex for i, j, _ in edges for vertex in (i, j)})
    position = {vertex: bit for bit, vertex in enumerate(vertices)}
    neighbours: list[list[tuple[int, float]]] = [[] for _ in vertices]
    for i, j, weight in edges:
        neighbours[position[i]].append((position[j], weight))
        neighbours[position[j]].append((position[i], weight))

    @functools.cache
    def best(free: int) -> tuple[float, tuple[tuple[int, int], ...]]:
        if free == 0:
            return 0.0, ()
        lowest = (free & -free).bit_length() - 1
        rest = free & ~(1 << lowest)
        result = best(rest)
        for other, weight in neighbours[lowest]:
            if rest >> other & 1:
                value, chosen = best(rest & ~(1 << other))
                if value + weight > result[0]:
                    result = (value + weight, ((lowest, other), *chosen))
        return result

    _, chosen = best((1 << len(vertices)) - 1)
    return [(vertices[a], vertices[b]) for a, b in chosen]


def _failure(
    reason: str,
    atom_types: NDArray[np.int64] | None = None,
    table_orders: NDArray[np.int64] | None = None,
    bond_orders: NDArray[np.int64] | None = None,
) -> RebuiltMolecule:
    types = np.zeros(0, dtype=np.int64) if atom_types is None else atom_types
    return RebuiltMolecule(
        ok=False,
        reason=reason,
        atom_types=types,
        table_orders=table_orders,
        bond_orders=bond_orders,
    )


def _read_structure(
    positions: Any, atom_types: Any
) -> tuple[NDArray[np.float64], NDArray[np.int64]] | tuple[str, NDArray[np.int64] | None]:
    """The real atoms' positions (``n x 3``) and types (``n``).

    On bad input: a reason and the real atoms' types when they could be read (so that
    non-finite coordinates still count their atoms as unstable).
    """
    try:
        positions = np.asarray(positions, dtype=np.float64)
        types = np.asarray(atom_types)
    except (TypeError, ValueError) as error:
        return f"positions and atom types must be numeric arrays ({error})", None
    if positions.ndim != 2 or positions.shape[1] != 3 or types.shape != positions.shape[:1]:
        return (
            f"positions must be n x 3 and atom types n; got {positions.shape} and {types.shape}",
            None,
        )
    if not np.issubdtype(types.dtype, np.integer):
        return (
            f"atom types must be integer indices into {ATOM_SYMBOLS}; got dtype {types.dtype}",
            None,
        )
    types = types.astype(np.int64)
    if (types >= len(ATOM_SYMBOLS)).any():
        return (
            f"atom types must index {ATOM_SYMBOLS} (or be -1 for padding); "
            f"got {sorted(set(types.tolist()))}",
            None,
        )
    real = types >= 0
    positions, types = positions[real], types[real]
    if len(types) == 0:
        return "no atoms: every entry is padding", None
    if not np.isfinite(positions).all():
        return "non-finite coordinates", types
    return positions, types


def rebuild_molecule(positions: Any, atom_types: Any, conjugate: bool = True) -> RebuiltMolecule:
    """Rebuild the RDKit molecule of one heavy-atom structure (module docstring); never raises.

    Args:
        positions: a ``n x 3`` array in Angstrom (rows of padding allowed).
        atom_types: a ``n`` integer array of indices into (C, N, O, F), -1 on padding (such
            rows are dropped, so a padded dataset or sampler row can be passed as it is).

    Returns:
        The rebuilt molecule, ``ok=False`` with a reason when it cannot be sanitized.

    >>> rebuilt = rebuild_molecule([[0.0, 0.0, 0.0], [1.21, 0.0, 0.0]], [0, 2])
    >>> rebuilt.ok, rebuilt.smiles
    (True, 'C=O')
    """
    structure = _read_structure(positions, atom_types)
    if isinstance(structure[0], str):
        return _failure(structure[0], structure[1])
    coordinates, types = structure
    table_orders = distance_bond_orders(coordinates, types)
    distances = np.linalg.norm(coordinates[:, None, :] - coordinates[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    if distances.min() < CLASH_DISTANCE:
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        return _failure(
            f"atoms {i} and {j} are {distances[i, j]:.2f} A apart "
            f"(a clash: closer than {CLASH_DISTANCE} A)",
            types,
            table_orders=table_orders,
        )
    bond_orders, reason = repair_valences(table_orders, coordinates, types)
    if reason:
        return _failure(reason, types, table_orders=table_orders, bond_orders=bond_orders)
    if conjugate:
        bond_orders = assign_double_bonds(bond_orders, coordinates, types)
    table_mol, _ = _to_rdkit(coordinates, types, table_orders)
    mol, reason = _to_rdkit(coordinates, types, bond_orders)
    if mol is None:
        return RebuiltMolecule(
            ok=False,
            reason=reason,
            atom_types=types,
            table_orders=table_orders,
            bond_orders=bond_orders,
            table_sanitizes=table_mol is not None,
        )
    return RebuiltMolecule(
        ok=True,
        reason="",
        atom_types=types,
        table_orders=table_orders,
        bond_orders=bond_orders,
        mol=mol,
        smiles=Chem.MolToSmiles(mol, isomericSmiles=False),
        table_sanitizes=table_mol is not None,
    )


def _to_rdkit(
    positions: NDArray[np.float64], types: NDArray[np.int64], orders: NDArray[np.int64]
) -> tuple[Chem.Mol | None, str]:
    """A sanitized molecule with implicit hydrogens and a conformer, or None and a reason."""
    editable = Chem.RWMol()
    for index in types:
        editable.AddAtom(Chem.Atom(ATOMIC_NUMBERS[int(index)]))
    rows, cols = np.nonzero(np.triu(orders))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        editable.AddBond(i, j, _RDKIT_BOND_TYPES[int(orders[i, j])])
    conformer = Chem.Conformer(len(types))
    for atom, (x, y, z) in enumerate(positions.tolist()):
        conformer.SetAtomPosition(atom, (x, y, z))
    editable.AddConformer(conformer, assignId=True)
    mol = editable.GetMol()
    with BlockLogs():
        try:
            Chem.SanitizeMol(mol)
        except Exception as error:  # RDKit raises several unrelated exception types.
            message = str(error).strip().splitlines()
            return None, f"RDKit sanitization failed: {message[0] if message else error!r}"
    return mol, ""


def rebuild_batch(positions: Any, atom_types: Any) -> list[RebuiltMolecule]:
    """:func:`rebuild_molecule` on each row of ``B x N x 3`` positions and ``B x N`` types.

    Each molecule's failure is returned, never raised; only arrays that are not a batch
    (wrong ranks or mismatched shapes) raise ``ValueError``.
    """
    positions = np.asarray(positions)
    atom_types = np.asarray(atom_types)
    if positions.ndim != 3 or positions.shape[2] != 3 or atom_types.shape != positions.shape[:2]:
        raise ValueError(
            f"a batch is B x N x 3 positions and B x N atom types; got {positions.shape} and "
            f"{atom_types.shape}"
        )
    return [rebuild_molecule(p, t) for p, t in zip(positions, atom_types, strict=True)]


def canonical_smiles(smiles: str) -> str | None:
    """A reference SMILES in the form :func:`rebuild_molecule` writes, or None if unreadable.

    Hydrogens are made implicit and stereochemistry is dropped, so that a QM9 SMILES and the
    SMILES of the molecule rebuilt from its heavy atoms can be compared as strings.
    """
    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        mol = Chem.RemoveHs(mol)
        return str(Chem.MolToSmiles(mol, isomericSmiles=False))


def canonical_smiles_set(smiles: Sequence[str]) -> frozenset[str]:
    """The canonical forms (:func:`canonical_smiles`) of ``smiles``, unreadable ones left out."""
    canonical = (canonical_smiles(str(item)) for item in smiles)
    return frozenset(item for item in canonical if item is not None)
