"""Compare the tables of two results folders of one config: the same numbers, or where not.

A change that should not move any number (a refactor, a faster implementation) is checked by
running the same config in two checkouts and comparing what they wrote::

    python scripts/compare_results.py ../before/results/default results/default
    python scripts/compare_results.py A B --also rate_checks/local_slopes.csv --rtol 1e-9

Compared, as paths relative to the two folders: every CSV under ``tables/`` (recursively,
``tables/molecules/`` included), ``claims.csv``, ``rate_checks/verdicts.csv``, and each
``--also`` path. A file present in neither folder is skipped (a config without rate checks
writes no verdicts), except an ``--also`` path, which must exist in at least one.

Two files are the same when both exist, their headers are equal (names and order), they have
as many rows, and every pair of cells agrees. Cells are read as text (no type coercion) and
compared by what both sides parse as: integers exactly, else floats to a relative tolerance
(``--rtol``, default 1e-12, no absolute tolerance; NaN equals NaN, an infinity equals the
infinity of the same sign), else strings exactly.

Prints one line per file, ``same`` or its first differences (row 1 is the first row after the
header), then a summary. Exit status: 0 when every file is the same, 1 when any differs, 2 on
a usage error (a folder that does not exist).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

DEFAULT_FILES = ("claims.csv", "rate_checks/verdicts.csv")
"""Compared in every pair of folders, besides the CSVs under tables/."""

TABLES = "tables"
DEFAULT_RTOL = 1e-12
DEFAULT_SHOWN = 5

_INTEGER = re.compile(r"[+-]?[0-9]+")
_ABSENT_CELL = "<no cell>"


class UsageError(Exception):
    """The command line names something that cannot be compared."""


@dataclass
class FileComparison:
    """The outcome for one relative path.

    Attributes:
        path: the file, relative to both folders (POSIX separators).
        differences: one line per difference found, in file order; empty when the same.
    """

    path: str
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """Whether no difference was found."""
        return not self.differences


def _as_float(text: str) -> float | None:
    """The float ``text`` spells (``nan`` and ``inf`` included), or None."""
    try:
        return float(text)
    except ValueError:
        return None


def cells_agree(left: str, right: str, rtol: float = DEFAULT_RTOL) -> bool:
    """Whether two CSV cells hold the same value.

    Integers on both sides compare exactly, floats on both sides to relative tolerance
    ``rtol`` (NaN equals NaN, infinities equal when of the same sign), anything else as
    strings.

    >>> cells_agree("1.0", "1.0000000000000002"), cells_agree("7", "8"), cells_agree("a", "a ")
    (True, False, False)
    """
    if _INTEGER.fullmatch(left) and _INTEGER.fullmatch(right):
        return int(left) == int(right)
    left_float, right_float = _as_float(left), _as_float(right)
    if left_float is None or right_float is None:
        return left == right
    if math.isnan(left_float) or math.isnan(right_float):
        return math.isnan(left_float) and math.isnan(right_float)
    if math.isinf(left_float) or math.isinf(right_float):
        return left_float == right_float
    return math.isclose(left_float, right_float, rel_tol=rtol, abs_tol=0.0)


def _read_rows(path: Path) -> list[list[str]]:
    """Every row of a CSV file as text, the header first."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def compare_files(left: Path, right: Path, path: str, rtol: float = DEFAULT_RTOL) -> FileComparison:
    """Compare ``left / path`` with ``right / path``, cell by cell."""
    comparison = FileComparison(path)
    missing = [
        side for side, folder in (("left", left), ("right", right)) if not (folder / path).is_file()
    ]
    if missing:
        comparison.differences.append(f"{path}: missing on the {' and '.join(missing)} side")
        return comparison
    left_rows, right_rows = _read_rows(left / path), _read_rows(right / path)
    left_header, right_header = (left_rows[:1] or [[]])[0], (right_rows[:1] or [[]])[0]
    if left_header != right_header:
        comparison.differences.append(f"{path}: columns {left_header} != {right_header}")
        return comparison
    if len(left_rows) != len(right_rows):
        comparison.differences.append(
            f"{path}: {len(left_rows) - 1} rows on the left, {len(right_rows) - 1} on the right"
        )
        return comparison
    for row, (left_cells, right_cells) in enumerate(
        zip(left_rows[1:], right_rows[1:], strict=True), start=1
    ):
        pairs = zip_longest(left_cells, right_cells, fillvalue=_ABSENT_CELL)
        for index, (left_cell, right_cell) in enumerate(pairs):
            if not cells_agree(left_cell, right_cell, rtol):
                column = left_header[index] if index < len(left_header) else f"#{index + 1}"
                comparison.differences.append(
                    f"{path}: row {row}, column {column!r}: left {left_cell!r}, "
                    f"right {right_cell!r}"
                )
    return comparison


