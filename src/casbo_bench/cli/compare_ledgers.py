"""``casbo-bench compare-ledgers``: two runs' claims ledgers side by side."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import UsageError, writable_file

NAME = "compare-ledgers"
HELP = "Set two runs' claims ledgers side by side (one decision rule), naming disagreements."
DESCRIPTION = (
    "Set the claims ledgers of two runs (results/<name> or published/<name>, each with "
    "claims.csv and claims_spec.json) side by side: each claim record's verdict and cell counts "
    "in both, the records where they disagree with each side's reason, and the cells judged in "
    "both. Ledgers judged under different decision rules are refused."
)
EXAMPLES = (
    "casbo-bench compare-ledgers published/claims published/paper-local",
    "casbo-bench compare-ledgers published/claims published/paper-local "
    "--out docs/ledgers/claims-vs-paper-local.md",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", type=Path, metavar="FIRST", help="a run's results or archive")
    parser.add_argument("second", type=Path, metavar="SECOND", help="the other run's")
    parser.add_argument(
        "--out",
        type=writable_file(".md"),
        help="write the comparison to this Markdown file (default: print it)",
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.analysis.ledger_compare import comparison_markdown, read_side
    from casbo_bench.files import write_text_atomically

    for folder in (arguments.first, arguments.second):
        if not folder.is_dir():
            raise UsageError(f"{folder} is not a folder; give results/<name> or published/<name>")
    page = comparison_markdown(read_side(arguments.first), read_side(arguments.second))
    if arguments.out is None:
        print(page, end="")
    else:
        write_text_atomically(arguments.out, page)
        logger.info("wrote %s", arguments.out)
    return 0
