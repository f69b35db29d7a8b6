"""Tests of casbo_bench.molecules.training.edm and ``casbo-bench train-edm``, on the committed
subset."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from casbo_bench.cli import main
from casbo_bench.files import sha256_file
from casbo_bench.molecules.checkpoint import (
    CURVE_FILE,
    MANIFEST_FILE,
    SAMPLING_FILE,
    STATE_FILE,
    CheckpointError,
    load_sampler,
)
from casbo_bench.molecules.data import MoleculeDataset, load_dataset
from casbo_bench.molecules.diffusion import N_FEATURES, FixedSizeSampler
from casbo_bench.molecules.training.config import TrainingConfig, TrainingError
from casbo_bench.molecules.training.edm import CURVE_COLUMNS, Trainer, resume_trainer
from tests.molecules.structures import SUBSET

TINY = TrainingConfig(
    hidden=16,
    n_blocks=2,
    batch_size=16,
    warmup_steps=10,
    eval_size=50,
    log_every=10,
    eval_every=20,
    snapshot_every=20,
    spike_window=10,
)


@pytest.fixture(scope="module")
def subset() -> MoleculeDataset:
    return load_dataset(SUBSET)


def _fixed_batch_loss(trainer: Trainer, data: MoleculeDataset) -> float:
    """The model's mean loss on 64 generative molecules with fixed t and noise."""
    rows = data.split_indices("generative")[:64]
    generator = torch.Generator().manual_seed(123)
    t = torch.randint(0, 1001, (64,), generator=generator)
    noise = torch.randn(64, 9, N_FEATURES, generator=generator)
    with torch.no_grad():
        losses = trainer.model.loss(
            torch.from_numpy(data.positions[rows]),
            torch.from_numpy(data.one_hot[rows]),
            torch.from_numpy(data.mask[rows]),
            t,
            noise,
        )
    return float(losses.mean())


def test_a_few_steps_lower_the_loss(subset: MoleculeDataset, tmp_path: Path) -> None:
    config = TrainingConfig(**{**TINY.__dict__, "hidden": 32, "lr": 1e-3})
    trainer = Trainer(config, subset, tmp_path)
    before = _fixed_batch_loss(trainer, subset)
    trainer.run(max_steps=80, progress_bar=False)
    after = _fixed_batch_loss(trainer, subset)
    assert after < 0.8 * before
    assert trainer.progress.molecules_seen == 80 * config.batch_size


def test_resume_continues_exactly(subset: MoleculeDataset, tmp_path: Path) -> None:
    straight = Trainer(TINY, subset, tmp_path / "straight")
    straight.run(max_steps=40, progress_bar=False)
    sliced = Trainer(TINY, subset, tmp_path / "sliced")
    sliced.run(max_steps=17, progress_bar=False)
    resumed = resume_trainer(tmp_path / "sliced", subset)
    assert resumed.progress.step == 17
    resumed.run(max_steps=40, progress_bar=False)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in straight.ema.state_dict().items():
        assert torch.equal(tensor, resumed.ema.state_dict()[name]), name
    assert straight.generator.get_state().equal(resumed.generator.get_state())
    assert (straight.progress.epoch, straight.progress.position) == (
        resumed.progress.epoch,
        resumed.progress.position,
    )
    straight_curve = np.array(straight.progress.curve)
    resumed_curve = np.array(resumed.progress.curve)
    columns = [CURVE_COLUMNS.index(name) for name in ("step", "train_loss", "ema_val_loss")]
    np.testing.assert_array_equal(straight_curve[:, columns], resumed_curve[:, columns])
    assert len(resumed.progress.slices) == 2


def test_checkpoint_files_and_manifest(subset: MoleculeDataset, tmp_path: Path) -> None:
    trainer = Trainer(TINY, subset, tmp_path, data_path=SUBSET)
    trainer.run(max_steps=20, progress_bar=False)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    for name in (SAMPLING_FILE, STATE_FILE, CURVE_FILE):
        assert manifest["files"][name]["sha256"] == sha256_file(tmp_path / name)
    assert manifest["data"]["sha256"] == sha256_file(SUBSET)
    assert manifest["training"]["steps"] == 20
    assert manifest["config"]["hidden"] == TINY.hidden
    assert manifest["training"]["slices"][0]["device"] == "cpu"
    assert manifest["training"]["slices"][0]["hardware"]["logical_cores"] >= 1
    curve = pd.read_csv(tmp_path / CURVE_FILE)
    assert tuple(curve.columns) == CURVE_COLUMNS
    assert curve["step"].tolist() == [10, 20]
    assert math.isnan(curve["ema_val_loss"].iloc[0]) and curve["ema_val_loss"].iloc[1] > 0
    assert trainer.sampling_state()["ema_fp16"]["denoiser.egnn.embedding_in.weight"].dtype == (
        torch.float16
    )


