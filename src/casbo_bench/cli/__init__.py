"""The ``casbo-bench`` command line: one subcommand per module of this package.

Benchmark: ``run`` (one job, one Parquet trace), ``list`` (what ``run`` accepts),
``validate``, ``aggregate`` (tables), ``figures``, ``rates`` (the d^2/sqrt(T) rate check),
``claims`` (the ledger), ``cocopp`` (COCO's post-processing of the bbob runs), ``plan``
(what a config will cost on this machine), ``publish`` (the compact archive of a finished run),
``regenerate`` (its tables, ledger and figures from the archive alone), ``store`` (a
run's finished jobs carried to the next machine through git) and ``compare-ledgers`` (two
runs' verdicts side by side). Molecules:
``qm9`` (the data), ``train-edm``, ``train-predictor``, ``evaluate-edm`` (the quality of a
checkpoint's samples) and ``molecule-report``.

Every user error prints one line ``casbo-bench <command>: error: ...`` on stderr and exits
with status 2 (:mod:`casbo_bench.cli.common`); ``--debug`` shows the traceback instead. Each
subcommand's ``--help`` ends with examples, e.g.::

    casbo-bench run --method casbo --problem sphere --dim 9 --seeds 0 --budget 500 --out a.parquet
    casbo-bench validate a.parquet
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from casbo_bench import __version__
from casbo_bench.cli.common import EXIT_USER_ERROR, PROG, Parser, UsageError
from casbo_bench.errors import UserFacingError, one_line

COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "listing",
    "validate",
    "aggregate",
    "figures",
    "rates",
    "claims",
    "coco",
    "plan",
    "publish",
    "regenerate",
    "store",
    "compare_ledgers",
    "qm9",
    "train_edm",
    "train_predictor",
    "evaluate_edm",
    "molecule_report",
    "calibrate_xtb",
    "ladder_molecules",
    "error_ladder",
)
"""The subcommand modules of this package, in the order ``--help`` lists them."""

USER_ERRORS: tuple[type[BaseException], ...] = (UserFacingError, UsageError, OSError)
"""Reported as one line (status 2); anything else is a bug and keeps its traceback."""


def commands() -> dict[str, ModuleType]:
    """Subcommand name -> its module (each cheap to import: heavy imports are in ``handle``)."""
    modules = [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES]
    return {module.NAME: module for module in modules}


def _epilog(examples: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


def build_parser() -> argparse.ArgumentParser:
    """The ``casbo-bench`` parser: one subparser per module of :data:`COMMAND_MODULES`."""
    parser = Parser(
        prog=PROG,
        description="Reproducibility benchmark of covariance-adaptive sequential black-box "
        "optimization (CASBO): run jobs, validate traces, build tables, figures, the rate check "
        "and the claims ledger; prepare, train and evaluate the molecule models.",
        epilog=_epilog(
            [
                f"{PROG} list",
                f"{PROG} run --method casbo --problem sphere --dim 10 --seeds 0 1 2 "
                "--budget 500 --out sphere.parquet",
                f"{PROG} validate sphere.parquet",
                f"{PROG} aggregate --out-dir tables sphere.parquet",
            ]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    debug = Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of any error",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in commands().items():
        subparser = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            parents=[debug],
            epilog=_epilog(module.EXAMPLES),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``casbo-bench``; returns the exit status (0, or 2 for a user error).

    Progress goes to stderr through the ``casbo_bench`` loggers, at INFO level, for the
    duration of the call.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    package_logger = logging.getLogger("casbo_bench")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    # The subcommand is named before parsing, so its argument errors carry its name too.
    named = next((word for word in argv if not word.startswith("-")), None)
    command = f"{PROG} {named}" if named in commands() else PROG
    try:
        arguments = build_parser().parse_args(argv)
        status: int = arguments.module.handle(arguments)
        return status
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{command}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
