"""Schemas of the error ladder: its molecules (one frame per task) and its table.

``ladder_molecules``: one row per judged molecule (:data:`casbo_bench.molecules.ladder.
MOLECULE_COLUMNS`): a molecule the task would not score has no prediction, no xTB value and
no error; an error is ``|value - target|``. ``error_ladder``: the table of
:mod:`casbo_bench.analysis.ladder`: one row per task and rung, intervals around their
means, counts consistent (xTB-judged <= scored <= molecules), the published rows and only
they marked not comparable.

>>> validate_ladder_table(table)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from casbo_bench.schemas.tables import _count, _ordered, _real, _rows, _unique, validate_named

RUNG_KINDS: tuple[str, ...] = ("baseline", "method", "floor", "published")

_non_negative = pa.Check.ge(0.0, error="must be >= 0")
_text = pa.Column(str, pa.Check.str_length(min_value=1, error="must not be empty"))


def _errors_match(value: str, error: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        expected = (frame[value] - frame["target"]).abs()
        both_nan = frame[value].isna() & frame[error].isna()
        return both_nan | np.isclose(frame[error], expected, rtol=1e-9, atol=1e-12)

    return _rows([value, error, "target"], rule, f"{error} must be |{value} - target|")


LADDER_MOLECULES = pa.DataFrameSchema(
    {
        "task": _text,
        "rung": _text,
        "kind": pa.Column(str, pa.Check.isin(["baseline", "method"])),
        "replicate": _count(0),
        "xyz": pa.Column(str),
        "smiles": pa.Column(str, nullable=True),
        "scorable": pa.Column(bool),
        "predicted": _real(nullable=True),
        "xtb_ok": pa.Column(bool),
        "xtb_raw": _real(nullable=True),
        "xtb_dft": _real(nullable=True),
        "target": _real(),
        "error_predictor": _real(_non_negative, nullable=True),
        "error_xtb": _real(_non_negative, nullable=True),
    },
    checks=[
        _unique(["task", "rung", "replicate"]),
        _errors_match("predicted", "error_predictor"),
        _errors_match("xtb_dft", "error_xtb"),
        _rows(
            ["scorable", "predicted"],
            lambda f: f["scorable"] | f["predicted"].isna(),
            "a molecule the task does not score has no prediction",
        ),
        _rows(
            ["scorable", "xtb_ok"],
            lambda f: f["scorable"] | ~f["xtb_ok"],
            "only a scored molecule is judged by xTB",
        ),
        _rows(
            ["xtb_ok", "xtb_dft"],
            lambda f: f["xtb_ok"] == f["xtb_dft"].notna(),
            "xtb_dft is set exactly where xtb_ok",
        ),
    ],
    strict=True,
    ordered=True,
)


def _interval(value: str) -> pa.Check:
    return _ordered(f"{value}_low", value, f"{value}_high")


ERROR_LADDER = pa.DataFrameSchema(
    {
        "task": _text,
        "quantity": pa.Column(str, pa.Check.isin(["alpha", "gap", "mu"])),
        "unit": _text,
        "target_percentile": pa.Column("int64", pa.Check.in_range(0, 100)),
        "target": _real(),
        "rung": _text,
        "kind": pa.Column(str, pa.Check.isin(list(RUNG_KINDS))),
        "comparable": pa.Column(bool),
        "n_molecules": _count(0),
        "n_scored": _count(0),
        "mae_predictor": _real(_non_negative, nullable=True),
        "mae_predictor_low": _real(nullable=True),
        "mae_predictor_high": _real(nullable=True),
        "n_xtb": _count(0),
        "mae_xtb": _real(_non_negative, nullable=True),
        "mae_xtb_low": _real(nullable=True),
        "mae_xtb_high": _real(nullable=True),
        "predictor_minus_xtb": _real(nullable=True),
        "predictor_minus_xtb_low": _real(nullable=True),
        "predictor_minus_xtb_high": _real(nullable=True),
        "reference_mae": _real(_non_negative, nullable=True),
    },
    checks=[
        _unique(["task", "rung"]),
        _interval("mae_predictor"),
        _interval("mae_xtb"),
        _interval("predictor_minus_xtb"),
        _rows(
            ["kind", "comparable"],
            lambda f: f["comparable"] == (f["kind"] != "published"),
            "exactly the published rows are marked not comparable",
        ),
        _rows(
            ["n_xtb", "n_scored", "n_molecules"],
            lambda f: (f["n_xtb"] <= f["n_scored"]) & (f["n_scored"] <= f["n_molecules"]),
            "n_xtb <= n_scored <= n_molecules must hold",
        ),
        _rows(
            ["kind", "reference_mae", "mae_predictor"],
            lambda f: f["kind"].isin(["floor", "published"]) | f["reference_mae"].isna(),
            "only floor and published rows carry a reference MAE",
        ),
    ],
    strict=True,
    ordered=True,
)

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "ladder_molecules": LADDER_MOLECULES,
    "error_ladder": ERROR_LADDER,
}


def validate_ladder_molecules(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` unchanged if it is a valid ladder-molecules frame (else a
    TableValidationError naming every failed check)."""
    return validate_named(SCHEMAS, "ladder_molecules", frame)


def validate_ladder_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` unchanged if it is a valid error-ladder table."""
    return validate_named(SCHEMAS, "error_ladder", frame)
