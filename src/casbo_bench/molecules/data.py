"""QM9 heavy-atom geometries and properties: the cached dataset the molecule pipeline reads.

Source: the QM9 table shipped by the PyPI package ``qm9pack`` (three CSV files, 130,831
molecules, DFT geometries in Angstrom and properties). The package's own code is never
imported (its ``__init__`` needs ``pkg_resources``); only its data folder is read.

Representation (heavy atoms only; hydrogens are implied by valence when a molecule is rebuilt):

- ``positions``: a ``N x 9 x 3`` float32 array in Angstrom, each molecule centred on the
  unweighted mean of its heavy atoms (zero centre of mass), padding rows zero;
- ``atom_types``: a ``N x 9`` int8 array of indices into ``ATOM_SYMBOLS`` (C, N, O, F),
  ``-1`` on padding; one-hot types, atomic numbers (charges) and the atom mask derive from it;
- ``properties``: a ``N x 6`` float32 array, columns ``PROPERTY_NAMES`` in ``PROPERTY_UNITS``;
- ``smiles``, ``qm9_index``: QM9's SMILES string and running index of each molecule;
- ``split``: a ``N`` int8 array of indices into ``SPLIT_NAMES``: a fixed seeded split into test
  (10%), validation (10%), and two halves of the rest, ``generative`` (the diffusion model
  trains on it) and ``property`` (the property predictor trains on it).

The file is one compressed ``.npz`` plus a JSON provenance record inside it (qm9pack version,
sha256 of every source CSV, the split seed). Build it with::

    casbo-bench qm9 --out results/data/qm9_heavy.npz

and the committed test subset (1,000 molecules drawn with a fixed seed) with::

    casbo-bench qm9 --subset-of results/data/qm9_heavy.npz \\
        --out tests/data/qm9_subset.npz --size 1000 --seed 0

:func:`format_xyz` and :func:`parse_xyz` write and read one structure as text (the traces'
``detail_xyz``).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.files import sha256_file, write_atomically
from casbo_bench.molecules.atoms import ATOM_SYMBOLS, ATOMIC_NUMBERS, MAX_ATOMS

SPLIT_NAMES: tuple[str, ...] = ("generative", "property", "validation", "test")
SPLIT_FRACTIONS: dict[str, float] = {"test": 0.1, "validation": 0.1}
# CODATA 2018 Hartree energy in eV.
HARTREE_TO_EV = 27.211386245988
PROPERTY_NAMES: tuple[str, ...] = ("alpha", "gap", "mu", "homo", "lumo", "cv")
PROPERTY_UNITS: dict[str, str] = {
    "alpha": "bohr^3",
    "gap": "eV",
    "mu": "Debye",
    "homo": "eV",
    "lumo": "eV",
    "cv": "cal/(mol K)",
}
SOURCE_FILES: tuple[str, ...] = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
FORMAT_VERSION = 1

_PROPERTY_COLUMNS: dict[str, tuple[str, float]] = {
    "alpha": ("Polarizability_bohr3", 1.0),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_EV),
    "mu": ("Dipole_debye", 1.0),
    "homo": ("HOMO_au", HARTREE_TO_EV),
    "lumo": ("LUMO_au", HARTREE_TO_EV),
    "cv": ("Heatcapacity_Cv_cal_mol_K", 1.0),
}

IntArray = NDArray[np.int64]


class DatasetError(UserFacingError, ValueError):
    """The QM9 source or a cached dataset file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class MoleculeDataset:
    """Heavy-atom QM9 molecules as padded arrays (see the module docstring for the layout).

    Attributes:
        positions: a ``N x 9 x 3`` float32 array (Angstrom, zero centre of mass per molecule).
        atom_types: a ``N x 9`` int8 array of indices into ``ATOM_SYMBOLS``, -1 on padding.
        properties: a ``N x P`` float32 array, columns named by ``property_names``.
        property_names: the P property names (units in ``PROPERTY_UNITS``).
        smiles: a ``N`` array of QM9 SMILES strings.
        qm9_index: a ``N`` int32 array of QM9 running indices (1-based, as in QM9).
        split: a ``N`` int8 array of indices into ``SPLIT_NAMES``.
        provenance: where the data came from (source hashes, versions, seeds).
    """

    positions: NDArray[np.float32]
    atom_types: NDArray[np.int8]
    properties: NDArray[np.float32]
    property_names: tuple[str, ...]
    smiles: NDArray[np.str_]
    qm9_index: NDArray[np.int32]
    split: NDArray[np.int8]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def mask(self) -> NDArray[np.bool_]:
        """A ``N x 9`` boolean array, true on real atoms."""
        return self.atom_types >= 0

    @property
    def num_atoms(self) -> IntArray:
        """A ``N`` array of heavy-atom counts."""
        return self.mask.sum(axis=1).astype(np.int64)

    @property
    def charges(self) -> IntArray:
        """A ``N x 9`` array of atomic numbers (0 on padding)."""
        table = np.array((0, *ATOMIC_NUMBERS), dtype=np.int64)
        return table[self.atom_types.astype(np.int64) + 1]

    @property
    def one_hot(self) -> NDArray[np.float32]:
        """A ``N x 9 x 4`` float32 one-hot encoding of the types (all zero on padding)."""
        eye = np.eye(len(ATOM_SYMBOLS) + 1, dtype=np.float32)[:, 1:]
        return eye[self.atom_types.astype(np.int64) + 1]

    def property(self, name: str) -> NDArray[np.float32]:
        """The ``N`` column of property ``name`` (in ``PROPERTY_UNITS[name]``)."""
        if name not in self.property_names:
            raise DatasetError(f"no property {name!r}; choose one of {self.property_names}")
        return self.properties[:, self.property_names.index(name)]

    def split_indices(self, name: str) -> IntArray:
        """Row indices of split ``name`` (one of ``SPLIT_NAMES``), ascending."""
        if name not in SPLIT_NAMES:
            raise DatasetError(f"no split {name!r}; choose one of {SPLIT_NAMES}")
        return np.flatnonzero(self.split == SPLIT_NAMES.index(name)).astype(np.int64)

    def select(self, rows: Sequence[int] | NDArray[np.integer]) -> MoleculeDataset:
        """The molecules at ``rows``, in that order, with the same provenance."""
        rows = np.asarray(rows, dtype=np.int64)
        return MoleculeDataset(
            positions=self.positions[rows],
            atom_types=self.atom_types[rows],
            properties=self.properties[rows],
            property_names=self.property_names,
            smiles=self.smiles[rows],
            qm9_index=self.qm9_index[rows],
            split=self.split[rows],
            provenance=dict(self.provenance),
        )

    def subset(self, name: str) -> MoleculeDataset:
        """The molecules of split ``name``."""
        return self.select(self.split_indices(name))


