"""``casbo-bench train-predictor``: train the heavy-atom property predictor (alpha, gap, mu)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import (
    UsageError,
    config_options,
    integer_at_least,
    positive_number,
    writable_folder,
)
from casbo_bench.molecules.training.config import PredictorConfig
from casbo_bench.names import DEVICE_NAMES

NAME = "train-predictor"
HELP = (
    "Train the heavy-atom property predictor (alpha, gap, mu) on QM9's property split, "
    "early-stopped on validation, measured on test."
)
EXAMPLES = (
    "casbo-bench train-predictor --data results/data/qm9_heavy.npz "
    "--out models/property_predictor --threads 1",
    "casbo-bench train-predictor --data results/data/qm9_heavy.npz "
    "--out models/property_predictor --epochs 9 --max-minutes 22 --device cuda",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PredictorConfig()
    parser.add_argument("--data", required=True, type=Path, help="cached QM9 npz")
    parser.add_argument(
        "--out", required=True, type=writable_folder("predictor"), help="output folder"
    )
    parser.add_argument(
        "--threads", type=integer_at_least(1), default=1, help="torch CPU threads (default 1)"
    )
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="auto",
        help="where to train: auto (CUDA when available, else CPU), cpu or cuda (default auto)",
    )
    parser.add_argument(
        "--max-minutes", type=positive_number, default=None, help="wall-time cap (default: none)"
    )
    parser.add_argument("--hidden", type=int, default=defaults.hidden)
    parser.add_argument(
        "--blocks", dest="n_blocks", metavar="N", type=int, default=defaults.n_blocks
    )
    parser.add_argument(
        "--batch", dest="batch_size", metavar="N", type=int, default=defaults.batch_size
    )
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--seed", type=int, default=defaults.seed)


def handle(arguments: argparse.Namespace) -> int:
    import torch

    from casbo_bench.devices import resolve_device
    from casbo_bench.molecules.data import PROPERTY_UNITS, load_dataset
    from casbo_bench.molecules.training.predictor import EDM_CLASSIFIER_MAE, train_and_save

    torch.set_num_threads(arguments.threads)
    config = PredictorConfig(**config_options(arguments, PredictorConfig))
    device = resolve_device(arguments.device, NAME, UsageError)
    dataset = load_dataset(arguments.data)
    max_seconds = None if arguments.max_minutes is None else 60.0 * arguments.max_minutes
    _, record, test_mae = train_and_save(
        dataset, config, arguments.out, arguments.data, device, max_seconds
    )
    described = ", ".join(
        f"{name} {value:.4g} {PROPERTY_UNITS[name]} "
        f"(EDM all-atom {EDM_CLASSIFIER_MAE[name]['value']})"
        for name, value in zip(config.properties, test_mae, strict=True)
    )
    logger.info(
        "test MAE: %s; best epoch %d of %d, %.1f min; wrote %s",
        described,
        record.best_epoch,
        record.epochs_run,
        record.wall_seconds / 60,
        arguments.out,
    )
    return 0
