"""``casbo-bench molecule-report``: tables, figures and SDF of the molecule benchmark."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import (
    UsageError,
    add_band_arguments,
    add_title_prefix,
    integer_at_least,
    probability,
    share,
    writable_file,
    writable_folder,
)
from casbo_bench.names import DEVICE_NAMES

NAME = "molecule-report"
HELP = "Tables, figures and SDF of the molecule benchmark from its traces."
EXAMPLES = (
    "casbo-bench molecule-report --tables-dir results/default/tables/molecules "
    "--figures-dir paper_figures/default/molecules "
    "--sdf results/default/molecules/best_molecules.sdf --predictor models/property_predictor "
    "results/default/molecules/raw/*/*.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tables-dir", required=True, type=writable_folder("table"), help="folder of the tables"
    )
    parser.add_argument(
        "--figures-dir",
        required=True,
        type=writable_folder("figure"),
        help="folder of the figures",
    )
    parser.add_argument(
        "--sdf", required=True, type=writable_file(".sdf"), help="SDF file of the best structures"
    )
    models = parser.add_mutually_exclusive_group()
    models.add_argument(
        "--models-dir",
        type=Path,
        help="folder of the stored models; the predictor is its property_predictor/ (default: "
        "models/ of the current folder)",
    )
    models.add_argument("--predictor", type=Path, help="the property predictor folder itself")
    models.add_argument(
        "--no-predictor",
        action="store_true",
        help="leave the predicted-property columns empty (no predictor is loaded)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="cpu",
        help="where the property predictor runs: auto (CUDA when available), cpu or cuda "
        "(default cpu)",
    )
    parser.add_argument("--reference", default="casbo", help="method compared against")
    parser.add_argument("--alpha", type=probability, default=0.05, help="significance level")
    parser.add_argument(
        "--optimized-fraction",
        type=share,
        default=0.25,
        help="share of each run's last evaluations counted as its optimized molecules",
    )
    parser.add_argument(
        "--call-budget",
        type=integer_at_least(1),
        help="the equal black-box calls the table reads every method at (default: the least "
        "each method's runs spent)",
    )
    parser.add_argument(
        "--denoiser-budget",
        type=integer_at_least(1),
        help="the equal denoiser evaluations the table reads every method at (default: the "
        "least each method's runs spent)",
    )
    add_band_arguments(parser, "the median score curve")
    add_title_prefix(parser)
    parser.add_argument("traces", nargs="+", type=Path, metavar="TRACE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.analysis import molecules
    from casbo_bench.traces import load_traces

    predictor = None
    if not arguments.no_predictor:
        from casbo_bench.devices import resolve_device
        from casbo_bench.molecules.checkpoint import load_predictor, predictor_folder

        folder = arguments.predictor or predictor_folder(arguments.models_dir)
        device = resolve_device(arguments.device, NAME, UsageError)
        predictor = load_predictor(folder, device=device).model
    written = molecules.make_report(
        load_traces(arguments.traces),
        arguments.tables_dir,
        arguments.figures_dir,
        arguments.sdf,
        predictor,
        arguments.reference,
        arguments.alpha,
        arguments.optimized_fraction,
        band_seed=arguments.seed,
        confidence=arguments.confidence,
        title_prefix=arguments.title_prefix,
        budgets={"calls": arguments.call_budget, "denoiser_evals": arguments.denoiser_budget},
    )
    logger.info("wrote %d files", len(written))
    return 0
