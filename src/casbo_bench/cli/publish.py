"""``casbo-bench publish``: the compact archive of a finished run, or a check of one."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from casbo_bench.cli.common import UsageError, writable_folder

NAME = "publish"
HELP = "Write the compact archive of a finished run (published/<name>), or check one (--check)."
DESCRIPTION = (
    "Write the compact archive of a finished run: its tables, claims ledger, rate-check "
    "verdicts and gaps, compact traces from which every table, the ledger and every figure "
    "are rebuilt exactly ('casbo-bench regenerate', 'make figures'; the molecule report's "
    "tables, score figures and SDF file are kept as written), and manifest.json "
    "(config and its sha256, hashes, commits, machines, dates, CPU-hours, every file's "
    "sha256). With --check ARCHIVE: verify an archive (sha256 of every file, schemas)."
)
EXAMPLES = (
    "casbo-bench publish --results results/paper-local --figures paper_figures/paper-local "
    "--out published/paper-local",
    "casbo-bench publish --check published/paper-local",
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, help="the finished run's results/<name>")
    parser.add_argument("--figures", type=Path, help="its figures, paper_figures/<name>")
    parser.add_argument(
        "--out", type=writable_folder("archive"), help="the archive folder (new or empty)"
    )
    parser.add_argument("--check", type=Path, metavar="ARCHIVE", help="verify this archive")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import publish

    if arguments.check is not None:
        manifest = publish.check_archive(arguments.check)
        print(
            f"{arguments.check}: ok ({len(manifest['files'])} files, {manifest['runs']} runs, "
            f"config {manifest['name']})"
        )
        return 0
    missing = [
        f"--{name}" for name in ("results", "figures", "out") if not getattr(arguments, name)
    ]
    if missing:
        raise UsageError(f"give {', '.join(missing)} (or --check ARCHIVE)")
    if not arguments.results.is_dir():
        raise UsageError(f"--results {arguments.results} is not a folder; give results/<name>")
    written = publish.publish(arguments.results, arguments.figures, arguments.out)
    logger.info("wrote %s", written)
    return 0
