"""An E(3)-invariant property predictor for heavy-atom geometries: alpha, gap and mu.

The black-box property scores of the molecule benchmark need a model that maps a 3D
structure to its properties. It is trained on the QM9 half the diffusion model never saw
(the ``property`` split), early-stopped on ``validation`` and measured once on ``test``::

    OMP_WAIT_POLICY=PASSIVE nice -n 10 python -m casbo_bench.molecules.predictor \\
        --data results/data/qm9_heavy.npz --out models/property_predictor --threads 1

**Network.** The dense EGNN of :mod:`casbo_bench.molecules.egnn` on one-hot atom types (C, N,
O, F) and positions (Angstrom), then a sum over atoms and a two-layer MLP:

    y_hat = W_2 silu(W_1 sum_i h_i + b_1) + b_2,   h = EGNN(one_hot, x)

EGNN's node features are invariant under rotations, reflections and translations of the
input, so the prediction is too (tested); the sum makes it invariant under permutations
of the atoms. The sum (rather than a mean) lets extensive properties such as alpha grow
with the molecule. Targets are standardized per property with the training split's mean
and standard deviation, the loss is their mean absolute error (MAE, the metric reported),
and :meth:`PropertyPredictor.predict` returns physical units (bohr^3, eV, Debye).

**Heavy atoms only.** QM9's properties depend on the hydrogens, which the predictor never
sees: it is not comparable like for like with EDM's property classifiers (all atoms, Table 3
of Hoogeboom et al. 2022: alpha 0.10 bohr^3, gap 64 meV, mu 0.043 D), whose numbers the
manifest keeps beside ours.

**Training.** AdamW, a cosine learning-rate decay over a fixed number of epochs, batches
in a seeded permutation per epoch (``default_rng([seed, epoch])``), the validation MAE after
every epoch; the weights of the best validation epoch are kept (early stopping, with a
patience in epochs). Everything is seeded, so a run is reproducible on the same hardware,
thread count and device (``--device``, default ``auto``: CUDA when available). A wall-time
cap (``--max-minutes``) may end a run early; the manifest says whether it did.

**Files** in the output folder, each written to a temporary file and renamed:

- ``predictor.pt``: the float32 weights of the best epoch, the config and the target
  normalization (about 0.7 MB);
- ``curve.csv``: per epoch the training loss, the validation MAE per property and the lr;
- ``manifest.json``: sha256 of both files, the config, the data file's sha256 and
  provenance, training time and hardware, the test MAE per property beside EDM's, and the
  property split's percentiles (the molecule tasks' targets).

:func:`load_predictor` reads ``predictor.pt`` consistently with the manifest and checks its
sha256 before loading.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from casbo_bench.devices import DEVICE_NAMES, resolve_device
from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.data import (
    ATOM_SYMBOLS,
    PROPERTY_UNITS,
    MoleculeDataset,
    load_dataset,
    sha256_file,
)
from casbo_bench.molecules.egnn import EGNN
from casbo_bench.molecules.training import MANIFEST_FILE, write_atomically

PREDICTOR_FILE = "predictor.pt"
CURVE_FILE = "curve.csv"
PREDICTED_PROPERTIES: tuple[str, ...] = ("alpha", "gap", "mu")
TARGET_PERCENTILES: tuple[int, ...] = (10, 50, 90)
"""Percentiles of the property split recorded in the manifest (task targets read them)."""

EDM_CLASSIFIER_MAE: dict[str, dict[str, float | str]] = {
    "alpha": {"value": 0.10, "unit": "bohr^3"},
    "gap": {"value": 0.064, "unit": "eV"},
    "mu": {"value": 0.043, "unit": "Debye"},
}
"""EDM's property classifiers' test MAE (Hoogeboom et al. 2022, Table 3, "QM9 (lower bound)"):
all-atom EGNNs, not comparable like for like with this heavy-atom predictor."""


class PredictorError(UserFacingError, RuntimeError):
    """The predictor cannot be trained or loaded as asked."""


@dataclass(frozen=True)
class PredictorConfig:
    """Hyperparameters of the predictor and of its training (recorded in the manifest).

    Attributes:
        properties: the predicted properties, in output order.
        hidden: EGNN node feature size.
        n_blocks: EGNN equivariant blocks.
        batch_size: molecules per step.
        lr: peak AdamW learning rate (cosine decay to ``lr * final_lr_fraction``).
        final_lr_fraction: the learning rate of the last step, relative to ``lr``.
        weight_decay: AdamW weight decay.
        epochs: epochs of the cosine schedule (the run's length without early stopping).
        patience: epochs without a better validation MAE before stopping.
        seed: seeds the initialisation and the data order.
    """

    properties: tuple[str, ...] = PREDICTED_PROPERTIES
    hidden: int = 64
    n_blocks: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    final_lr_fraction: float = 0.01
    weight_decay: float = 1e-5
    epochs: int = 9
    patience: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "properties", tuple(self.properties))
        sizes = {
            name: getattr(self, name)
            for name in ("hidden", "n_blocks", "batch_size", "epochs", "patience")
        }
        bad = {name: value for name, value in sizes.items() if value < 1}
        if bad or not self.lr > 0 or not 0 < self.final_lr_fraction <= 1:
            raise PredictorError(
                f"predictor options must be positive (0 < final_lr_fraction <= 1): {bad or ''} "
                f"lr={self.lr}, final_lr_fraction={self.final_lr_fraction}"
            )
        if not self.properties:
            raise PredictorError("give at least one property to predict")

    def model_options(self) -> dict[str, Any]:
        """What defines the network (what :func:`load_predictor` needs to rebuild it)."""
        return {
            "properties": list(self.properties),
            "hidden": self.hidden,
            "n_blocks": self.n_blocks,
        }


class PropertyPredictor(nn.Module):
    """``y_hat = MLP(sum_i h_i) * std + mean`` with ``h = EGNN(one_hot, x)`` (module docstring).

    Args:
        properties: the predicted properties, in output order.
        hidden: EGNN node feature size.
        n_blocks: EGNN equivariant blocks.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, properties: Sequence[str], hidden: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        self.properties = tuple(properties)
        self.egnn = EGNN(len(ATOM_SYMBOLS), hidden, hidden=hidden, n_blocks=n_blocks)
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(self.properties))
        )
        self.register_buffer("mean", torch.zeros(len(self.properties)))
        self.register_buffer("std", torch.ones(len(self.properties)))

    def forward(self, one_hot: Tensor, positions: Tensor, mask: Tensor) -> Tensor:
        """Standardized predictions, a ``B x P`` tensor.

        Args:
            one_hot: a ``B x N x 4`` tensor of one-hot atom types (zero on padding).
            positions: a ``B x N x 3`` tensor in Angstrom.
            mask: a ``B x N`` tensor, 1 on real atoms.
        """
        h, _ = self.egnn(one_hot, positions, mask)
        return self.head(h.sum(dim=1))

    @torch.no_grad()
    def predict(self, positions: Any, atom_types: Any, batch_size: int = 1024) -> NDArray[Any]:
        """Properties in physical units for a batch of padded heavy-atom structures.

        Args:
            positions: a ``B x N x 3`` array in Angstrom (any origin and orientation).
            atom_types: a ``B x N`` integer array of indices into (C, N, O, F), -1 on padding.
            batch_size: molecules per forward pass.

        Returns:
            A ``B x P`` float64 array, columns :attr:`properties`. Non-finite coordinates
            give NaN rows (the caller decides their penalty).
        """
        device = self.mean.device
        positions_t = torch.as_tensor(np.asarray(positions, dtype=np.float32))
        types_t = torch.as_tensor(np.asarray(atom_types, dtype=np.int64))
        if (
            positions_t.ndim != 3
            or positions_t.shape[2] != 3
            or types_t.shape != (positions_t.shape[:2])
        ):
            raise PredictorError(
                f"predict takes B x N x 3 positions and B x N atom types; got "
                f"{tuple(positions_t.shape)} and {tuple(types_t.shape)}"
            )
        mask = types_t >= 0
        finite = torch.isfinite(positions_t).all(dim=(1, 2))
        positions_t = torch.where(finite.view(-1, 1, 1), positions_t, 0.0)
        one_hot = nn.functional.one_hot(types_t.clamp_min(0), len(ATOM_SYMBOLS)).float()
        one_hot = one_hot * mask.unsqueeze(-1)
        outputs = []
        for start in range(0, len(types_t), batch_size):
            part = slice(start, start + batch_size)
            standardized = self(
                one_hot[part].to(device), positions_t[part].to(device), mask[part].to(device)
            )
            outputs.append((standardized * self.std + self.mean).cpu())
        if not outputs:
            return np.zeros((0, len(self.properties)))
        values = torch.cat(outputs).double().numpy()
        values[~finite.numpy()] = np.nan
        return values


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
    log: TextIO | None = None,
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
        log: a text stream for one progress line per epoch (None: silent).
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
        if log is not None:
            described = ", ".join(
                f"{name} {v:.4g}" for name, v in zip(properties, mae, strict=True)
            )
            print(
                f"epoch {epoch + 1}/{config.epochs}: train {np.mean(losses):.4f}, validation "
                f"MAE {described} (normalized {normalized:.4f}), "
                f"{time.monotonic() - started:.0f} s",
                file=log,
                flush=True,
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
    hardware: dict[str, Any],
) -> Path:
    """Write ``predictor.pt``, ``curve.csv`` and ``manifest.json`` (module docstring).

    ``test_mae`` None writes an interim checkpoint of a run still training (the manifest
    says so, and has no test MAE).
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
    text = (json.dumps(manifest, indent=2) + "\n").encode()
    write_atomically(out / MANIFEST_FILE, lambda stream: stream.write(text))
    return out


@dataclass(frozen=True)
class LoadedPredictor:
    """A predictor read from its folder, verified against its manifest.

    Attributes:
        model: the predictor (eval mode, no gradients).
        manifest: the parsed manifest (test MAE, percentiles, provenance).
        sha256: the sha256 of ``predictor.pt``.
    """

    model: PropertyPredictor
    manifest: dict[str, Any]
    sha256: str


def load_predictor(
    directory: str | os.PathLike[str], device: torch.device | str = "cpu", attempts: int = 5
) -> LoadedPredictor:
    """Load ``predictor.pt`` from ``directory`` after checking its sha256 in the manifest.

    ``attempts`` reads are made while a training run may be rewriting the folder
    (:func:`casbo_bench.molecules.evaluate.read_checkpoint`).

    Raises:
        CheckpointError: the files are missing or do not match the manifest.
    """
    from casbo_bench.molecules.evaluate import read_checkpoint

    checkpoint = read_checkpoint(directory, (PREDICTOR_FILE,), attempts=attempts)
    state = torch.load(
        io.BytesIO(checkpoint.contents[PREDICTOR_FILE]), map_location="cpu", weights_only=True
    )
    options = state["model_options"]
    model = PropertyPredictor(options["properties"], options["hidden"], options["n_blocks"])
    model.load_state_dict(state["weights"])
    model.to(torch.device(device)).eval().requires_grad_(False)
    return LoadedPredictor(
        model=model, manifest=checkpoint.manifest, sha256=checkpoint.sha256(PREDICTOR_FILE)
    )


def _hardware(device: torch.device, threads: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "torch": str(torch.__version__),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _parser() -> argparse.ArgumentParser:
    defaults = PredictorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m casbo_bench.molecules.predictor",
        description=(
            "Train the heavy-atom property predictor (alpha, gap, mu) on QM9's property split, "
            "early-stopped on validation, measured on test."
        ),
    )
    parser.add_argument("--data", required=True, type=Path, help="cached QM9 npz")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="auto",
        help="where to train: auto (CUDA when available, else CPU), cpu or cuda (default auto)",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="wall-time cap (default: none)"
    )
    parser.add_argument("--hidden", type=int, default=defaults.hidden)
    parser.add_argument("--blocks", type=int, default=defaults.n_blocks)
    parser.add_argument("--batch", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, train, measure on test, write the folder."""
    args = _parser().parse_args(argv)
    if args.threads < 1:
        raise SystemExit("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    try:
        config = PredictorConfig(
            hidden=args.hidden,
            n_blocks=args.blocks,
            batch_size=args.batch,
            lr=args.lr,
            epochs=args.epochs,
            patience=args.patience,
            seed=args.seed,
        )
    except PredictorError as error:
        raise SystemExit(f"predictor: {error}") from None
    try:
        device = resolve_device(args.device, "predictor", PredictorError)
    except PredictorError as error:
        raise SystemExit(str(error)) from None
    hardware = _hardware(device, args.threads)
    dataset = load_dataset(args.data)
    max_seconds = None if args.max_minutes is None else 60.0 * args.max_minutes

    def checkpoint(model: PropertyPredictor, record: TrainingRecord) -> None:
        save_predictor(model, config, record, args.out, args.data, dataset, None, hardware)

    model, record = train_predictor(
        dataset, config, max_seconds, log=sys.stderr, on_improvement=checkpoint, device=device
    )
    test = _Split.from_dataset(dataset.subset("test"), config.properties, model.mean, model.std)
    test_mae = split_mae(model, test)
    save_predictor(model, config, record, args.out, args.data, dataset, test_mae, hardware)
    described = ", ".join(
        f"{name} {value:.4g} {PROPERTY_UNITS[name]} "
        f"(EDM all-atom {EDM_CLASSIFIER_MAE[name]['value']})"
        for name, value in zip(config.properties, test_mae, strict=True)
    )
    print(
        f"test MAE: {described}; best epoch {record.best_epoch} of {record.epochs_run}, "
        f"{record.wall_seconds / 60:.1f} min; wrote {args.out}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
