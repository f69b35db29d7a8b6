"""Fault suite: a damaged file in a model folder, one per case.

Two small model folders are written once by the training code itself (an EDM after two
steps and a predictor after one epoch, on the committed QM9 subset); each case copies one,
damages one of its files (a flipped byte, a changed digit, a truncation) and asserts that
the loader that reads the file refuses it with one line naming the file and the way out,
before a byte of it is unpickled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from casbo_bench.cli import main
from casbo_bench.molecules import checkpoint
from casbo_bench.molecules.checkpoint import (
    CURVE_FILE,
    EDM_FOLDER,
    MANIFEST_FILE,
    PREDICTOR_FILE,
    PREDICTOR_FOLDER,
    SAMPLING_FILE,
    SEAL,
    STATE_FILE,
    CheckpointError,
    load_predictor,
    load_sampler,
    read_checkpoint,
    read_training_state,
)
from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.training.config import PredictorConfig, TrainingConfig
from casbo_bench.molecules.training.edm import Trainer
from casbo_bench.molecules.training.predictor import train_and_save
from tests.molecules.structures import SUBSET

pytestmark = pytest.mark.fault("flipped byte in a model or state file")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A models folder with a tiny EDM and a tiny predictor, written by their training (on
    one thread: on a shared machine, threads of tiny operations mostly wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    dataset = load_dataset(SUBSET)
    edm = TrainingConfig(hidden=8, n_blocks=1, batch_size=16, eval_size=20, log_every=1)
    Trainer(edm, dataset, root / EDM_FOLDER, data_path=SUBSET).run(max_steps=2, progress_bar=False)
    predictor = PredictorConfig(hidden=8, n_blocks=1, batch_size=64, epochs=1, patience=1)
    train_and_save(dataset, predictor, root / PREDICTOR_FOLDER, SUBSET)
    yield root
    torch.set_num_threads(threads)


# --- damages -------------------------------------------------------------------------------


def flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def flip_first(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


def flip_last(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def change_digit_after(marker: str) -> Callable[[Path], None]:
    """A damage that keeps the manifest valid JSON: the first digit after ``marker``, + 1."""

    def damage(path: Path) -> None:
        text = path.read_text()
        start = text.index(marker) + len(marker)
        at = next(i for i in range(start, len(text)) if text[i].isdigit())
        path.write_text(text[:at] + str((int(text[at]) + 1) % 10) + text[at + 1 :])

    damage.__name__ = f"change a digit after {marker!r}"
    return damage


def drop_the_seal(path: Path) -> None:
    manifest = json.loads(path.read_text())
    del manifest[SEAL]
    path.write_text(json.dumps(manifest, indent=2))


# --- loaders -------------------------------------------------------------------------------


def _sampler(folder: Path) -> Any:
    return load_sampler(folder, attempts=1)


def _state(folder: Path) -> Any:
    return read_training_state(folder, attempts=1)


def _predictor(folder: Path) -> Any:
    return load_predictor(folder, attempts=1)


def _curve(folder: Path) -> Any:
    return read_checkpoint(folder, (CURVE_FILE,), attempts=1)


RESTORE = "restore"
START_OVER = "delete"

FILE_CASES = [
    # (folder, damaged file, damage, loader, the fix the error line gives)
    *[
        (EDM_FOLDER, name, damage, loader, fix)
        for name, loader, fix in (
            (SAMPLING_FILE, _sampler, RESTORE),
            (STATE_FILE, _state, START_OVER),
            (CURVE_FILE, _curve, RESTORE),
        )
        for damage in (flip_middle, flip_first, flip_last, truncate)
    ],
    *[
        (PREDICTOR_FOLDER, name, damage, loader, RESTORE)
        for name, loader in ((PREDICTOR_FILE, _predictor), (CURVE_FILE, _curve))
        for damage in (flip_middle, flip_first, truncate)
    ],
    (PREDICTOR_FOLDER, PREDICTOR_FILE, empty, _predictor, RESTORE),
    (EDM_FOLDER, STATE_FILE, empty, _state, START_OVER),
    *[
        (EDM_FOLDER, MANIFEST_FILE, damage, loader, RESTORE)
        for damage, loader in (
            (flip_middle, _sampler),
            (flip_first, _state),
            (flip_last, _sampler),
            (truncate, _sampler),
            (empty, _state),
            (change_digit_after(f'"{SAMPLING_FILE}": {{\n      "sha256": "'), _sampler),
            (change_digit_after(f'"{STATE_FILE}": {{\n      "sha256": "'), _state),
            (change_digit_after('"steps": '), _sampler),
            (change_digit_after(f'"{SEAL}": "'), _sampler),
            (drop_the_seal, _sampler),
        )
    ],
    *[
        (PREDICTOR_FOLDER, MANIFEST_FILE, damage, _predictor, RESTORE)
        for damage in (
            flip_middle,
            truncate,
            change_digit_after('"std": '),
            change_digit_after('"p50": '),
            drop_the_seal,
        )
    ],
]


def _case_id(case: tuple[str, str, Callable[[Path], None], Any, str]) -> str:
    folder, name, damage, _, _ = case
    return f"{folder}/{name}: {damage.__name__}"


@pytest.mark.parametrize(
    ("folder_name", "name", "damage", "loader", "fix"),
    FILE_CASES,
    ids=[_case_id(case) for case in FILE_CASES],
)
def test_a_damaged_file_is_refused_with_one_line_naming_it(
    folder_name: str,
    name: str,
    damage: Callable[[Path], None],
    loader: Callable[[Path], Any],
    fix: str,
    models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = shutil.copytree(models / folder_name, tmp_path / folder_name)
    loader(folder)  # the undamaged copy loads
    damage(folder / name)

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load ran on unverified bytes")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(CheckpointError) as error:
        loader(folder)
    message = str(error.value)
    assert "\n" not in message
    assert str(folder / name) in message, message
    assert fix in message, message
    if name == STATE_FILE:
        assert f"delete {folder / STATE_FILE} to start the training over" in message


def _refused_by_the_command_line(
    arguments: list[str], name: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    capsys.readouterr()
    assert main(arguments) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"casbo-bench {arguments[0]}: error: "), lines[0]
    assert str(name) in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read a model folder with retries (a training run may be rewriting it);
    the damage here is permanent, so the pauses between reads are skipped."""
    monkeypatch.setattr(checkpoint.time, "sleep", lambda seconds: None)


