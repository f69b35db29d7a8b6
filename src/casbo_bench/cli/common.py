"""What every ``casbo-bench`` subcommand shares: the error contract and argument types.

The error contract: a mistake of the user's (an argument, a config, a data file, a black box
that fails under ``--on-failure stop``) ends the command with exactly one line on stderr,
``casbo-bench <command>: error: <what is wrong>; <how to fix it>``, and exit status 2;
``--debug`` shows the traceback instead. A command raises :class:`UsageError` for its own
checks; the package's own errors (:class:`casbo_bench.errors.UserFacingError`) are reported
the same way; anything else is a bug and shows its traceback.

A subcommand is one module of :mod:`casbo_bench.cli` with

- ``NAME``, ``HELP`` (one line, in ``casbo-bench --help``), optionally ``DESCRIPTION`` (the
  longer text of its own ``--help``), and ``EXAMPLES`` (shown at the end of ``--help``);
- ``add_arguments(parser)``, its arguments;
- ``handle(arguments) -> int``, its work, returning the exit status.

Its module imports only the standard library and this module at the top: heavy libraries
(torch, pandas, RDKit) are imported inside ``handle``, so ``casbo-bench --help`` is fast and
one command never needs another's dependencies.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

PROG = "casbo-bench"
EXIT_USER_ERROR = 2

logger = logging.getLogger("casbo_bench.cli")


class UsageError(Exception):
    """A command-line mistake; the message says what is wrong and how to fix it."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors become :class:`UsageError` (one line, status 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def integer_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def bounded_number(holds: Callable[[float], bool], requirement: str) -> Callable[[str], float]:
    """An argparse type: a number for which ``holds`` is true, else an error saying
    ``must be <requirement>``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not holds(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}; got {text!r}")
        return value

    parse.__name__ = requirement
    return parse


probability = bounded_number(lambda p: 0 < p < 1, "strictly between 0 and 1")
share = bounded_number(lambda p: 0 < p <= 1, "in (0, 1]")
positive_number = bounded_number(lambda x: x > 0 and math.isfinite(x), "a positive finite number")
non_negative_number = bounded_number(lambda x: x >= 0 and math.isfinite(x), "a finite number >= 0")
finite_number = bounded_number(math.isfinite, "a finite number")


def iteration_grid(text: str) -> list[int]:
    """``"3,10,30"`` -> ``[3, 10, 30]``: at least two distinct integers >= 1."""
    try:
        grid = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 3,10,30; got {text!r}"
        ) from None
    if len(grid) < 2 or min(grid) < 1 or len(set(grid)) != len(grid):
        raise argparse.ArgumentTypeError(
            f"needs at least two distinct iteration counts >= 1; got {text!r}"
        )
    return sorted(grid)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def budget_word(text: str) -> str | int:
    """``"10d"`` (10 x d evaluations) or ``"200"`` (200 evaluations) -> ``"10d"`` or ``200``."""
    if re.fullmatch(r"[1-9][0-9]*", text):
        return int(text)
    if re.fullmatch(r"[1-9][0-9]*d", text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected an evaluation count such as 200 or 10d (10 x d); got {text!r}"
    )


def is_budget_word(text: str) -> bool:
    return re.fullmatch(r"[0-9]+d?", text) is not None


def leading_values(
    parse: Callable[[str], Any], is_value: Callable[[str], bool], minimum: int = 1
) -> type[argparse.Action]:
    """An action for ``--option V [V ...] FILE ...``: the leading words for which ``is_value``
    holds are parsed as the option's values (at least ``minimum``), the rest are trace files,
    put in front of the positional ones (``files_after_options``).

    argparse's ``nargs="+"`` would take the files too, and the workflow writes such an option
    right before the files.
    """

    class LeadingValues(argparse.Action):
        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: str | Sequence[Any] | None,
            option_string: str | None = None,
        ) -> None:
            texts = [str(value) for value in values or []]
            count = next((i for i, text in enumerate(texts) if not is_value(text)), len(texts))
            if count < minimum:
                raise argparse.ArgumentError(self, "expected at least one number")
            try:
                parsed = [parse(text) for text in texts[:count]]
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentError(self, str(error)) from None
            setattr(namespace, self.dest, parsed)
            files = getattr(namespace, "files_after_options", None) or []
            namespace.files_after_options = [*files, *(Path(text) for text in texts[count:])]

    return LeadingValues


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The pre-registered targets of the ERT and the runtime ECDF: relative (the default,
    ``--target-fractions``) or absolute (``--targets``), never both."""
    targets = parser.add_mutually_exclusive_group()
    targets.add_argument(
        "--target-fractions",
        nargs="+",
        action=leading_values(share, is_number),
        metavar="F",
        help="targets as fractions in (0, 1] of each setting's median initial gap (the "
        "median first loss over all its runs); default 1e-1 ... 1e-6",
    )
    targets.add_argument(
        "--targets",
        nargs="+",
        action=leading_values(positive_number, is_number),
        metavar="T",
        help="absolute loss targets, the same in every setting (instead of fractions)",
    )


