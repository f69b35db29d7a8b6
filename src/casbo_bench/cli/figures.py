"""``casbo-bench figures``: convergence curves, the win matrix and the runtime ECDF of one
benchmark group."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import (
    add_band_arguments,
    add_target_arguments,
    add_title_prefix,
    target_rule,
    trace_files,
    writable_folder,
)

NAME = "figures"
HELP = "Draw convergence curves, the win matrix and the runtime ECDF from traces (PDF and PNG)."
EXAMPLES = (
    "casbo-bench figures --out-dir paper_figures/default/plain "
    "results/default/raw/plain/*/*.parquet",
    "casbo-bench figures --out-dir figures --title-prefix 'default · plain' traces/*.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", required=True, type=writable_folder("figure"), help="folder of the figures"
    )
    add_band_arguments(parser, "the median curve")
    add_target_arguments(parser)
    add_title_prefix(parser)
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    files = trace_files(arguments, NAME)
    from casbo_bench.analysis import figures
    from casbo_bench.traces import load_traces

    written = figures.make_figures(
        load_traces(files),
        arguments.out_dir,
        seed=arguments.seed,
        confidence=arguments.confidence,
        targets=target_rule(arguments),
        title_prefix=arguments.title_prefix,
    )
    logger.info("wrote %d figure files to %s", len(written), arguments.out_dir)
    return 0
