"""``casbo-bench aggregate``: the tables of one benchmark group from its traces."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from casbo_bench.cli.common import (
    UsageError,
    is_number,
    positive_number,
    probability,
    writable_folder,
)

NAME = "aggregate"
HELP = "Build the tables (final loss, significance against the reference, ERT) from traces."
EXAMPLES = (
    "casbo-bench aggregate --out-dir results/default/tables/plain "
    "results/default/raw/plain/*/*.parquet",
    "casbo-bench aggregate --out-dir tables --reference casbo --alpha 0.05 --targets 1 0.01 1e-6 "
    "traces/*.parquet",
)

logger = logging.getLogger(__name__)


class TargetsAction(argparse.Action):
    """``--targets T [T ...] FILE ...``: leading numbers are targets, the rest trace files.

    argparse's ``nargs="+"`` would take the files too, and the workflow writes the targets
    right before the files; the files found here are put in front of the positional ones.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        texts = [str(value) for value in values or []]
        count = next((i for i, text in enumerate(texts) if not is_number(text)), len(texts))
        if count == 0:
            raise argparse.ArgumentError(self, "expected at least one number")
        try:
            targets = [positive_number(text) for text in texts[:count]]
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentError(self, str(error)) from None
        setattr(namespace, self.dest, targets)
        namespace.files_after_targets = [Path(text) for text in texts[count:]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir", required=True, type=writable_folder("table"), help="folder of the tables"
    )
    parser.add_argument("--reference", default="casbo", help="method every other is tested against")
    parser.add_argument(
        "--alpha", type=probability, help="significance level of the Holm-corrected tests"
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        action=TargetsAction,
        metavar="T",
        help="fixed loss targets of the expected-running-time table",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    files = [*getattr(arguments, "files_after_targets", []), *arguments.files]
    if not files:
        raise UsageError("give at least one trace file; see 'casbo-bench aggregate --help'")
    from casbo_bench.analysis import tables
    from casbo_bench.traces import load_traces

    settings: dict[str, Any] = {"reference": arguments.reference}
    if arguments.alpha is not None:
        settings["alpha"] = arguments.alpha
    if arguments.targets is not None:
        if len(set(arguments.targets)) != len(arguments.targets):
            raise UsageError(f"--targets must be distinct; got {arguments.targets}")
        settings["targets"] = tuple(arguments.targets)
    traces = load_traces(files)
    try:
        built = tables.build_tables(traces, **settings)
    except tables.MissingReferenceError as error:
        raise UsageError(f"{error} (set it with --reference)") from None
    written = tables.write_tables(built, arguments.out_dir)
    logger.info("wrote %d table files to %s", len(written), arguments.out_dir)
    return 0
