"""``casbo-bench regenerate``: every table, the ledger and every figure from a published
archive, without running an optimizer."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from casbo_bench.cli.common import UsageError, integer_at_least, writable_folder

NAME = "regenerate"
HELP = "Rebuild the tables, rate check, ledger and figures of a published archive (no runs)."
EXAMPLES = (
    "casbo-bench regenerate --archive published/paper-local "
    "--results-out results/paper-local-archive --figures-out paper_figures/paper-local-archive",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive", required=True, type=Path, help="the archive ('casbo-bench publish --out')"
    )
    parser.add_argument(
        "--results-out",
        required=True,
        type=writable_folder("results"),
        help="folder of the rebuilt tables, rate check and ledger",
    )
    parser.add_argument(
        "--figures-out",
        required=True,
        type=writable_folder("figure"),
        help="folder of the rebuilt figures",
    )
    parser.add_argument(
        "--processes",
        type=integer_at_least(1),
        default=None,
        help="worker processes (default: every core this process may use)",
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import publish

    started = time.perf_counter()
    manifest = publish.read_manifest(arguments.archive)
    produced = Path(f"results/{manifest['name']}").resolve()
    if arguments.results_out.resolve() == produced:
        raise UsageError(
            f"--results-out {arguments.results_out} is the run's own folder; give another "
            f"(e.g. results/{manifest['name']}-archive)"
        )
    written = publish.regenerate(
        arguments.archive, arguments.results_out, arguments.figures_out, arguments.processes
    )
    logger.info("wrote %d files in %.1f s", len(written), time.perf_counter() - started)
    return 0
