"""``casbo-bench error-ladder``: the error-ladder table from the tasks' ladder molecules."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import add_band_arguments, integer_at_least, writable_folder

NAME = "error-ladder"
HELP = (
    "The error-ladder table (MAE to the target by the predictor and by calibrated xTB, per "
    "rung) from the files of casbo-bench ladder-molecules."
)
EXAMPLES = (
    "casbo-bench error-ladder --tables-dir results/default/tables/molecules "
    "results/default/molecules/ladder/mol-alpha.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tables-dir", required=True, type=writable_folder("table"), help="folder of the table"
    )
    parser.add_argument("--methods", nargs="*", default=[], help="the methods' order in the table")
    parser.add_argument(
        "--resamples", type=integer_at_least(100), default=2000, help="bootstrap resamples"
    )
    add_band_arguments(parser, "each MAE")
    parser.add_argument("molecules", nargs="+", type=Path, metavar="LADDER.parquet")


def handle(arguments: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from casbo_bench.analysis.ladder import ladder_table, write_ladder
    from casbo_bench.schemas.ladder import validate_ladder_molecules

    tasks = []
    for path in arguments.molecules:
        molecules = validate_ladder_molecules(pd.read_parquet(path))
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        tasks.append((molecules, meta))
    table = ladder_table(
        tasks,
        arguments.methods,
        seed=arguments.seed,
        confidence=arguments.confidence,
        resamples=arguments.resamples,
    )
    for path in write_ladder(table, arguments.tables_dir):
        logger.info("wrote %s", path)
    return 0
