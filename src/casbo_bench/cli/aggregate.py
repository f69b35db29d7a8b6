"""``casbo-bench aggregate``: the tables of one benchmark group from its traces."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from casbo_bench.cli.common import (
    UsageError,
    add_target_arguments,
    budget_word,
    integer_at_least,
    is_budget_word,
    leading_values,
    probability,
    target_rule,
    trace_files,
    writable_folder,
)

NAME = "aggregate"
HELP = (
    "Build the tables (final loss, significance against the reference, ERT, runtime ECDF, "
    "fixed budgets, ranks) from traces."
)
EXAMPLES = (
    "casbo-bench aggregate --out-dir results/default/tables/plain "
    "results/default/raw/plain/*/*.parquet",
    "casbo-bench aggregate --out-dir tables --reference casbo --alpha 0.05 "
    "--fixed-budgets 10d 100d --target-fractions 0.1 0.01 0.001 traces/*.parquet",
    "casbo-bench aggregate --out-dir tables --targets 1 0.01 1e-6 traces/*.parquet",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", required=True, type=writable_folder("table"), help="folder of the tables"
    )
    parser.add_argument("--reference", default="casbo", help="method every other is tested against")
    parser.add_argument(
        "--alpha", type=probability, help="significance level of the Holm-corrected tests"
    )
    add_target_arguments(parser)
    parser.add_argument(
        "--fixed-budgets",
        nargs="*",
        action=leading_values(budget_word, is_budget_word, minimum=0),
        metavar="B",
        help="budgets of the fixed-budget table besides every method's own: N (evaluations) "
        "or Nd (N x d); default 10d 100d",
    )
    parser.add_argument(
        "--seed",
        type=integer_at_least(0),
        default=0,
        help="seed of the bootstrap intervals (default 0)",
    )
    parser.add_argument(
        "--confidence",
        type=probability,
        default=0.95,
        help="level of the runtime ECDF's bootstrap band (default 0.95)",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    files = trace_files(arguments, NAME)
    from casbo_bench.analysis import tables
    from casbo_bench.traces import load_traces

    settings: dict[str, Any] = {
        "reference": arguments.reference,
        "targets": target_rule(arguments),
        "seed": arguments.seed,
        "confidence": arguments.confidence,
    }
    if arguments.alpha is not None:
        settings["alpha"] = arguments.alpha
    if arguments.fixed_budgets is not None:
        settings["fixed_budgets"] = tuple(arguments.fixed_budgets)
    traces = load_traces(files)
    try:
        built = tables.build_tables(traces, **settings)
    except tables.MissingReferenceError as error:
        raise UsageError(f"{error} (set it with --reference)") from None
    written = tables.write_tables(built, arguments.out_dir)
    logger.info("wrote %d table files to %s", len(written), arguments.out_dir)
    return 0