def qm9pack_data_dir() -> Path:
    """The folder of qm9pack's CSV files, found without importing the package's code."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the PyPI package qm9pack is not installed; install it with "
            "`pip install qm9pack==1.0.3`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [name for name in SOURCE_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"qm9pack's data folder {folder} lacks {missing}; reinstall qm9pack")
    return folder


def split_assignment(n_molecules: int, seed: int) -> NDArray[np.int8]:
    """A seeded split of ``n_molecules`` rows: a ``N`` int8 array of ``SPLIT_NAMES`` indices.

    A permutation drawn from ``numpy.random.default_rng(seed)`` assigns its first 10% to
    test, the next 10% to validation, and the remainder in two halves
    (first half ``generative``, second half ``property``).
    """
    if n_molecules < 1:
        raise DatasetError(f"cannot split {n_molecules} molecules")
    order = np.random.default_rng(seed).permutation(n_molecules)
    n_test = round(SPLIT_FRACTIONS["test"] * n_molecules)
    n_validation = round(SPLIT_FRACTIONS["validation"] * n_molecules)
    n_rest = n_molecules - n_test - n_validation
    n_generative = (n_rest + 1) // 2
    codes = np.empty(n_molecules, dtype=np.int8)
    bounds = np.cumsum([0, n_test, n_validation, n_generative, n_rest - n_generative])
    for name, start, stop in zip(
        ("test", "validation", "generative", "property"), bounds[:-1], bounds[1:], strict=True
    ):
        codes[order[start:stop]] = SPLIT_NAMES.index(name)
    return codes


def _parse_molecule(elements: str, xyz: str) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Heavy-atom type indices (``n``) and centred positions (``n x 3``) of one QM9 row."""
    symbols = ast.literal_eval(elements)
    coordinates = np.asarray(ast.literal_eval(xyz), dtype=np.float64)
    heavy = [i for i, symbol in enumerate(symbols) if symbol != "H"]
    try:
        types = np.array([ATOM_SYMBOLS.index(symbols[i]) for i in heavy], dtype=np.int8)
    except ValueError as error:
        raise DatasetError(f"unexpected element in {symbols}: only C, N, O, F, H") from error
    positions = coordinates[heavy]
    return types, positions - positions.mean(axis=0)


