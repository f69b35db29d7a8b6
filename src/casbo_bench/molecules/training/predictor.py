"""Training the property predictor on QM9's ``property`` split, and its model folder.

The network is :class:`casbo_bench.molecules.property_model.PropertyPredictor`. It is
trained on the QM9 half the diffusion model never saw (the ``property`` split),
early-stopped on ``validation`` and measured once on ``test`` (``casbo-bench
train-predictor``, :mod:`casbo_bench.cli.train_predictor`).

**Training.** Targets are standardized per property with the training split's mean and
standard deviation, the loss is their mean absolute error (MAE, the metric reported).
AdamW, a cosine learning-rate decay over a fixed number of epochs, batches in a seeded
permutation per epoch (``default_rng([seed, epoch])``), the validation MAE after every epoch
(logged); the weights of the best validation epoch are kept (early stopping, with a
patience in epochs). Everything is seeded, so a run is reproducible on the same hardware,
thread count and device. A wall-time cap may end a run early; the manifest says whether it
did.

**Files** in the output folder (the layout of :mod:`casbo_bench.molecules.checkpoint`), each
written to a temporary file and renamed:

- ``predictor.pt``: the float32 weights of the best epoch, the config and the target
  normalization (about 0.7 MB);
- ``curve.csv``: per epoch the training loss, the validation MAE per property and the lr;
- ``manifest.json`` (last, sealed): sha256 of both files, the config, the data file's sha256 and
  provenance, training time, device and hardware, the test MAE per property beside EDM's
  all-atom classifiers' (Hoogeboom et al. 2022, Table 3: alpha 0.10 bohr^3, gap 64 meV, mu
  0.043 D; not comparable like for like), and the property split's percentiles (the
  molecule tasks' targets).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from casbo_bench.files import sha256_file, write_atomically
from casbo_bench.molecules.checkpoint import CURVE_FILE, PREDICTOR_FILE, write_manifest
from casbo_bench.molecules.data import PROPERTY_UNITS, MoleculeDataset
from casbo_bench.molecules.property_model import PropertyPredictor
from casbo_bench.molecules.training.config import PREDICTED_PROPERTIES, PredictorConfig
from casbo_bench.provenance import hardware_description

logger = logging.getLogger(__name__)

TARGET_PERCENTILES: tuple[int, ...] = (10, 50, 90)
"""Percentiles of the property split recorded in the manifest (task targets read them)."""

EDM_CLASSIFIER_MAE: dict[str, dict[str, float | str]] = {
    "alpha": {"value": 0.10, "unit": "bohr^3"},
    "gap": {"value": 0.064, "unit": "eV"},
    "mu": {"value": 0.043, "unit": "Debye"},
}
"""EDM's property classifiers' test MAE (Hoogeboom et al. 2022, Table 3, "QM9 (lower bound)"):
all-atom EGNNs, not comparable like for like with this heavy-atom predictor."""


@dataclass
class _Split:
    """Tensors of one split: ``M x 9 x 4`` one-hot, ``M x 9 x 3`` positions, ``M x 9`` mask
    and ``M x P`` standardized targets."""

    one_hot: Tensor
    positions: Tensor
    mask: Tensor
    targets: Tensor

    @classmethod
    def from_dataset(
        cls, dataset: MoleculeDataset, properties: Sequence[str], mean: Tensor, std: Tensor
    ) -> _Split:
        raw = np.stack([dataset.property(name) for name in properties], axis=1)
        return cls(
            one_hot=torch.from_numpy(dataset.one_hot),
            positions=torch.from_numpy(dataset.positions),
            mask=torch.from_numpy(dataset.mask),
            targets=(torch.from_numpy(raw.astype(np.float32)) - mean.cpu()) / std.cpu(),
        )

    def to(self, device: torch.device) -> _Split:
        """The split with every tensor on ``device`` (moved once, not per batch)."""
        return _Split(
            one_hot=self.one_hot.to(device),
            positions=self.positions.to(device),
            mask=self.mask.to(device),
            targets=self.targets.to(device),
        )

    def __len__(self) -> int:
        return int(self.targets.shape[0])


@torch.no_grad()
def split_mae(model: PropertyPredictor, split: _Split, batch_size: int = 1024) -> NDArray[Any]:
    """The MAE per property in physical units, a ``P`` array (standardized MAE * std).

    Runs on the model's device, whatever device ``split`` is on; the result is on the CPU.
    """
    model.eval()
    device = model.std.device
    total = torch.zeros(len(model.properties), dtype=torch.float64, device=device)
    for start in range(0, len(split), batch_size):
        part = slice(start, start + batch_size)
        error = model(
            split.one_hot[part].to(device),
            split.positions[part].to(device),
            split.mask[part].to(device),
        )
        total += (error - split.targets[part].to(device)).abs().sum(dim=0).double()
    return (total / len(split) * model.std.double()).cpu().numpy()


def dataset_mae(
    model: PropertyPredictor, dataset: MoleculeDataset, split: str = "test"
) -> NDArray[Any]:
    """The MAE per property of ``model`` on ``split`` of ``dataset``, a ``P`` array in
    physical units."""
    data = _Split.from_dataset(dataset.subset(split), model.properties, model.mean, model.std)
    return split_mae(model, data)


@dataclass
class TrainingRecord:
    """What a training run did: epochs, curve, the best epoch and its validation MAE."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_validation: float = math.inf
    stopped_by: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)


