"""Tests of casbo_bench.molecules.checkpoint: the stored model folders and how they are read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from casbo_bench.cli import main
from casbo_bench.molecules.checkpoint import (
    CURVE_FILE,
    DEFAULT_MODELS_DIR,
    MANIFEST_FILE,
    PREDICTOR_FILE,
    SAMPLING_FILE,
    SEAL,
    STATE_FILE,
    CheckpointError,
    edm_folder,
    load_predictor,
    load_sampler,
    predictor_folder,
    read_checkpoint,
    read_training_state,
    seal_manifest,
)
from casbo_bench.molecules.training.config import PREDICTED_PROPERTIES
from tests.molecules.structures import (
    CHECKPOINT,
    ROOT,
    STORED_PREDICTOR,
    SUBSET,
    copy_checkpoint,
)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_model_folders_default_to_models_in_the_current_folder(tmp_path: Path) -> None:
    assert Path("models") == DEFAULT_MODELS_DIR and not DEFAULT_MODELS_DIR.is_absolute()
    assert edm_folder() == Path("models/edm_qm9_heavy")
    assert predictor_folder() == Path("models/property_predictor")
    assert edm_folder(tmp_path) == tmp_path / "edm_qm9_heavy"
    assert predictor_folder(str(tmp_path)) == tmp_path / "property_predictor"


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


def test_a_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = copy_checkpoint(tmp_path / "copy")
    assert read_checkpoint(folder).sha256(SAMPLING_FILE)
    _flip_a_byte(folder / SAMPLING_FILE)
    with pytest.raises(CheckpointError, match="sha256"):
        read_checkpoint(folder, attempts=2, wait_seconds=0.0)


def test_the_sampler_loader_refuses_a_tampered_file_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_checkpoint(tmp_path / "copy")
    model, checkpoint = load_sampler(folder)
    assert model.diffusion.timesteps == 1000
    assert checkpoint.sha256(SAMPLING_FILE) == checkpoint.manifest["files"][SAMPLING_FILE]["sha256"]
    _flip_a_byte(folder / SAMPLING_FILE)
    with pytest.raises(CheckpointError) as error:
        load_sampler(folder)
    message = str(error.value)
    assert "\n" not in message
    assert f"{SAMPLING_FILE} has sha256" in message and "the manifest says" in message
    assert "corrupt or still being rewritten" in message
    # The command line reports it as that one line and exit status 2.
    arguments = ["evaluate-edm", "--checkpoint", str(folder), "--samples", "1", "--steps", "1"]
    arguments += ["--data", str(SUBSET)]
    arguments += ["--reference-split", "none", "--device", "cpu"]
    assert main([*arguments, "--out", str(tmp_path / "quality.json")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("casbo-bench evaluate-edm: error: ")
    assert "sha256" in lines[0]
    assert not (tmp_path / "quality.json").exists()


def test_the_training_state_is_verified_before_a_resume(tmp_path: Path) -> None:
    folder = copy_checkpoint(tmp_path / "copy")
    (folder / STATE_FILE).write_bytes((CHECKPOINT / STATE_FILE).read_bytes())
    assert read_training_state(folder)["progress"]["step"] > 0
    _flip_a_byte(folder / STATE_FILE)
    with pytest.raises(CheckpointError, match=r"training_state\.pt has sha256"):
        read_training_state(folder)


def test_a_missing_model_folder_names_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no model folder .*--models-dir") as error:
        load_sampler(tmp_path / "absent")
    assert "\n" not in str(error.value)


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"casbo-bench train-edm .*--out"):
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"casbo-bench train-predictor .*--out"):
        load_predictor(tmp_path)
    with pytest.raises(CheckpointError, match=r"casbo-bench train-edm .*--out"):
        load_sampler(tmp_path)


def test_stored_predictor_matches_its_manifest_and_is_small() -> None:
    checkpoint = read_checkpoint(STORED_PREDICTOR, (PREDICTOR_FILE, CURVE_FILE))
    assert len(checkpoint.contents[PREDICTOR_FILE]) < 3 * 2**20
    manifest = checkpoint.manifest
    assert manifest["status"] == "final", "the stored predictor is an interim checkpoint"
    assert manifest["data"]["train_split"] == "property"
    loaded = load_predictor(STORED_PREDICTOR)
    assert loaded.sha256 == checkpoint.sha256(PREDICTOR_FILE)
    assert loaded.model.properties == PREDICTED_PROPERTIES


def test_a_tampered_predictor_is_refused(tmp_path: Path) -> None:
    checkpoint = read_checkpoint(STORED_PREDICTOR, (PREDICTOR_FILE,))
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(checkpoint.manifest))
    data = bytearray(checkpoint.contents[PREDICTOR_FILE])
    data[len(data) // 2] ^= 0xFF
    (tmp_path / PREDICTOR_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_predictor(tmp_path, attempts=1)


def test_loading_a_model_imports_no_training_code() -> None:
    probe = (
        "import sys\n"
        "from casbo_bench.molecules.checkpoint import load_predictor, load_sampler\n"
        f"load_sampler({str(CHECKPOINT)!r})\n"
        f"load_predictor({str(STORED_PREDICTOR)!r})\n"
        "import casbo_bench.molecules.problem\n"
        "print(sorted(m for m in sys.modules if m.startswith('casbo_bench.molecules.training')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=300,
    )
    assert completed.stdout.strip() == "[]"


def test_the_stored_manifests_are_sealed_and_a_relayout_keeps_the_seal(tmp_path: Path) -> None:
    for folder in (CHECKPOINT, STORED_PREDICTOR):
        assert SEAL in json.loads((folder / MANIFEST_FILE).read_text())
    folder = shutil.copytree(STORED_PREDICTOR, tmp_path / "predictor")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True, indent=7))
    assert load_predictor(folder, attempts=1).manifest == manifest


def test_an_unsealed_manifest_is_refused_until_its_files_are_checked_and_it_is_sealed(
    tmp_path: Path,
) -> None:
    folder = shutil.copytree(STORED_PREDICTOR, tmp_path / "predictor")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    del manifest[SEAL]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    with pytest.raises(CheckpointError, match=r"seal_manifest\.py") as error:
        load_predictor(folder, attempts=1)
    assert str(folder) in str(error.value)
    weights = (folder / PREDICTOR_FILE).read_bytes()
    # A file that does not match the unsealed manifest is never sealed over.
    (folder / PREDICTOR_FILE).write_bytes(weights[:-1])
    with pytest.raises(CheckpointError, match="does not match"):
        seal_manifest(folder)
    (folder / PREDICTOR_FILE).write_bytes(weights)
    assert seal_manifest(folder) is True
    assert seal_manifest(folder) is False
    assert (folder / PREDICTOR_FILE).read_bytes() == weights
    sealed = load_predictor(folder, attempts=1).manifest
    assert {key: value for key, value in sealed.items() if key != SEAL} == manifest


def test_the_seal_script_seals_a_folder(tmp_path: Path) -> None:
    folder = shutil.copytree(STORED_PREDICTOR, tmp_path / "predictor")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    del manifest[SEAL]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seal_manifest.py"), str(folder)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": ""},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"{folder}: sealed"
    assert read_checkpoint(folder, (PREDICTOR_FILE, CURVE_FILE), attempts=1)