def target_rule(arguments: argparse.Namespace) -> Any:
    """The :class:`casbo_bench.analysis.ert.TargetRule` of :func:`add_target_arguments`."""
    from casbo_bench.analysis.ert import TargetRule

    for option, values in (
        ("--targets", arguments.targets),
        ("--target-fractions", arguments.target_fractions),
    ):
        if values is not None and len(set(values)) != len(values):
            raise UsageError(f"{option} must be distinct; got {values}")
    if arguments.targets is not None:
        return TargetRule.absolute(arguments.targets)
    if arguments.target_fractions is not None:
        return TargetRule.relative(arguments.target_fractions)
    return TargetRule.relative()


def trace_files(arguments: argparse.Namespace, command: str) -> list[Path]:
    """The trace files of the command line: those after an option's values, then the
    positional ones; at least one."""
    files = [*(getattr(arguments, "files_after_options", None) or []), *arguments.files]
    if not files:
        raise UsageError(
            f"give at least one trace file (FILE.parquet); see 'casbo-bench {command} --help'"
        )
    return files


def number_list(text: str) -> list[float]:
    """``"-0.3,-0.5"`` -> ``[-0.3, -0.5]``: at least one finite number."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as -0.3,-0.5,-0.7; got {text!r}"
        ) from None
    if not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"every number must be finite; got {text!r}")
    return values


def _unwritable(folder: Path) -> str | None:
    """Why files cannot be written in ``folder``, which may not exist yet (the writers create
    it with its parents), or None when they can: its nearest existing ancestor (or itself)
    must be a writable folder."""
    try:
        existing = next((path for path in (folder, *folder.parents) if path.exists()), None)
    except OSError as error:
        return f"{folder} cannot be reached ({error.strerror or error})"
    if existing is None:
        return f"neither {folder} nor any folder above it exists"
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def writable_folder(what: str) -> Callable[[str], Path]:
    """An argparse type: a folder the command writes its ``what`` files in.

    Checked when the arguments are read, before any work, and without creating anything (the
    writers create it): it is a folder or does not exist yet, and it can be created and
    written. Otherwise the command ends with one line naming the argument.
    """

    def parse(text: str) -> Path:
        folder = Path(text)
        problem = _unwritable(folder)
        if problem is not None:
            raise argparse.ArgumentTypeError(
                f"cannot write the {what} folder {text}: {problem}; choose a writable folder"
            )
        return folder

    parse.__name__ = f"{what} folder"
    return parse


def writable_file(suffix: str) -> Callable[[str], Path]:
    """An argparse type: a file the command writes, whose name ends in ``suffix``.

    Checked when the arguments are read, before any work, and without creating anything: it
    ends in ``suffix``, is not an existing folder, and its folder can be created and written.
    """

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix != suffix:
            raise argparse.ArgumentTypeError(
                f"{text!r} does not end in {suffix}; name a {suffix} file"
            )
        if path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text} is an existing folder; name a file in it, e.g. {path / ('out' + suffix)}"
            )
        problem = _unwritable(path.parent)
        if problem is not None:
            raise argparse.ArgumentTypeError(
                f"cannot write {text}: {problem}; choose a writable location"
            )
        return path

    parse.__name__ = f"{suffix} file"
    return parse


def config_options(arguments: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The fields of the dataclass ``config_class`` given on the command line: the options
    whose destination is a field's name and whose value is not None."""
    return {
        field.name: getattr(arguments, field.name)
        for field in dataclasses.fields(config_class)
        if getattr(arguments, field.name, None) is not None
    }


def add_title_prefix(parser: argparse.ArgumentParser) -> None:
    """``--title-prefix TEXT``: the start of every figure title (the workflow passes the
    config's name, and the benchmark group where there is one)."""
    parser.add_argument(
        "--title-prefix",
        default="",
        metavar="TEXT",
        help="start of every figure's title, e.g. the config and group: 'default · plain' "
        "(default: none, the title names the cell alone)",
    )


def add_band_arguments(parser: argparse.ArgumentParser, band: str) -> None:
    """``--confidence`` and ``--seed`` of the bootstrap ``band`` a command draws."""
    parser.add_argument(
        "--confidence",
        type=probability,
        default=0.95,
        help=f"level of the bootstrap band around {band} (default 0.95)",
    )
    parser.add_argument(
        "--seed",
        type=integer_at_least(0),
        default=0,
        help="seed of the bootstrap resampling (default 0)",
    )
