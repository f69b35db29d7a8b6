"""``casbo-bench train-edm``: train (or keep training) the heavy-atom EDM in time-limited slices.

A slice stops after ``--hours`` (or at ``--max-steps`` total steps) and writes its
checkpoint; ``--resume`` continues from ``OUT/training_state.pt`` with the saved options
(verified against the manifest), ``--resume-if-present`` does so where that file exists.
SIGTERM or Ctrl-C also stop the slice with a checkpoint.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import (
    UsageError,
    config_options,
    integer_at_least,
    positive_number,
    share,
    writable_folder,
)
from casbo_bench.molecules.training.config import TrainingConfig
from casbo_bench.names import DEVICE_NAMES

NAME = "train-edm"
HELP = "Train the heavy-atom equivariant diffusion model (EDM) on QM9 for one time-limited slice."
EXAMPLES = (
    "casbo-bench train-edm --data results/data/qm9_heavy.npz --out models/edm_qm9_heavy "
    "--hidden 128 --blocks 6 --batch 64 --hours 24 --threads 2 --device cpu",
    "casbo-bench train-edm --data results/data/qm9_heavy.npz --out models/edm_qm9_heavy "
    "--resume --hours 4",
    "casbo-bench train-edm --data results/data/qm9_heavy.npz --out models/edm_qm9_heavy "
    "--resume --decay-start-step 53000 --decay-steps 8000 --final-lr-fraction 0.1 --hours 1",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="cached QM9 npz")
    parser.add_argument(
        "--out", required=True, type=writable_folder("checkpoint"), help="checkpoint folder"
    )
    parser.add_argument(
        "--hours", type=positive_number, default=1.0, help="wall-time limit of this slice"
    )
    parser.add_argument(
        "--max-steps", type=integer_at_least(0), default=None, help="stop at this total step"
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from OUT's state")
    resume.add_argument(
        "--resume-if-present",
        action="store_true",
        help="continue from OUT's state where there is one, else start (the workflow's way: "
        "a stopped training continues)",
    )
    parser.add_argument("--device", default="auto", choices=DEVICE_NAMES, help="default auto")
    parser.add_argument("--threads", type=integer_at_least(1), help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = TrainingConfig()
    options = parser.add_argument_group("model and training options (new runs)")
    options.add_argument("--hidden", type=int, help=f"default {defaults.hidden}")
    options.add_argument(
        "--blocks", dest="n_blocks", metavar="N", type=int, help=f"default {defaults.n_blocks}"
    )
    options.add_argument(
        "--sublayers",
        dest="n_sublayers",
        metavar="N",
        type=int,
        help=f"default {defaults.n_sublayers}",
    )
    options.add_argument(
        "--batch", dest="batch_size", metavar="N", type=int, help=f"default {defaults.batch_size}"
    )
    options.add_argument("--lr", type=float, help=f"default {defaults.lr}")
    options.add_argument("--ema-decay", type=float, help=f"default {defaults.ema_decay}")
    options.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    options.add_argument(
        "--checkpoint-minutes",
        type=float,
        help=f"default {defaults.checkpoint_minutes} (may change on resume)",
    )
    options.add_argument("--eval-every", type=int, help=f"default {defaults.eval_every}")
    decay = parser.add_argument_group(
        "learning-rate decay (may be set on resume: anneal a run whose curve has flattened)"
    )
    decay.add_argument(
        "--decay-start-step",
        type=integer_at_least(0),
        metavar="STEP",
        help=f"the step where the cosine decay begins (default {defaults.decay_start_step})",
    )
    decay.add_argument(
        "--decay-steps",
        type=integer_at_least(0),
        metavar="N",
        help=f"the decay's length in steps; 0 keeps the rate constant (default "
        f"{defaults.decay_steps})",
    )
    decay.add_argument(
        "--final-lr-fraction",
        type=share,
        metavar="F",
        help=f"the rate at the decay's end, relative to --lr (default "
        f"{defaults.final_lr_fraction})",
    )


def handle(arguments: argparse.Namespace) -> int:
    import torch

    from casbo_bench.devices import resolve_device
    from casbo_bench.molecules.checkpoint import STATE_FILE
    from casbo_bench.molecules.data import load_dataset
    from casbo_bench.molecules.training.edm import (
        Trainer,
        count_parameters,
        resume_trainer,
        stop_on_signals,
    )

    given = config_options(arguments, TrainingConfig)
    out: Path = arguments.out
    resume = arguments.resume or (arguments.resume_if_present and (out / STATE_FILE).exists())
    if not resume and (out / STATE_FILE).exists():
        raise UsageError(
            f"{out / STATE_FILE} exists; continue it with --resume or choose another --out"
        )
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = resolve_device(arguments.device, NAME, UsageError)
    dataset = load_dataset(arguments.data)
    if resume:
        trainer = resume_trainer(out, dataset, device, data_path=arguments.data, overrides=given)
    else:
        trainer = Trainer(TrainingConfig(**given), dataset, out, device, data_path=arguments.data)
    logger.info(
        "EDM: %s parameters, device %s, %d threads, step %d, config %s",
        f"{count_parameters(trainer.model):,}",
        device,
        torch.get_num_threads(),
        trainer.progress.step,
        trainer.config,
    )
    with stop_on_signals(trainer):
        progress = trainer.run(
            max_seconds=3600.0 * arguments.hours,
            max_steps=arguments.max_steps,
            progress_bar=not arguments.no_progress,
        )
    logger.info(
        "stopped at step %d (%s molecules, %.2f h in all); checkpoint in %s",
        progress.step,
        f"{progress.molecules_seen:,}",
        progress.wall_seconds / 3600,
        out,
    )
    return 0
