"""Hyperparameters of the molecule models' training: the EDM's and the property predictor's.

Plain dataclasses, checked when made, standard library only: the command lines show their
defaults in ``--help`` without importing torch, and every checkpoint records them. The
changing state of a run lives beside its loop (:mod:`.edm`, :mod:`.predictor`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from casbo_bench.errors import UserFacingError

PREDICTED_PROPERTIES: tuple[str, ...] = ("alpha", "gap", "mu")
"""What the property predictor predicts, in output order (the molecule tasks' properties)."""

RESUMABLE_OPTIONS = frozenset(
    {
        "checkpoint_minutes",
        "eval_every",
        "log_every",
        "decay_start_step",
        "decay_steps",
        "final_lr_fraction",
    }
)
"""EDM options a resumed run may change: none of them changes the model or the data order.
The learning-rate decay is among them because when to anneal is decided from the curve of a
run already under way; every checkpoint records the options it was trained with."""


class TrainingError(UserFacingError, RuntimeError):
    """Training cannot start or resume as asked (missing state, mismatched config, ...)."""


def _not_positive(config: object, names: Iterable[str]) -> dict[str, Any]:
    """The options ``names`` of ``config`` that are not > 0, with their values."""
    return {name: getattr(config, name) for name in names if not getattr(config, name) > 0}


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of the EDM and of its training (all recorded in every checkpoint).

    Attributes:
        hidden: EGNN node feature size.
        n_blocks: EGNN equivariant blocks.
        n_sublayers: message-passing layers per block.
        timesteps: T of the diffusion.
        noise_precision: precision of the polynomial_2 schedule.
        batch_size: molecules per step.
        lr: peak AdamW learning rate.
        warmup_steps: linear warm-up length.
        decay_start_step: the step where the cosine decay of the learning rate begins.
        decay_steps: its length; 0 keeps the learning rate constant after warm-up.
        final_lr_fraction: the learning rate at the decay's end and after it, relative to
            ``lr``.
        weight_decay: AdamW weight decay.
        ema_decay: EMA weight per step of the old average.
        snapshot_every: steps between divergence-guard snapshots.
        spike_window: steps averaged to detect a loss spike.
        spike_factor: a window mean above this multiple of the snapshot's mean is a spike.
        log_every: steps between curve rows.
        eval_every: steps between EMA validation losses.
        eval_size: molecules of the fixed validation subset.
        checkpoint_minutes: wall minutes between checkpoints.
        seed: seeds the model initialisation, the data order, t and the noise.
    """

    hidden: int = 128
    n_blocks: int = 6
    n_sublayers: int = 1
    timesteps: int = 1000
    noise_precision: float = 1e-5
    batch_size: int = 64
    lr: float = 3e-4
    warmup_steps: int = 500
    decay_start_step: int = 0
    decay_steps: int = 0
    final_lr_fraction: float = 0.1
    weight_decay: float = 1e-12
    ema_decay: float = 0.999
    snapshot_every: int = 2000
    spike_window: int = 200
    spike_factor: float = 3.0
    log_every: int = 100
    eval_every: int = 2000
    eval_size: int = 2000
    checkpoint_minutes: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        bad = _not_positive(
            self,
            (
                "hidden",
                "n_blocks",
                "n_sublayers",
                "timesteps",
                "batch_size",
                "lr",
                "snapshot_every",
                "spike_window",
                "log_every",
                "eval_every",
                "eval_size",
                "checkpoint_minutes",
            ),
        )
        if bad:
            raise TrainingError(f"training options must be positive: {bad}")
        if not 0.0 <= self.ema_decay < 1.0 or not self.spike_factor > 1.0:
            raise TrainingError(
                f"need 0 <= ema_decay < 1 and spike_factor > 1; got {self.ema_decay}, "
                f"{self.spike_factor}"
            )
        if min(self.decay_start_step, self.decay_steps) < 0 or not (
            0.0 < self.final_lr_fraction <= 1.0
        ):
            raise TrainingError(
                "need decay_start_step >= 0, decay_steps >= 0 and 0 < final_lr_fraction <= 1; "
                f"got {self.decay_start_step}, {self.decay_steps}, {self.final_lr_fraction}"
            )

    def decay_factor(self, step: int) -> float:
        """The cosine decay's factor on the learning rate at ``step``:
        ``f + (1 - f) (1 + cos(pi u)) / 2`` with ``u = clip((step - start) / decay_steps, 0, 1)``
        and ``f = final_lr_fraction``; 1 without a decay (``decay_steps == 0``)."""
        if self.decay_steps == 0:
            return 1.0
        done = min(1.0, max(0.0, (step - self.decay_start_step) / self.decay_steps))
        final = self.final_lr_fraction
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * done))

    def model_options(self) -> dict[str, Any]:
        """The options that define the network and the diffusion (what a sampler needs:
        :func:`casbo_bench.molecules.diffusion.build_diffusion`)."""
        return {
            "hidden": self.hidden,
            "n_blocks": self.n_blocks,
            "n_sublayers": self.n_sublayers,
            "timesteps": self.timesteps,
            "noise_precision": self.noise_precision,
        }


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
        bad = _not_positive(self, ("hidden", "n_blocks", "batch_size", "epochs", "patience"))
        if bad or not self.lr > 0 or not 0 < self.final_lr_fraction <= 1:
            raise TrainingError(
                f"predictor options must be positive (0 < final_lr_fraction <= 1): {bad or ''} "
                f"lr={self.lr}, final_lr_fraction={self.final_lr_fraction}"
            )
        if not self.properties:
            raise TrainingError("give at least one property to predict")

    def model_options(self) -> dict[str, Any]:
        """What defines the network (:meth:`PropertyPredictor.from_options` rebuilds it)."""
        return {
            "properties": list(self.properties),
            "hidden": self.hidden,
            "n_blocks": self.n_blocks,
        }
