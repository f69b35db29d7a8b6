"""Training the heavy-atom EDM: a resumable loop with EMA weights and a divergence guard.

``casbo-bench train-edm`` (:mod:`casbo_bench.cli.train_edm`) runs one time-limited slice of
it; sampling from the result needs none of this module
(:func:`casbo_bench.molecules.checkpoint.load_sampler`).

One step: a batch of the ``generative`` split (a seeded permutation per epoch), t uniform on
{0, ..., T}, the plain noise-prediction MSE, AdamW with a linear warm-up, adaptive gradient
clipping (the clip level follows the recent gradient norms: ``1.5 mean + 2 std`` of the last
50), and an exponential moving average (EMA) of the weights, which is what is sampled from.

Divergence guard: every ``snapshot_every`` steps, when the loss is healthy, the model, EMA
and optimizer are snapshotted in memory. A non-finite loss, or a mean loss over the last
``spike_window`` steps above ``spike_factor`` times the mean at the snapshot, restores the
snapshot and halves the learning rate; each such event is logged and kept in the state.

Files in the output folder (the layout of :mod:`casbo_bench.molecules.checkpoint`; each
written to a temporary file, then renamed):

- ``training_state.pt``: the full state (fp32 model, EMA, optimizer, step, molecules seen,
  epoch and position in it, RNG state, clip history, config, curve, guard events), from which
  ``--resume`` continues exactly where it stopped;
- ``sampling.pt``: the EMA weights in float16, the config and the atom-count histogram: all a
  sampler needs;
- ``curve.csv``: step, molecules seen, wall seconds, train loss, EMA validation loss, lr;
- ``manifest.json`` (last, sealed): sha256 and size of the three files above, config, data
  provenance, training time and hardware per slice. ``--resume`` loads the state only after
  its sha256 matches (:func:`~casbo_bench.molecules.checkpoint.read_training_state`).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import json
import logging
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from casbo_bench.files import sha256_file, write_atomically
from casbo_bench.molecules.atoms import MAX_ATOMS, N_FEATURES
from casbo_bench.molecules.checkpoint import (
    CURVE_FILE,
    SAMPLING_FILE,
    STATE_FILE,
    read_training_state,
    write_manifest,
)
from casbo_bench.molecules.data import MoleculeDataset, atom_count_histogram
from casbo_bench.molecules.diffusion import build_diffusion
from casbo_bench.molecules.training.config import RESUMABLE_OPTIONS, TrainingConfig, TrainingError
from casbo_bench.provenance import hardware_description

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ("step", "molecules_seen", "wall_seconds", "train_loss", "ema_val_loss", "lr")
_CLIP_HISTORY = 50


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)


@dataclass
class _TrainingData:
    """Tensors of one split on the training device: ``M x 9 x 3``, ``M x 9 x 4``, ``M x 9``."""

    positions: Tensor
    one_hot: Tensor
    mask: Tensor

    @classmethod
    def from_dataset(cls, dataset: MoleculeDataset, device: torch.device) -> _TrainingData:
        return cls(
            positions=torch.from_numpy(dataset.positions).to(device),
            one_hot=torch.from_numpy(dataset.one_hot).to(device),
            mask=torch.from_numpy(dataset.mask).to(device),
        )

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def batch(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.positions[rows], self.one_hot[rows], self.mask[rows]


def epoch_permutation(n: int, seed: int, epoch: int) -> NDArray[np.int64]:
    """The data order of ``epoch``: a permutation of ``n`` rows, ``default_rng([seed, epoch])``."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


