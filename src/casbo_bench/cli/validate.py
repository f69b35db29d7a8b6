"""``casbo-bench validate``: trace files against the trace schema, one line per file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import UsageError

NAME = "validate"
HELP = "Check trace files against the trace schema and their provenance; one line per file."
EXAMPLES = ("casbo-bench validate results/default/raw/plain/casbo/*.parquet",)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.schemas.trace import RUN_KEYS, TraceValidationError
    from casbo_bench.traces import TraceFileError, read_provenance, read_trace

    failed = 0
    for path in arguments.files:
        try:
            trace = read_trace(path)
            record = read_provenance(path)
        except (TraceFileError, TraceValidationError) as error:
            failed += 1
            detail = "; ".join(line.strip(" -") for line in str(error).splitlines()[1:])
            print(f"{path}: invalid: {detail or error}")
            continue
        runs = len(trace.drop_duplicates(list(RUN_KEYS)))
        print(
            f"{path}: ok ({len(trace)} rows, {runs} run(s), commit "
            f"{str(record.get('git_commit', 'unknown'))[:12]})"
        )
    if failed:
        raise UsageError(
            f"{failed} of {len(arguments.files)} trace file(s) failed validation (see above)"
        )
    return 0