def compared_paths(left: Path, right: Path, also: Sequence[str] = ()) -> list[str]:
    """The relative paths to compare: tables/**/*.csv of either folder, the default files
    present in either, and every ``also`` path.

    Raises:
        UsageError: an ``also`` path exists in neither folder.
    """
    paths = {
        csv_file.relative_to(folder).as_posix()
        for folder in (left, right)
        for csv_file in (folder / TABLES).rglob("*.csv")
    }
    paths |= {name for name in DEFAULT_FILES if (left / name).is_file() or (right / name).is_file()}
    for name in also:
        if not ((left / name).is_file() or (right / name).is_file()):
            raise UsageError(f"--also {name}: no such file in {left} or {right}")
        paths.add(Path(name).as_posix())
    return sorted(paths)


def compare_folders(
    left: Path, right: Path, also: Sequence[str] = (), rtol: float = DEFAULT_RTOL
) -> list[FileComparison]:
    """Compare every file of :func:`compared_paths`, in sorted order.

    Raises:
        UsageError: a folder does not exist, or an ``also`` path exists in neither.
    """
    for folder in (left, right):
        if not folder.is_dir():
            raise UsageError(f"results folder {folder} does not exist")
    return [compare_files(left, right, path, rtol) for path in compared_paths(left, right, also)]


def report(comparisons: Sequence[FileComparison], shown: int = DEFAULT_SHOWN) -> list[str]:
    """The printed lines: per file ``same`` or its first ``shown`` differences; a summary."""
    lines = []
    for comparison in comparisons:
        if comparison.same:
            lines.append(f"{comparison.path}: same")
            continue
        lines.extend(comparison.differences[:shown])
        hidden = len(comparison.differences) - shown
        if hidden > 0:
            lines.append(f"{comparison.path}: ... and {hidden} more differences")
    different = sum(not comparison.same for comparison in comparisons)
    files = "file" if len(comparisons) == 1 else "files"
    lines.append(
        f"{len(comparisons)} {files} compared: {len(comparisons) - different} same, "
        f"{different} different"
    )
    return lines


def _non_negative(convert: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type: ``convert(text)``, refused unless it is a number >= 0."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0; got {text!r}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare_results.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("left", type=Path, help="one results folder, e.g. results/default")
    parser.add_argument("right", type=Path, help="the other results folder")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="PATH",
        help="one more CSV to compare, relative to the folders (repeatable)",
    )
    parser.add_argument(
        "--rtol",
        type=_non_negative(float),
        default=DEFAULT_RTOL,
        help=f"relative tolerance of float cells (default {DEFAULT_RTOL:g})",
    )
    parser.add_argument(
        "--show",
        type=_non_negative(int),
        default=DEFAULT_SHOWN,
        metavar="N",
        help=f"differences printed per file (default {DEFAULT_SHOWN})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns the exit status (0 same, 1 different, 2 usage error)."""
    arguments = _parser().parse_args(argv)
    try:
        comparisons = compare_folders(
            arguments.left, arguments.right, arguments.also, arguments.rtol
        )
    except UsageError as error:
        print(f"compare_results.py: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(report(comparisons, arguments.show)))
    return 0 if all(comparison.same for comparison in comparisons) else 1


if __name__ == "__main__":
    sys.exit(main())