@dataclass
class TrainingProgress:
    """The changing part of the training state (what a checkpoint adds to the weights).

    Attributes:
        step: optimizer steps taken.
        molecules_seen: molecules in those steps.
        epoch: the current pass over the generative split.
        position: rows of the current epoch's permutation already used.
        wall_seconds: training wall time over all slices.
        lr_scale: product of the divergence guard's halvings.
        clip_history: the recent gradient norms of the adaptive clipping.
        curve: rows of ``CURVE_COLUMNS``.
        guard_events: one dict per divergence-guard restore.
        slices: one dict per run of the training command (start, steps, seconds, device,
            hardware, and the resumable options it ran with).
    """

    step: int = 0
    molecules_seen: int = 0
    epoch: int = 0
    position: int = 0
    wall_seconds: float = 0.0
    lr_scale: float = 1.0
    clip_history: list[float] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Owns the model, its EMA, the optimizer, the data order and the checkpoints.

    Args:
        config: the hyperparameters.
        dataset: the cached QM9 dataset (its ``generative`` split is trained on, a fixed
            seeded subset of ``validation`` is evaluated).
        out_dir: where checkpoints, the curve and the manifest go.
        device: the training device.
        data_path: the dataset file, recorded in the manifest.
    """

    def __init__(
        self,
        config: TrainingConfig,
        dataset: MoleculeDataset,
        out_dir: str | os.PathLike[str],
        device: torch.device | str = "cpu",
        data_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.out_dir = Path(out_dir)
        self.data_path = Path(data_path) if data_path is not None else None
        self.dataset_provenance = dataset.provenance
        generative = dataset.subset("generative")
        if len(generative) < config.batch_size:
            raise TrainingError(
                f"the generative split has {len(generative)} molecules, fewer than one batch "
                f"of {config.batch_size}; lower --batch"
            )
        self.histogram = atom_count_histogram(dataset, "generative")
        self.train_data = _TrainingData.from_dataset(generative, self.device)
        validation_rows = dataset.split_indices("validation")
        chosen = np.random.default_rng([config.seed, 1]).permutation(len(validation_rows))
        self.validation_data = _TrainingData.from_dataset(
            dataset.select(validation_rows[np.sort(chosen[: config.eval_size])]), self.device
        )
        self.model = build_diffusion(config.model_options(), config.seed).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.progress = TrainingProgress()
        self._order = epoch_permutation(len(self.train_data), config.seed, 0)
        self._recent: deque[float] = deque(maxlen=config.spike_window)
        self._snapshot: dict[str, Any] | None = None
        self._snapshot_loss = math.inf
        self._interval_losses: list[float] = []
        self._stop_requested = False

    # ------------------------------------------------------------------ one step
    def learning_rate(self) -> float:
        """lr * lr_scale * min(1, (step + 1) / warmup_steps) * the cosine decay's factor
        (:meth:`TrainingConfig.decay_factor`)."""
        step = self.progress.step
        warmup = min(1.0, (step + 1) / max(self.config.warmup_steps, 1))
        decay = self.config.decay_factor(step)
        return self.config.lr * self.progress.lr_scale * warmup * decay

    def _next_rows(self) -> Tensor:
        size = self.config.batch_size
        if self.progress.position + size > len(self._order):
            self.progress.epoch += 1
            self.progress.position = 0
            self._order = epoch_permutation(
                len(self.train_data), self.config.seed, self.progress.epoch
            )
        rows = self._order[self.progress.position : self.progress.position + size]
        self.progress.position += size
        return torch.from_numpy(rows).to(self.device)

    def _clip_level(self) -> float:
        history = self.progress.clip_history
        if len(history) < _CLIP_HISTORY:
            return math.inf
        values = np.asarray(history)
        return float(1.5 * values.mean() + 2.0 * values.std())

    def train_step(self) -> float:
        """One optimizer step; returns the batch's mean loss (NaN steps are not applied)."""
        rows = self._next_rows()
        positions, one_hot, mask = self.train_data.batch(rows)
        batch = positions.shape[0]
        t = torch.randint(0, self.config.timesteps + 1, (batch,), generator=self.generator)
        noise = torch.randn(batch, MAX_ATOMS, N_FEATURES, generator=self.generator)
        self.model.train()
        loss = self.model.loss(positions, one_hot, mask, t.to(self.device), noise.to(self.device))
        loss = loss.mean()
        value = float(loss.item())
        self.optimizer.zero_grad(set_to_none=True)
        if math.isfinite(value):
            loss.backward()
            level = self._clip_level()
            norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), level).item())
            if math.isfinite(norm):
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate()
                self.optimizer.step()
                self._update_ema()
                self.progress.clip_history.append(min(norm, level))
                del self.progress.clip_history[:-_CLIP_HISTORY]
            else:
                value = math.nan
        self.progress.step += 1
        self.progress.molecules_seen += batch
        return value

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.ema_decay
        for average, current in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            average.lerp_(current, 1.0 - decay)

    # ------------------------------------------------------------------ guard
    def _take_snapshot(self) -> None:
        self._snapshot = {
            "model": copy.deepcopy(self.model.state_dict()),
            "ema": copy.deepcopy(self.ema.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "clip_history": list(self.progress.clip_history),
            "step": self.progress.step,
        }
        self._snapshot_loss = float(np.mean(self._recent)) if self._recent else math.inf

    def _restore_snapshot(self, reason: str) -> None:
        assert self._snapshot is not None
        self.model.load_state_dict(self._snapshot["model"])
        self.ema.load_state_dict(self._snapshot["ema"])
        self.optimizer.load_state_dict(self._snapshot["optimizer"])
        self.progress.clip_history = list(self._snapshot["clip_history"])
        self.progress.lr_scale *= 0.5
        event = {
            "step": self.progress.step,
            "restored_step": self._snapshot["step"],
            "reason": reason,
            "new_lr_scale": self.progress.lr_scale,
        }
        self.progress.guard_events.append(event)
        self._recent.clear()
        logger.warning("divergence guard: %s", json.dumps(event))

    def _guard(self, loss: float) -> None:
        if not math.isfinite(loss):
            self._restore_snapshot("non-finite loss")
            return
        self._recent.append(loss)
        window_mean = float(np.mean(self._recent))
        full = len(self._recent) == self._recent.maxlen
        if full and window_mean > self.config.spike_factor * self._snapshot_loss:
            self._restore_snapshot(
                f"mean loss {window_mean:.4g} over {len(self._recent)} steps > "
                f"{self.config.spike_factor:g} x {self._snapshot_loss:.4g} at the snapshot"
            )
        elif full and self.progress.step % self.config.snapshot_every == 0:
            self._take_snapshot()

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def validation_loss(self, batch_size: int = 500) -> float:
        """Mean EMA-model loss on the fixed validation subset with fixed t and noise."""
        generator = torch.Generator().manual_seed(self.config.seed + 1)
        self.ema.eval()
        total, count = 0.0, 0
        for start in range(0, len(self.validation_data), batch_size):
            rows = torch.arange(
                start, min(start + batch_size, len(self.validation_data)), device=self.device
            )
            positions, one_hot, mask = self.validation_data.batch(rows)
            n = positions.shape[0]
            t = torch.randint(0, self.config.timesteps + 1, (n,), generator=generator)
            noise = torch.randn(n, MAX_ATOMS, N_FEATURES, generator=generator)
            losses = self.ema.loss(
                positions, one_hot, mask, t.to(self.device), noise.to(self.device)
            )
            total += float(losses.sum().item())
            count += n
        return total / count

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The full training state (plain types and tensors; loadable with weights_only)."""
        progress = dataclasses.asdict(self.progress)
        return {
            "format_version": 1,
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "progress": progress,
            "atom_count_histogram": self.histogram.tolist(),
            "snapshot_loss": self._snapshot_loss,
            "recent_losses": list(self._recent),
            "interval_losses": list(self._interval_losses),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (the config must match this trainer's)."""
        saved = TrainingConfig(**state["config"])
        differing = {
            name: (getattr(saved, name), getattr(self.config, name))
            for name in saved.model_options()
            if getattr(saved, name) != getattr(self.config, name)
        }
        if differing:
            raise TrainingError(
                f"the saved state has another model (saved, asked): {differing}; resume with "
                f"the saved options or train into a new folder"
            )
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.progress = TrainingProgress(**state["progress"])
        self._order = epoch_permutation(len(self.train_data), self.config.seed, self.progress.epoch)
        self._snapshot_loss = float(state["snapshot_loss"])
        self._recent.extend(state["recent_losses"])
        self._interval_losses = list(state["interval_losses"])

    def sampling_state(self) -> dict[str, Any]:
        """What a sampler needs: float16 EMA weights, model options, the atom-count histogram."""
        return {
            "format_version": 1,
            "model_options": self.config.model_options(),
            "ema_fp16": {
                name: tensor.detach().to("cpu", torch.float16)
                for name, tensor in self.ema.state_dict().items()
            },
            "atom_count_histogram": self.histogram.tolist(),
            "step": self.progress.step,
            "molecules_seen": self.progress.molecules_seen,
        }

    def save_checkpoint(self) -> None:
        """Write state, sampling checkpoint, curve and manifest (each atomically)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        sampling = self.sampling_state()
        write_atomically(self.out_dir / STATE_FILE, lambda stream: torch.save(state, stream))
        write_atomically(self.out_dir / SAMPLING_FILE, lambda stream: torch.save(sampling, stream))
        write_atomically(self.out_dir / CURVE_FILE, self._write_curve)
        write_manifest(self.out_dir, self.manifest())

    def _write_curve(self, stream: BinaryIO) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        for row in self.progress.curve:
            writer.writerow([int(row[0]), int(row[1]), *(f"{value:.6g}" for value in row[2:])])
        stream.write(text.getvalue().encode())

    def manifest(self) -> dict[str, Any]:
        """The checkpoint's record: file hashes, config, data, training time and hardware."""
        files = {}
        for name in (SAMPLING_FILE, STATE_FILE, CURVE_FILE):
            path = self.out_dir / name
            if path.is_file():
                files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        last_validation = next(
            (row[4] for row in reversed(self.progress.curve) if math.isfinite(row[4])), math.nan
        )
        return {
            "model": "EDM (equivariant diffusion), heavy-atom QM9",
            "files": files,
            "config": dataclasses.asdict(self.config),
            "parameters": count_parameters(self.model),
            "atom_count_histogram": self.histogram.tolist(),
            "data": {
                "file": str(self.data_path) if self.data_path is not None else None,
                "sha256": sha256_file(self.data_path) if self.data_path is not None else None,
                "provenance": self.dataset_provenance,
            },
            "training": {
                "steps": self.progress.step,
                "molecules_seen": self.progress.molecules_seen,
                "epochs": self.progress.molecules_seen / len(self.train_data),
                "wall_seconds": round(self.progress.wall_seconds, 1),
                "lr_scale": self.progress.lr_scale,
                "last_ema_val_loss": None if math.isnan(last_validation) else last_validation,
                "guard_events": self.progress.guard_events,
                "slices": self.progress.slices,
            },
        }

    # ------------------------------------------------------------------ the loop
    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Finish the current step, checkpoint, and return from :meth:`run`."""
        self._stop_requested = True

    def run(
        self,
        max_seconds: float | None = None,
        max_steps: int | None = None,
        progress_bar: bool = True,
    ) -> TrainingProgress:
        """Train until ``max_seconds`` of wall time or ``max_steps`` total steps, then save.

        Checkpoints every ``checkpoint_minutes`` and at the end; a curve row every
        ``log_every`` steps; the EMA validation loss every ``eval_every`` steps.
        """
        from tqdm import tqdm

        started = time.monotonic()
        slice_record: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "start_step": self.progress.step,
            "device": str(self.device),
            "hardware": hardware_description(str(self.device)),
            # The options a resume may change, so that a schedule changed between slices
            # can be read back from the slices.
            "options": {name: getattr(self.config, name) for name in sorted(RESUMABLE_OPTIONS)},
        }
        self.progress.slices.append(slice_record)
        if self._snapshot is None:
            self._take_snapshot()
        wall_at_start = self.progress.wall_seconds
        last_checkpoint = started
        interactive = sys.stderr.isatty()
        bar = tqdm(
            initial=self.progress.step,
            unit="step",
            file=sys.stderr,
            disable=not progress_bar,
            mininterval=1.0 if interactive else 60.0,
            dynamic_ncols=interactive,
        )
        rate_start, rate_molecules = started, self.progress.molecules_seen
        try:
            while not self._stop_requested:
                if max_steps is not None and self.progress.step >= max_steps:
                    break
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    break
                loss = self.train_step()
                self._guard(loss)
                if math.isfinite(loss):
                    self._interval_losses.append(loss)
                self.progress.wall_seconds = wall_at_start + time.monotonic() - started
                step = self.progress.step
                bar.update(1)
                if step % self.config.log_every == 0:
                    validation = (
                        self.validation_loss() if step % self.config.eval_every == 0 else math.nan
                    )
                    train_loss = (
                        float(np.mean(self._interval_losses)) if self._interval_losses else math.nan
                    )
                    self._interval_losses.clear()
                    self.progress.curve.append(
                        [
                            step,
                            self.progress.molecules_seen,
                            self.progress.wall_seconds,
                            train_loss,
                            validation,
                            self.learning_rate(),
                        ]
                    )
                    now = time.monotonic()
                    rate = (self.progress.molecules_seen - rate_molecules) / max(
                        now - rate_start, 1e-9
                    )
                    rate_start, rate_molecules = now, self.progress.molecules_seen
                    postfix = {"loss": f"{train_loss:.4f}", "mol/s": f"{rate:.0f}"}
                    if math.isfinite(validation):
                        postfix["ema_val"] = f"{validation:.4f}"
                    bar.set_postfix(postfix, refresh=False)
                if time.monotonic() - last_checkpoint >= 60.0 * self.config.checkpoint_minutes:
                    slice_record["seconds"] = round(time.monotonic() - started, 1)
                    slice_record["end_step"] = self.progress.step
                    self.save_checkpoint()
                    last_checkpoint = time.monotonic()
        finally:
            bar.close()
            slice_record["seconds"] = round(time.monotonic() - started, 1)
            slice_record["end_step"] = self.progress.step
            self.save_checkpoint()
        return self.progress


def resume_trainer(
    out_dir: str | os.PathLike[str],
    dataset: MoleculeDataset,
    device: torch.device | str = "cpu",
    data_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Trainer:
    """A :class:`Trainer` restored from ``out_dir/training_state.pt``.

    ``overrides`` may change options that do not define the model (e.g. the checkpoint
    interval); model options must match the saved ones.
    """
    path = Path(out_dir) / STATE_FILE
    if not path.is_file():
        raise TrainingError(f"no training state at {path}; start without --resume")
    state = read_training_state(out_dir)
    options = dict(state["config"])
    changed = {
        name: (options.get(name), value)
        for name, value in (overrides or {}).items()
        if options.get(name) != value and name not in RESUMABLE_OPTIONS
    }
    if changed:
        raise TrainingError(
            f"a resumed run keeps its saved options; these differ (saved, asked): {changed}. "
            f"Only {sorted(RESUMABLE_OPTIONS)} may change on resume"
        )
    options.update(overrides or {})
    options = _decay_from_now(
        options, dict(state["config"]), overrides or {}, int(state["progress"]["step"])
    )
    trainer = Trainer(TrainingConfig(**options), dataset, out_dir, device, data_path=data_path)
    trainer.load_state_dict(state)
    return trainer


def _decay_from_now(
    options: dict[str, Any], saved: dict[str, Any], overrides: dict[str, Any], step: int
) -> dict[str, Any]:
    """``options`` of a run resumed at ``step``, checked so the learning rate never jumps.

    A decay added to a run that had none begins at ``step`` unless its start is given. Then
    the factor on the peak rate at ``step`` must be the same under the saved schedule and the
    asked one, ``f_asked(step) = f_saved(step)`` (:meth:`TrainingConfig.decay_factor`): a
    decay may be added from now or later, and one under way may be reshaped only where that
    leaves the current rate as it is. Anything else (a start in the past, a shorter decay or
    another final rate mid-way, a decay moved later) would move the rate at once instead of
    along the cosine, and is refused."""
    if not saved.get("decay_steps") and "decay_start_step" not in overrides:
        options = {**options, "decay_start_step": step}
    before = TrainingConfig(**saved).decay_factor(step)
    after = TrainingConfig(**options).decay_factor(step)
    if not math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-12):
        raise TrainingError(
            f"the asked learning-rate schedule would move the rate at step {step} from "
            f"{before:.4g} to {after:.4g} times --lr at once; a resumed schedule continues from "
            f"the current rate: give --decay-start-step {step} or later for a new decay (or "
            "leave it out: a decay added on resume then begins at once), and keep a decay "
            "under way as it is"
        )
    return options


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT end training cleanly with a final checkpoint."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in previous:
        signal.signal(signum, trainer.request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