def test_sampling_checkpoint_loads_the_ema_weights(subset: MoleculeDataset, tmp_path: Path) -> None:
    trainer = Trainer(TINY, subset, tmp_path)
    trainer.run(max_steps=20, progress_bar=False)
    pretrained, _ = load_sampler(tmp_path)
    assert pretrained.step == 20
    assert pretrained.atom_count_histogram.sum() == len(subset.split_indices("generative"))
    for name, tensor in trainer.ema.state_dict().items():
        loaded = pretrained.diffusion.state_dict()[name]
        torch.testing.assert_close(loaded, tensor, rtol=1e-3, atol=1e-4)
    sampler = FixedSizeSampler(pretrained.diffusion, n_atoms=4, n_steps=3)
    noise = torch.randn(2, sampler.n_injections, sampler.dim, generator=torch.Generator())
    assert sampler(noise).positions.shape == (2, 4, 3)
    with pytest.raises(CheckpointError, match=r"missing\.pt|missing"):
        load_sampler(tmp_path / "missing")


def test_divergence_guard_restores_the_snapshot_and_halves_lr(
    subset: MoleculeDataset, tmp_path: Path
) -> None:
    trainer = Trainer(TINY, subset, tmp_path)
    trainer.run(max_steps=20, progress_bar=False)
    trainer._take_snapshot()
    snapshot = {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}
    for _ in range(3):
        trainer._guard(trainer.train_step())
    with torch.no_grad():
        for parameter in trainer.model.parameters():
            parameter.add_(1.0)
    trainer._guard(math.nan)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, snapshot[name]), name
    assert trainer.progress.lr_scale == 0.5
    assert trainer.progress.guard_events[-1]["reason"] == "non-finite loss"
    # a sustained spike over the window triggers it too
    reference = trainer._snapshot_loss
    for _ in range(TINY.spike_window):
        trainer._guard(10.0 * reference)
    assert trainer.progress.lr_scale == 0.25
    assert "mean loss" in trainer.progress.guard_events[-1]["reason"]


def test_resume_refuses_another_model(subset: MoleculeDataset, tmp_path: Path) -> None:
    Trainer(TINY, subset, tmp_path).run(max_steps=1, progress_bar=False)
    with pytest.raises(TrainingError, match="keeps its saved options"):
        resume_trainer(tmp_path, subset, overrides={"hidden": 64})
    with pytest.raises(TrainingError, match="start without --resume"):
        resume_trainer(tmp_path / "empty", subset)
    resumed = resume_trainer(tmp_path, subset, overrides={"checkpoint_minutes": 1.0})
    assert resumed.config.checkpoint_minutes == 1.0


def test_resume_may_set_a_learning_rate_decay(subset: MoleculeDataset, tmp_path: Path) -> None:
    """A run started at a constant rate is annealed on resume: the rate follows the cosine
    from the given step to ``final_lr_fraction * lr`` and stays there; the peak rate itself
    may not change."""
    Trainer(TINY, subset, tmp_path).run(max_steps=12, progress_bar=False)
    with pytest.raises(TrainingError, match="keeps its saved options"):
        resume_trainer(tmp_path, subset, overrides={"lr": 1e-4})
    decay = {"decay_start_step": 12, "decay_steps": 8, "final_lr_fraction": 0.25}
    resumed = resume_trainer(tmp_path, subset, overrides=decay)
    rates = []
    for _ in range(12):
        rates.append(resumed.learning_rate() / TINY.lr)
        resumed.train_step()
    assert rates[0] == pytest.approx(1.0)
    assert rates[4] == pytest.approx(0.25 + 0.75 * 0.5)  # half way: cos(pi / 2) = 0
    assert all(later < earlier for earlier, later in itertools.pairwise(rates[:9]))
    assert rates[8:] == pytest.approx([0.25] * 4)
    resumed.save_checkpoint()
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert {name: manifest["config"][name] for name in decay} == decay