def train_predictor(
    dataset: MoleculeDataset,
    config: PredictorConfig,
    max_seconds: float | None = None,
    on_improvement: Callable[[PropertyPredictor, TrainingRecord], None] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[PropertyPredictor, TrainingRecord]:
    """Train on ``property``, early-stop on ``validation``; the best epoch's model.

    The model is initialised on the CPU, so every device starts from the same weights, and
    then moved to ``device`` with the data.

    Args:
        dataset: the cached QM9 (with its ``property`` and ``validation`` splits).
        config: the hyperparameters.
        max_seconds: a wall-time cap (None: run the schedule's epochs).
        on_improvement: called with the model and the record after every epoch that
            improves the validation MAE (an interim checkpoint).
        device: where the model trains (a resolved device: see
            :func:`casbo_bench.devices.resolve_device`); the model is returned there.
    """
    device = torch.device(device)
    properties = config.properties
    train = dataset.subset("property")
    raw = np.stack([train.property(name) for name in properties], axis=1).astype(np.float64)
    mean = torch.tensor(raw.mean(axis=0), dtype=torch.float32)
    std = torch.tensor(raw.std(axis=0), dtype=torch.float32)
    train_split = _Split.from_dataset(train, properties, mean, std).to(device)
    validation = _Split.from_dataset(dataset.subset("validation"), properties, mean, std)
    validation = validation.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = PropertyPredictor(properties, config.hidden, config.n_blocks)
    model.mean.copy_(mean)
    model.std.copy_(std)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    record = TrainingRecord()
    best_state = copy.deepcopy(model.state_dict())
    started, cpu_started = time.monotonic(), time.process_time()
    step = 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.from_numpy(
            np.random.default_rng([config.seed, epoch]).permutation(len(train_split))
        ).to(device)
        losses = []
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            progress = step / max(total_steps - 1, 1)
            scale = config.final_lr_fraction + (1 - config.final_lr_fraction) * 0.5 * (
                1 + math.cos(math.pi * progress)
            )
            for group in optimizer.param_groups:
                group["lr"] = config.lr * scale
            predicted = model(
                train_split.one_hot[rows], train_split.positions[rows], train_split.mask[rows]
            )
            loss = (predicted - train_split.targets[rows]).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        mae = split_mae(model, validation)
        normalized = float(np.mean(mae / model.std.double().cpu().numpy()))
        record.epochs_run = epoch + 1
        record.curve.append(
            {
                "epoch": epoch + 1,
                "wall_seconds": round(time.monotonic() - started, 1),
                "train_loss": float(np.mean(losses)),
                "validation_mae_normalized": normalized,
                **{
                    f"validation_mae_{name}": float(v)
                    for name, v in zip(properties, mae, strict=True)
                },
                "lr": config.lr * scale,
            }
        )
        if normalized < record.best_validation:
            record.best_validation, record.best_epoch = normalized, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
            if on_improvement is not None:
                on_improvement(model, record)
        logger.info(
            "epoch %d/%d: train %.4f, validation MAE %s (normalized %.4f), %.0f s",
            epoch + 1,
            config.epochs,
            np.mean(losses),
            ", ".join(f"{name} {v:.4g}" for name, v in zip(properties, mae, strict=True)),
            normalized,
            time.monotonic() - started,
        )
        if epoch + 1 - record.best_epoch >= config.patience:
            record.stopped_by = f"early stopping ({config.patience} epochs without improvement)"
            break
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            record.stopped_by = f"wall-time cap ({max_seconds:.0f} s)"
            break
    record.stopped_by = record.stopped_by or "schedule complete"
    record.wall_seconds = time.monotonic() - started
    record.cpu_seconds = time.process_time() - cpu_started
    model.load_state_dict(best_state)
    model.eval().requires_grad_(False)
    return model, record


def property_percentiles(
    dataset: MoleculeDataset, properties: Sequence[str] = PREDICTED_PROPERTIES
) -> dict[str, dict[str, float]]:
    """``{property: {"p10": ..., "p50": ..., "p90": ...}}`` over the ``property`` split."""
    train = dataset.subset("property")
    return {
        name: {
            f"p{q}": float(np.percentile(train.property(name).astype(np.float64), q))
            for q in TARGET_PERCENTILES
        }
        for name in properties
    }


def _curve_bytes(curve: Sequence[dict[str, float]]) -> bytes:
    text = io.StringIO()
    if curve:
        writer = csv.DictWriter(text, fieldnames=list(curve[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(curve)
    return text.getvalue().encode()


def save_predictor(
    model: PropertyPredictor,
    config: PredictorConfig,
    record: TrainingRecord,
    out_dir: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    dataset: MoleculeDataset,
    test_mae: NDArray[Any] | None,
    device: torch.device | str,
    hardware: dict[str, Any],
) -> Path:
    """Write ``predictor.pt``, ``curve.csv`` and ``manifest.json`` (module docstring).

    ``test_mae`` None writes an interim checkpoint of a run still training (the manifest
    says so, and has no test MAE). ``device`` is where it trained, ``hardware`` the
    machine (:func:`casbo_bench.provenance.hardware_description`, taken at the start).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {
        "format_version": 1,
        "model_options": config.model_options(),
        "weights": {name: t.detach().cpu().float() for name, t in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomically(out / PREDICTOR_FILE, lambda stream: stream.write(buffer.getvalue()))
    curve = _curve_bytes(record.curve)
    write_atomically(out / CURVE_FILE, lambda stream: stream.write(curve))
    files = {
        name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
        for name in (PREDICTOR_FILE, CURVE_FILE)
    }
    manifest = {
        "model": "E(3)-invariant EGNN property predictor, heavy-atom QM9",
        "files": files,
        "config": dataclasses.asdict(config),
        "status": "final" if test_mae is not None else "interim: training in progress",
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "normalization": {
            name: {"mean": float(m), "std": float(s)}
            for name, m, s in zip(
                config.properties, model.mean.tolist(), model.std.tolist(), strict=True
            )
        },
        "data": {
            "file": str(data_path),
            "sha256": sha256_file(data_path),
            "provenance": dataset.provenance,
            "train_split": "property",
            "validation_split": "validation",
            "test_split": "test",
        },
        "training": {
            "epochs_run": record.epochs_run,
            "best_epoch": record.best_epoch,
            "best_validation_mae_normalized": record.best_validation,
            "stopped_by": record.stopped_by,
            "wall_seconds": round(record.wall_seconds, 1),
            # On a shared machine wall time overstates the work; CPU time is this process's.
            "cpu_seconds": round(record.cpu_seconds, 1),
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "device": str(device),
            "hardware": hardware,
        },
        "test_mae": None
        if test_mae is None
        else {
            name: {"value": float(value), "unit": PROPERTY_UNITS[name]}
            for name, value in zip(config.properties, test_mae, strict=True)
        },
        "edm_classifier_mae_all_atoms": EDM_CLASSIFIER_MAE,
        "note": (
            "heavy atoms only (hydrogens never seen): not comparable like for like with EDM's "
            "all-atom property classifiers"
        ),
        "property_split_percentiles": property_percentiles(dataset, config.properties),
    }
    write_manifest(out, manifest)
    return out


def train_and_save(
    dataset: MoleculeDataset,
    config: PredictorConfig,
    out_dir: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    device: torch.device | str = "cpu",
    max_seconds: float | None = None,
) -> tuple[PropertyPredictor, TrainingRecord, NDArray[Any]]:
    """Train (:func:`train_predictor`), measure on ``test``, and write the folder.

    An interim checkpoint is written after every epoch that improves the validation MAE,
    the final one (with the test MAE) at the end.

    Returns:
        The best epoch's model, the training record and the test MAE per property.
    """
    hardware = hardware_description(str(device))

    def checkpoint(model: PropertyPredictor, record: TrainingRecord) -> None:
        save_predictor(model, config, record, out_dir, data_path, dataset, None, device, hardware)

    model, record = train_predictor(
        dataset, config, max_seconds, on_improvement=checkpoint, device=device
    )
    test_mae = dataset_mae(model, dataset, "test")
    save_predictor(model, config, record, out_dir, data_path, dataset, test_mae, device, hardware)
    return model, record, test_mae