@pytest.mark.usefixtures("no_waiting")
def test_a_resume_from_a_flipped_state_is_refused(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shutil.copytree(models / EDM_FOLDER, tmp_path / EDM_FOLDER)
    flip_middle(folder / STATE_FILE)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    arguments = ["train-edm", "--data", str(SUBSET), "--out", str(folder), "--resume"]
    line = _refused_by_the_command_line(
        [*arguments, "--max-steps", "4", "--device", "cpu", "--no-progress"],
        folder / STATE_FILE,
        capsys,
    )
    assert f"delete {folder / STATE_FILE} to start the training over" in line
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


@pytest.mark.usefixtures("no_waiting")
def test_a_molecule_run_on_a_flipped_sampler_is_refused(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(models, tmp_path / "models")
    flip_middle(tmp_path / "models" / EDM_FOLDER / SAMPLING_FILE)
    out = tmp_path / "trace.parquet"
    arguments = ["run", "--method", "random", "--problem", "mol-qed", "--dim", "28"]
    arguments += ["--steps", "5", "--seeds", "0", "--budget", "2", "--device", "cpu"]
    arguments += ["--models-dir", str(tmp_path / "models"), "--out", str(out)]
    _refused_by_the_command_line(
        arguments, tmp_path / "models" / EDM_FOLDER / SAMPLING_FILE, capsys
    )
    assert not out.exists()


@pytest.mark.usefixtures("no_waiting")
def test_a_report_with_a_flipped_predictor_is_refused(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shutil.copytree(models / PREDICTOR_FOLDER, tmp_path / PREDICTOR_FOLDER)
    change_digit_after('"std": ')(folder / MANIFEST_FILE)
    arguments = ["molecule-report", "--tables-dir", str(tmp_path / "tables")]
    arguments += ["--figures-dir", str(tmp_path / "figures"), "--sdf", str(tmp_path / "b.sdf")]
    arguments += ["--predictor", str(folder), str(tmp_path / "unread.parquet")]
    _refused_by_the_command_line(arguments, folder / MANIFEST_FILE, capsys)
    assert not (tmp_path / "tables").exists() and not (tmp_path / "b.sdf").exists()
