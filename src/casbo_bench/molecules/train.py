"""Command line: train (or keep training) the heavy-atom EDM in time-limited slices.

    python -m casbo_bench.molecules.train --data results/data/qm9_heavy.npz \\
        --out models/edm_qm9_heavy --hidden 128 --blocks 6 --batch 64 --hours 24 \\
        [--resume] [--device auto|cpu|cuda] [--threads N]

A slice stops after ``--hours`` (or ``--max-steps`` total steps) and writes its checkpoint;
``--resume`` continues from ``OUT/training_state.pt`` with the saved options. SIGTERM or
Ctrl-C also stop the slice with a checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.training import (
    STATE_FILE,
    Trainer,
    TrainingConfig,
    TrainingError,
    count_parameters,
    resolve_device,
    resume_trainer,
    stop_on_signals,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m casbo_bench.molecules.train",
        description="Train the heavy-atom equivariant diffusion model (EDM) on QM9.",
    )
    parser.add_argument("--data", required=True, type=Path, help="cached QM9 npz")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--hours", type=float, default=1.0, help="wall-time limit of this slice")
    parser.add_argument("--max-steps", type=int, default=None, help="stop at this total step")
    parser.add_argument("--resume", action="store_true", help="continue from OUT's state")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = TrainingConfig()
    options = parser.add_argument_group("model and training options (new runs)")
    options.add_argument("--hidden", type=int, default=None, help=f"default {defaults.hidden}")
    options.add_argument("--blocks", type=int, default=None, help=f"default {defaults.n_blocks}")
    options.add_argument(
        "--sublayers", type=int, default=None, help=f"default {defaults.n_sublayers}"
    )
    options.add_argument("--batch", type=int, default=None, help=f"default {defaults.batch_size}")
    options.add_argument("--lr", type=float, default=None, help=f"default {defaults.lr}")
    options.add_argument(
        "--ema-decay", type=float, default=None, help=f"default {defaults.ema_decay}"
    )
    options.add_argument("--seed", type=int, default=None, help=f"default {defaults.seed}")
    options.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=None,
        help=f"default {defaults.checkpoint_minutes} (may change on resume)",
    )
    options.add_argument(
        "--eval-every", type=int, default=None, help=f"default {defaults.eval_every}"
    )
    return parser


_OPTION_FIELDS = {
    "hidden": "hidden",
    "blocks": "n_blocks",
    "sublayers": "n_sublayers",
    "batch": "batch_size",
    "lr": "lr",
    "ema_decay": "ema_decay",
    "seed": "seed",
    "checkpoint_minutes": "checkpoint_minutes",
    "eval_every": "eval_every",
}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, build or resume the trainer, run one slice."""
    args = _parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    given = {
        field: getattr(args, name)
        for name, field in _OPTION_FIELDS.items()
        if getattr(args, name) is not None
    }
    device = resolve_device(args.device)
    dataset = load_dataset(args.data)
    threads = torch.get_num_threads()
    if args.resume:
        trainer = resume_trainer(
            args.out, dataset, device, data_path=args.data, threads=threads, overrides=given
        )
    else:
        if (args.out / STATE_FILE).exists():
            raise TrainingError(
                f"{args.out / STATE_FILE} exists; continue it with --resume or choose another --out"
            )
        trainer = Trainer(
            TrainingConfig(**given), dataset, args.out, device, data_path=args.data, threads=threads
        )
    print(
        f"EDM: {count_parameters(trainer.model):,} parameters, device {device}, "
        f"{threads} threads, step {trainer.progress.step}, config {trainer.config}",
        file=sys.stderr,
        flush=True,
    )
    with stop_on_signals(trainer):
        progress = trainer.run(
            max_seconds=3600.0 * args.hours,
            max_steps=args.max_steps,
            progress_bar=not args.no_progress,
        )
    print(
        f"stopped at step {progress.step} ({progress.molecules_seen:,} molecules, "
        f"{progress.wall_seconds / 3600:.2f} h in all); checkpoint in {args.out}",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
