"""Tests of casbo_bench.molecules.evaluate: the stored checkpoint, sampling, the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from casbo_bench.molecules.evaluate import (
    CheckpointError,
    load_verified_model,
    main,
    read_checkpoint,
    rebuild_samples,
    record_quality,
    sample_unguided,
)
from casbo_bench.molecules.training import MANIFEST_FILE, SAMPLING_FILE

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "edm_qm9_heavy"
SUBSET = ROOT / "tests" / "data" / "qm9_subset.npz"


def test_stored_checkpoint_matches_its_manifest() -> None:
    # A training run may be rewriting the folder; read_checkpoint reads manifest and files
    # consistently (and retries), so a mismatch here means a corrupt or stale checkpoint.
    manifest = json.loads((CHECKPOINT / MANIFEST_FILE).read_text())
    names = sorted(manifest["files"])
    assert SAMPLING_FILE in names
    checkpoint = read_checkpoint(CHECKPOINT, names)
    assert set(checkpoint.contents) == set(names)
    for name in names:
        assert len(checkpoint.contents[name]) == checkpoint.manifest["files"][name]["bytes"]
    assert sum(len(data) for data in checkpoint.contents.values()) < 25 * 2**20


def _copy_checkpoint(target: Path) -> Path:
    checkpoint = read_checkpoint(CHECKPOINT)
    target.mkdir()
    (target / MANIFEST_FILE).write_text(json.dumps(checkpoint.manifest))
    (target / SAMPLING_FILE).write_bytes(checkpoint.contents[SAMPLING_FILE])
    return target


def test_a_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = _copy_checkpoint(tmp_path / "copy")
    assert read_checkpoint(folder).sha256(SAMPLING_FILE)
    data = bytearray((folder / SAMPLING_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / SAMPLING_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        read_checkpoint(folder, attempts=2, wait_seconds=0.0)


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"casbo_bench\.molecules\.train"):
        read_checkpoint(tmp_path)


def test_unguided_samples_are_seeded_and_rebuilt(tmp_path: Path) -> None:
    model, _ = load_verified_model(_copy_checkpoint(tmp_path / "copy"))
    first = sample_unguided(model, 6, seed=3, n_steps=3, batch_size=4)
    second = sample_unguided(model, 6, seed=3, n_steps=3, batch_size=4)
    other = sample_unguided(model, 6, seed=4, n_steps=3, batch_size=4)
    assert torch.equal(first.positions, second.positions)
    assert torch.equal(first.atom_types, second.atom_types)
    assert not torch.equal(first.positions, other.positions)
    rebuilt = rebuild_samples(first)
    assert len(rebuilt) == 6
    assert [m.n_atoms for m in rebuilt] == first.num_atoms.tolist()


def test_command_line_writes_metrics_and_rows(tmp_path: Path) -> None:
    folder = _copy_checkpoint(tmp_path / "copy")
    out, rows = tmp_path / "quality.json", tmp_path / "samples.csv"
    arguments = ["--checkpoint", str(folder), "--data", str(SUBSET), "--samples", "5"]
    arguments += ["--steps", "2", "--device", "cpu", "--reference-split", "test"]
    main([*arguments, "--xtb-samples", "1", "--out", str(out), "--csv", str(rows)])
    result = json.loads(out.read_text())
    assert result["sampler"]["steps"] == 2 and result["sampler"]["n_samples"] == 5
    assert (
        result["checkpoint"]["sampling_sha256"]
        == json.loads((folder / MANIFEST_FILE).read_text())["files"][SAMPLING_FILE]["sha256"]
    )
    assert result["samples"]["n_molecules"] == 5
    assert result["reference"]["split"] == "test"
    assert result["reference"]["validity"] >= 0.97
    assert "explicit hydrogens" in result["note"]
    with rows.open() as stream:
        table = list(csv.DictReader(stream))
    assert len(table) == 5
    assert {"smiles", "valid", "molecule_stable", "qed"} <= set(table[0])


def test_command_line_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--steps" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--steps"):
        main(["--steps", "0", "--out", "unused.json"])


def test_metrics_are_recorded_in_the_manifest_of_the_measured_weights(tmp_path: Path) -> None:
    folder = _copy_checkpoint(tmp_path / "copy")
    out = tmp_path / "quality.json"
    arguments = ["--checkpoint", str(folder), "--data", str(SUBSET), "--samples", "4"]
    arguments += ["--steps", "2", "--device", "cpu", "--reference-split", "none"]
    main([*arguments, "--out", str(out), "--record-in-manifest"])
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    quality = manifest["quality"]
    assert quality["checkpoint"]["sampling_sha256"] == manifest["files"][SAMPLING_FILE]["sha256"]
    assert quality["sampler"] == json.loads(out.read_text())["sampler"]
    assert quality["samples"]["n_molecules"] == 4
    # Other weights than the measured ones: the record is refused, the JSON still written.
    with pytest.raises(CheckpointError, match="changed while it was measured"):
        record_quality(folder, quality, "0" * 64)
    assert json.loads((folder / MANIFEST_FILE).read_text())["quality"] == quality
