"""Tests of casbo_bench.molecules.evaluate and its command line, ``casbo-bench evaluate-edm``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from casbo_bench.cli import main
from casbo_bench.molecules.checkpoint import (
    MANIFEST_FILE,
    SAMPLING_FILE,
    CheckpointError,
    load_sampler,
    record_quality,
)
from casbo_bench.molecules.evaluate import rebuild_samples, sample_unguided
from tests.molecules.structures import SUBSET, copy_checkpoint


def test_unguided_samples_are_seeded_and_rebuilt(tmp_path: Path) -> None:
    model, _ = load_sampler(copy_checkpoint(tmp_path / "copy"))
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
    folder = copy_checkpoint(tmp_path / "copy")
    out, rows = tmp_path / "quality.json", tmp_path / "samples.csv"
    arguments = ["evaluate-edm", "--checkpoint", str(folder), "--data", str(SUBSET)]
    arguments += ["--samples", "5", "--steps", "2", "--device", "cpu", "--reference-split", "test"]
    assert main([*arguments, "--xtb-samples", "1", "--out", str(out), "--csv", str(rows)]) == 0
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


def test_the_models_dir_locates_the_checkpoint(tmp_path: Path) -> None:
    copy_checkpoint(tmp_path / "models" / "edm_qm9_heavy")
    out = tmp_path / "quality.json"
    arguments = ["evaluate-edm", "--models-dir", str(tmp_path / "models"), "--data", str(SUBSET)]
    arguments += ["--samples", "2", "--steps", "1", "--device", "cpu", "--reference-split", "none"]
    assert main([*arguments, "--out", str(out)]) == 0
    directory = json.loads(out.read_text())["checkpoint"]["directory"]
    assert directory == str(tmp_path / "models" / "edm_qm9_heavy")


def test_command_line_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate-edm", "--help"])
    assert exit_info.value.code == 0
    assert "--steps" in capsys.readouterr().out
    assert main(["evaluate-edm", "--steps", "0", "--out", "unused.json"]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert line.startswith(
        "casbo-bench evaluate-edm: error: argument --steps: must be an integer >= 1"
    )
    assert line.endswith("see 'casbo-bench evaluate-edm --help'")
    assert not Path("unused.json").exists()


def test_metrics_are_recorded_in_the_manifest_of_the_measured_weights(tmp_path: Path) -> None:
    folder = copy_checkpoint(tmp_path / "copy")
    headline = json.loads((folder / MANIFEST_FILE).read_text()).get("quality")
    out = tmp_path / "quality.json"
    arguments = ["evaluate-edm", "--checkpoint", str(folder), "--data", str(SUBSET)]
    arguments += ["--samples", "4", "--steps", "2", "--device", "cpu", "--reference-split", "none"]
    assert main([*arguments, "--out", str(out), "--record-in-manifest"]) == 0
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    # A respaced sampler's quality sits beside the full sampler's, keyed by its steps.
    assert manifest.get("quality") == headline
    quality = manifest["quality_respaced"]["2"]
    assert quality["checkpoint"]["sampling_sha256"] == manifest["files"][SAMPLING_FILE]["sha256"]
    assert quality["sampler"] == json.loads(out.read_text())["sampler"]
    assert quality["samples"]["n_molecules"] == 4
    full = {**quality, "sampler": {**quality["sampler"], "steps": quality["sampler"]["timesteps"]}}
    record_quality(folder, full, quality["checkpoint"]["sampling_sha256"])
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["quality"] == full
    assert manifest["quality_respaced"]["2"] == quality
    # Other weights than the measured ones: the record is refused, the JSON still written.
    with pytest.raises(CheckpointError, match="changed while it was measured"):
        record_quality(folder, quality, "0" * 64)
    assert json.loads((folder / MANIFEST_FILE).read_text())["quality_respaced"]["2"] == quality