def read_qm9(data_dir: Path | None = None) -> MoleculeDataset:
    """Parse qm9pack's CSV files into a heavy-atom :class:`MoleculeDataset` (split unset: 0)."""
    import pandas as pd

    folder = data_dir if data_dir is not None else qm9pack_data_dir()
    columns = ["Index", "SMILES", "Elements", "XYZ_Ang"] + [
        column for column, _ in _PROPERTY_COLUMNS.values()
    ]
    frame = pd.concat(
        [pd.read_csv(folder / name, usecols=columns) for name in SOURCE_FILES],
        ignore_index=True,
    ).sort_values("Index", kind="stable", ignore_index=True)
    n = len(frame)
    positions = np.zeros((n, MAX_ATOMS, 3), dtype=np.float32)
    atom_types = np.full((n, MAX_ATOMS), -1, dtype=np.int8)
    for row, (elements, xyz) in enumerate(
        zip(frame["Elements"].to_numpy(), frame["XYZ_Ang"].to_numpy(), strict=True)
    ):
        types, coordinates = _parse_molecule(elements, xyz)
        if len(types) > MAX_ATOMS or len(types) == 0:
            raise DatasetError(
                f"QM9 molecule {frame['Index'].iat[row]} has {len(types)} heavy atoms; "
                f"the representation holds 1 to {MAX_ATOMS}"
            )
        positions[row, : len(types)] = coordinates
        atom_types[row, : len(types)] = types
    properties = np.stack(
        [
            frame[column].to_numpy(dtype=np.float64) * factor
            for column, factor in _PROPERTY_COLUMNS.values()
        ],
        axis=1,
    ).astype(np.float32)
    return MoleculeDataset(
        positions=positions,
        atom_types=atom_types,
        properties=properties,
        property_names=PROPERTY_NAMES,
        smiles=frame["SMILES"].to_numpy(dtype=str),
        qm9_index=frame["Index"].to_numpy(dtype=np.int32),
        split=np.zeros(n, dtype=np.int8),
    )


