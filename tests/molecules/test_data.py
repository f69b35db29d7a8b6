"""Tests of casbo_bench.molecules.data on the committed QM9 subset (never the full QM9)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from casbo_bench.molecules.data import (
    ATOM_SYMBOLS,
    HARTREE_TO_EV,
    MAX_ATOMS,
    PROPERTY_NAMES,
    SOURCE_FILES,
    SPLIT_NAMES,
    DatasetError,
    MoleculeDataset,
    _parse_molecule,
    atom_count_histogram,
    load_dataset,
    qm9pack_data_dir,
    save_dataset,
    sha256_file,
    split_assignment,
)
from tests.molecules.structures import SUBSET


@pytest.fixture(scope="module")
def subset() -> MoleculeDataset:
    return load_dataset(SUBSET)


def test_subset_is_small_and_complete(subset: MoleculeDataset) -> None:
    assert SUBSET.stat().st_size < 1_000_000
    assert len(subset) == 1000
    assert subset.positions.shape == (1000, MAX_ATOMS, 3)
    assert subset.positions.dtype == np.float32
    assert subset.properties.shape == (1000, len(PROPERTY_NAMES))
    assert subset.property_names == PROPERTY_NAMES
    assert len(set(subset.qm9_index.tolist())) == 1000
    assert all(len(smiles) > 0 for smiles in subset.smiles)


def test_provenance_records_sources_and_seeds(subset: MoleculeDataset) -> None:
    provenance = subset.provenance
    assert provenance["source"] == "qm9pack"
    assert provenance["qm9pack_version"] == "1.0.3"
    assert set(provenance["source_sha256"]) == set(SOURCE_FILES)
    for digest in [*provenance["source_sha256"].values(), provenance["subset"]["parent_sha256"]]:
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert provenance["n_molecules"] == 130_831
    assert provenance["subset"]["size"] == 1000


def test_recorded_source_hashes_match_installed_qm9pack(subset: MoleculeDataset) -> None:
    folder = qm9pack_data_dir()
    recorded = subset.provenance["source_sha256"]
    assert {name: sha256_file(folder / name) for name in SOURCE_FILES} == recorded


def test_split_is_disjoint_covering_and_sized() -> None:
    n = 130_831
    codes = split_assignment(n, seed=0)
    counts = np.bincount(codes, minlength=len(SPLIT_NAMES))
    assert counts.sum() == n  # every molecule in exactly one split
    sizes = dict(zip(SPLIT_NAMES, counts.tolist(), strict=True))
    assert sizes["test"] == sizes["validation"] == round(0.1 * n)
    assert abs(sizes["generative"] - sizes["property"]) <= 1
    assert np.array_equal(codes, split_assignment(n, seed=0))
    assert not np.array_equal(codes, split_assignment(n, seed=1))


def test_subset_rows_and_splits_follow_their_seeds(subset: MoleculeDataset) -> None:
    record = subset.provenance["subset"]
    rows = np.sort(
        np.random.default_rng(record["seed"]).choice(
            record["n_parent"], size=record["size"], replace=False
        )
    )
    parent_split = split_assignment(record["n_parent"], subset.provenance["split_seed"])
    assert np.array_equal(subset.split, parent_split[rows])
    per_split = [subset.split_indices(name) for name in SPLIT_NAMES]
    assert sum(len(indices) for indices in per_split) == len(subset)
    assert len(np.unique(np.concatenate(per_split))) == len(subset)


def test_geometry_is_centred_and_padding_is_zero(subset: MoleculeDataset) -> None:
    mask = subset.mask
    counts = subset.num_atoms
    assert counts.min() >= 1 and counts.max() <= MAX_ATOMS
    # real atoms first, padding after
    assert np.array_equal(mask, np.arange(MAX_ATOMS)[None, :] < counts[:, None])
    assert np.all(subset.positions[~mask] == 0.0)
    centre = subset.positions.sum(axis=1) / counts[:, None]
    assert np.abs(centre).max() < 1e-5
    assert set(np.unique(subset.atom_types[mask]).tolist()) <= set(range(len(ATOM_SYMBOLS)))


def test_derived_encodings_agree(subset: MoleculeDataset) -> None:
    one_hot = subset.one_hot
    assert one_hot.shape == (len(subset), MAX_ATOMS, 4)
    assert np.array_equal(one_hot.sum(axis=-1), subset.mask.astype(np.float32))
    assert np.array_equal(one_hot.argmax(axis=-1)[subset.mask], subset.atom_types[subset.mask])
    charges = subset.charges
    assert set(np.unique(charges[subset.mask]).tolist()) <= {6, 7, 8, 9}
    assert np.all(charges[~subset.mask] == 0)


def test_property_units(subset: MoleculeDataset) -> None:
    gap, homo, lumo = (subset.property(name) for name in ("gap", "homo", "lumo"))
    # gap, HOMO and LUMO are converted from Hartree with the same factor; QM9 rounds each
    # to 1e-4 Hartree, so the difference may be off by one unit in the last place.
    np.testing.assert_allclose(gap, lumo - homo, atol=1.01e-4 * HARTREE_TO_EV)
    assert 1.0 < np.median(gap) < 20.0  # eV, not Hartree
    assert 20.0 < np.median(subset.property("alpha")) < 200.0  # bohr^3
    with pytest.raises(DatasetError, match="no property"):
        subset.property("energy")


def test_histogram_counts_generative_split(subset: MoleculeDataset) -> None:
    histogram = atom_count_histogram(subset, "generative")
    assert histogram.shape == (MAX_ATOMS + 1,)
    assert histogram.sum() == len(subset.split_indices("generative"))
    assert histogram[0] == 0
    expected = np.bincount(subset.subset("generative").num_atoms, minlength=MAX_ATOMS + 1)
    assert np.array_equal(histogram, expected)


def test_save_load_round_trip(subset: MoleculeDataset, tmp_path: Path) -> None:
    path = save_dataset(subset.select(range(10)), tmp_path / "part.npz")
    again = load_dataset(path)
    assert np.array_equal(again.positions, subset.positions[:10])
    assert np.array_equal(again.smiles, subset.smiles[:10])
    assert again.provenance == subset.provenance


def test_parse_molecule_handles_qm9_number_formats() -> None:
    types, positions = _parse_molecule(
        "['C','O','H','H']", "[[0.,0.,0.],[1.2e0,0.,0.],[-0.5,0.9,0.],[-0.5,-0.9,0.]]"
    )
    assert types.tolist() == [0, 2]
    np.testing.assert_allclose(positions, [[-0.6, 0.0, 0.0], [0.6, 0.0, 0.0]])
    with pytest.raises(DatasetError, match="unexpected element"):
        _parse_molecule("['C','S']", "[[0.,0.,0.],[1.,0.,0.]]")


def test_errors_name_the_fix(subset: MoleculeDataset, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="build it with"):
        load_dataset(tmp_path / "missing.npz")
    with pytest.raises(DatasetError, match="no split"):
        subset.split_indices("train")


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "text", "object array"])
def test_a_damaged_or_pickled_dataset_is_refused_with_one_line(damage: str, tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    data = bytearray(SUBSET.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF  # inside a compressed array: its CRC-32 fails
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "text":
        path.write_text("positions,atom_types\n")
    else:
        with np.load(SUBSET) as archive:
            arrays = {name: archive[name] for name in archive.files}
        arrays["provenance"] = np.array([{"a": 1}], dtype=object)
        np.savez(path, **arrays)
    with pytest.raises(DatasetError, match="rebuild it with") as error:
        load_dataset(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert "pickle.load" not in message  # numpy's advice to unpickle is never passed on


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "bytes"
    path.write_bytes(b"casbo")
    assert sha256_file(path) == hashlib.sha256(b"casbo").hexdigest()
