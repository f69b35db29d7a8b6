"""scripts/compare_results.py: two results folders, the same tables or their differences."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_results.py"

FINAL_LOSS = [
    ["method", "problem", "dim", "median", "n_seeds"],
    ["casbo", "sphere", "2", "0.012345678901234567", "10"],
    ["cmaes", "sphere", "2", "nan", "10"],
    ["random", "ellipsoid", "5", "-inf", "12"],
]
CLAIMS = [["claim", "verdict", "p_holm"], ["c1", "supported", "1e-05"]]
MOLECULE_SCORES = [["method", "qed"], ["casbo", "0.61"]]


def _load_script() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("compare_results", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up by name while the class body runs.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare_results = _load_script()


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(row) + "\n" for row in rows), encoding="utf-8")


def _results(folder: Path, final_loss: list[list[str]] = FINAL_LOSS) -> Path:
    """A results folder with a table, a molecule table, the claims and the verdicts."""
    _write_csv(folder / "tables" / "plain" / "final_loss.csv", final_loss)
    _write_csv(folder / "tables" / "molecules" / "molecule_scores.csv", MOLECULE_SCORES)
    _write_csv(folder / "claims.csv", CLAIMS)
    _write_csv(folder / "rate_checks" / "verdicts.csv", [["method", "verdict"], ["casbo", "ok"]])
    (folder / "tables" / "plain" / "final_loss.md").write_text("| not a CSV |\n")
    return folder


def _changed(row: int, column: int, value: str) -> list[list[str]]:
    """FINAL_LOSS with one cell replaced (row 1 is the first data row)."""
    rows = [list(cells) for cells in FINAL_LOSS]
    rows[row][column] = value
    return rows


def _compare(left: Path, right: Path, *options: str) -> int:
    return compare_results.main([str(left), str(right), *options])


def test_identical_folders_are_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _compare(_results(tmp_path / "a"), _results(tmp_path / "b")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "claims.csv: same",
        "rate_checks/verdicts.csv: same",
        "tables/molecules/molecule_scores.csv: same",
        "tables/plain/final_loss.csv: same",
        "4 files compared: 4 same, 0 different",
    ]


@pytest.mark.parametrize(
    ("value", "same"),
    [
        ("0.012345678901234579", True),  # 1e-15 relative
        ("0.01234567891234567", False),  # 1e-9 relative
    ],
)
def test_floats_agree_to_the_relative_tolerance(tmp_path: Path, value: str, same: bool) -> None:
    left = _results(tmp_path / "a")
    right = _results(tmp_path / "b", _changed(1, 3, value))
    assert _compare(left, right) == (0 if same else 1)
    assert _compare(left, right, "--rtol", "1e-8") == 0


@pytest.mark.parametrize(
    ("row", "column", "value", "shown"),
    [
        (1, 4, "11", "row 1, column 'n_seeds': left '10', right '11'"),
        (2, 0, "cma-es", "row 2, column 'method': left 'cmaes', right 'cma-es'"),
        (2, 3, "0.5", "row 2, column 'median': left 'nan', right '0.5'"),
        (3, 3, "inf", "row 3, column 'median': left '-inf', right 'inf'"),
    ],
)
def test_a_changed_cell_is_a_difference_naming_row_and_column(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    row: int,
    column: int,
    value: str,
    shown: str,
) -> None:
    left = _results(tmp_path / "a")
    right = _results(tmp_path / "b", _changed(row, column, value))
    assert _compare(left, right) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"tables/plain/final_loss.csv: {shown}" in lines
    assert "tables/plain/final_loss.csv: same" not in lines
    assert "claims.csv: same" in lines
    assert lines[-1] == "4 files compared: 3 same, 1 different"


def test_integers_compare_exactly_beyond_float_precision() -> None:
    assert not compare_results.cells_agree("12345678901234567", "12345678901234568")
    assert compare_results.cells_agree("12345678901234567.0", "12345678901234568.0")
    assert compare_results.cells_agree("nan", "NaN")
    assert not compare_results.cells_agree("0", "1e-300")


def test_a_file_missing_on_one_side_is_a_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left = _results(tmp_path / "a")
    right = _results(tmp_path / "b")
    (right / "tables" / "molecules" / "molecule_scores.csv").unlink()
    (left / "claims.csv").unlink()
    assert _compare(left, right) == 1
    out = capsys.readouterr().out
    assert "tables/molecules/molecule_scores.csv: missing on the right side" in out
    assert "claims.csv: missing on the left side" in out


def test_columns_and_row_counts_must_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left = _results(tmp_path / "a")
    reordered = [[row[1], row[0], *row[2:]] for row in FINAL_LOSS]
    assert _compare(left, _results(tmp_path / "b", reordered)) == 1
    assert "columns ['method', 'problem'" in capsys.readouterr().out
    assert _compare(left, _results(tmp_path / "c", FINAL_LOSS[:-1])) == 1
    assert "3 rows on the left, 2 on the right" in capsys.readouterr().out


def test_also_adds_a_file_and_must_name_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left, right = _results(tmp_path / "a"), _results(tmp_path / "b")
    _write_csv(left / "rate_checks" / "local_slopes.csv", [["slope"], ["-1.0"]])
    _write_csv(right / "rate_checks" / "local_slopes.csv", [["slope"], ["-1.5"]])
    assert _compare(left, right) == 0
    assert _compare(left, right, "--also", "rate_checks/local_slopes.csv") == 1
    capsys.readouterr()
    assert _compare(left, right, "--also", "rate_checks/nope.csv") == 2
    assert "--also rate_checks/nope.csv: no such file" in capsys.readouterr().err


def test_differences_beyond_show_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left = _results(tmp_path / "a")
    right = _results(tmp_path / "b", [FINAL_LOSS[0], *([["x"] * 5] * 3)])
    assert _compare(left, right, "--show", "2") == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("tables/plain/final_loss.csv: row") for line in lines) == 2
    assert "tables/plain/final_loss.csv: ... and 13 more differences" in lines


def test_a_missing_folder_is_a_usage_error_of_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left = _results(tmp_path / "a")
    assert _compare(left, tmp_path / "absent") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"compare_results.py: error: results folder {tmp_path / 'absent'} does not exist"
    ]