def save_dataset(dataset: MoleculeDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` as one compressed npz (written to a temporary file, then renamed)."""
    arrays: dict[str, NDArray[Any]] = {
        "positions": dataset.positions.astype(np.float32),
        "atom_types": dataset.atom_types.astype(np.int8),
        "properties": dataset.properties.astype(np.float32),
        "property_names": np.array(dataset.property_names, dtype=str),
        "smiles": dataset.smiles.astype(str),
        "qm9_index": dataset.qm9_index.astype(np.int32),
        "split": dataset.split.astype(np.int8),
        "provenance": np.array(json.dumps(dataset.provenance, sort_keys=True)),
    }
    return write_atomically(
        path,
        lambda stream: np.savez_compressed(stream, **arrays),  # type: ignore[arg-type]
    )


def build_dataset(out_path: str | os.PathLike[str], seed: int = 0) -> MoleculeDataset:
    """Read QM9 from qm9pack, split it with ``seed``, and cache it at ``out_path``.

    Returns:
        The dataset as written, its provenance holding the qm9pack version, the sha256 of
        every source CSV, the split seed and fractions, and the unit conversions.
    """
    folder = qm9pack_data_dir()
    dataset = read_qm9(folder)
    split = split_assignment(len(dataset), seed)
    provenance = {
        "format_version": FORMAT_VERSION,
        "source": "qm9pack",
        "qm9pack_version": importlib.metadata.version("qm9pack"),
        "source_sha256": {name: sha256_file(folder / name) for name in SOURCE_FILES},
        "split_seed": int(seed),
        "split_fractions": {"test": 0.1, "validation": 0.1, "generative": 0.4, "property": 0.4},
        "representation": "heavy atoms (C, N, O, F), positions in Angstrom, zero mean",
        "property_units": PROPERTY_UNITS,
        "hartree_to_ev": HARTREE_TO_EV,
        "n_molecules": len(dataset),
    }
    dataset = MoleculeDataset(
        positions=dataset.positions,
        atom_types=dataset.atom_types,
        properties=dataset.properties,
        property_names=dataset.property_names,
        smiles=dataset.smiles,
        qm9_index=dataset.qm9_index,
        split=split,
        provenance=provenance,
    )
    save_dataset(dataset, out_path)
    return dataset


_ARRAYS = (
    "positions",
    "atom_types",
    "properties",
    "property_names",
    "smiles",
    "qm9_index",
    "split",
    "provenance",
)
"""The arrays of a cached dataset file (:func:`save_dataset`)."""


def load_dataset(path: str | os.PathLike[str]) -> MoleculeDataset:
    """Load a dataset written by :func:`build_dataset` or :func:`build_subset`.

    Nothing in the file is unpickled (``allow_pickle=False``), and every array is checked
    against the CRC-32 the npz (a zip) stores for it, so a damaged file is refused.

    Raises:
        DatasetError: the file is missing, damaged, or not a casbo-bench QM9 file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no dataset at {path}; build it with `casbo-bench qm9 --out {path}`")
    rebuild = f"rebuild it with `casbo-bench qm9 --out {path}` (or `--subset-of` for a subset)"
    # np.load reads anything but a zip as a pickle, and its refusal would advise unpickling.
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path} is not a casbo-bench QM9 file (not an npz archive); {rebuild}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = set(_ARRAYS) - set(archive.files)
            if missing:
                raise DatasetError(
                    f"{path} is not a casbo-bench QM9 file: it lacks {sorted(missing)}; "
                    f"build one with `casbo-bench qm9 --out {path}`"
                )
            arrays = {name: archive[name] for name in _ARRAYS}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(f"{path} cannot be read ({error}); {rebuild}") from None
    dataset = MoleculeDataset(
        positions=arrays["positions"],
        atom_types=arrays["atom_types"],
        properties=arrays["properties"],
        property_names=tuple(str(name) for name in arrays["property_names"]),
        smiles=arrays["smiles"],
        qm9_index=arrays["qm9_index"],
        split=arrays["split"],
        provenance=json.loads(str(arrays["provenance"])),
    )
    n = len(dataset)
    if dataset.positions.shape != (n, MAX_ATOMS, 3) or dataset.atom_types.shape != (n, MAX_ATOMS):
        raise DatasetError(
            f"{path}: positions {dataset.positions.shape} and atom types "
            f"{dataset.atom_types.shape} do not match ({n}, {MAX_ATOMS}, 3) / ({n}, {MAX_ATOMS})"
        )
    return dataset


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


def atom_count_histogram(dataset: MoleculeDataset, split: str = "generative") -> IntArray:
    """Counts of molecules by heavy-atom number in ``split``: a ``10`` array (index = n)."""
    counts = dataset.num_atoms[dataset.split_indices(split)]
    return np.bincount(counts, minlength=MAX_ATOMS + 1).astype(np.int64)


def build_subset(
    source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    size: int = 1000,
    seed: int = 0,
) -> MoleculeDataset:
    """Draw ``size`` molecules without replacement (seeded) from a cached dataset and save them.

    The subset keeps every array (split labels included) and records its parent's
    provenance, the parent file's sha256, the seed and the size.
    """
    parent = load_dataset(source)
    if not 0 < size <= len(parent):
        raise DatasetError(f"subset size must be in 1..{len(parent)}; got {size}")
    rows = np.sort(np.random.default_rng(seed).choice(len(parent), size=size, replace=False))
    subset = parent.select(rows)
    provenance = dict(parent.provenance)
    provenance["subset"] = {
        "parent_sha256": sha256_file(source),
        "seed": int(seed),
        "size": int(size),
        "n_parent": len(parent),
    }
    subset = MoleculeDataset(**{**subset.__dict__, "provenance": provenance})
    save_dataset(subset, out_path)
    return subset