def test_a_decay_added_on_resume_never_begins_in_the_past(
    subset: MoleculeDataset, tmp_path: Path
) -> None:
    """Without a start the decay begins at the current step (the rate follows the cosine
    from its peak); a start before it is refused with the fix, the saved default start of
    0 included; each slice records the schedule it ran with."""
    Trainer(TINY, subset, tmp_path).run(max_steps=12, progress_bar=False)
    for start in (3, 0):
        with pytest.raises(TrainingError, match="give --decay-start-step 12 or later"):
            resume_trainer(
                tmp_path, subset, overrides={"decay_start_step": start, "decay_steps": 8}
            )
    later = resume_trainer(tmp_path, subset, overrides={"decay_start_step": 20, "decay_steps": 8})
    assert later.learning_rate() == pytest.approx(TINY.lr)
    resumed = resume_trainer(tmp_path, subset, overrides={"decay_steps": 8})
    assert resumed.config.decay_start_step == 12
    assert resumed.learning_rate() == pytest.approx(TINY.lr)
    resumed.run(max_steps=14, progress_bar=False)
    first, second = resumed.progress.slices
    assert first["options"]["decay_steps"] == 0 and second["options"]["decay_start_step"] == 12
    again = resume_trainer(tmp_path, subset)
    assert again.config.decay_start_step == 12 and again.config.decay_steps == 8


def test_a_decay_under_way_is_not_reshaped_so_the_rate_jumps(
    subset: MoleculeDataset, tmp_path: Path
) -> None:
    """Mid-decay (step 14 of a decay from 12 over 8 steps) another final rate, a shorter
    decay or a later start would move the rate at once: each is refused."""
    Trainer(TINY, subset, tmp_path).run(max_steps=12, progress_bar=False)
    resume_trainer(tmp_path, subset, overrides={"decay_steps": 8}).run(
        max_steps=14, progress_bar=False
    )
    for change in ({"final_lr_fraction": 0.5}, {"decay_steps": 2}, {"decay_start_step": 30}):
        with pytest.raises(TrainingError, match="would move the rate at step 14"):
            resume_trainer(tmp_path, subset, overrides=change)


def test_config_validation() -> None:
    with pytest.raises(TrainingError, match="must be positive"):
        TrainingConfig(batch_size=0)
    with pytest.raises(TrainingError, match="ema_decay"):
        TrainingConfig(ema_decay=1.0)
    with pytest.raises(TrainingError, match="final_lr_fraction"):
        TrainingConfig(decay_steps=10, final_lr_fraction=0.0)
    assert TrainingConfig().decay_factor(10**6) == 1.0


def test_command_line_trains_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    common = ["train-edm", "--data", str(SUBSET), "--out", str(out), "--threads", "1"]
    common += ["--no-progress", "--device", "cpu"]
    tiny = ["--hidden", "8", "--blocks", "1", "--batch", "8"]
    assert main([*common, *tiny, "--max-steps", "3"]) == 0
    assert json.loads((out / MANIFEST_FILE).read_text())["training"]["steps"] == 3
    capsys.readouterr()
    assert main([*common, *tiny, "--max-steps", "3"]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert line.startswith("casbo-bench train-edm: error: ") and "--resume" in line
    assert main([*common, "--resume", "--max-steps", "5"]) == 0
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["training"]["steps"] == 5
    assert manifest["config"]["hidden"] == 8


def test_resume_if_present_starts_then_continues(tmp_path: Path) -> None:
    """The workflow's one set of arguments: the first call starts, a later one continues."""
    out = tmp_path / "model"
    common = ["train-edm", "--data", str(SUBSET), "--out", str(out), "--threads", "1"]
    common += ["--no-progress", "--device", "cpu", "--hidden", "8", "--blocks", "1"]
    common += ["--batch", "8", "--resume-if-present"]
    assert main([*common, "--max-steps", "2"]) == 0
    assert json.loads((out / MANIFEST_FILE).read_text())["training"]["steps"] == 2
    assert main([*common, "--max-steps", "4"]) == 0
    assert json.loads((out / MANIFEST_FILE).read_text())["training"]["steps"] == 4
