"""Tests of casbo_bench.schemas.molecules: the molecule tables' schemas accept good tables and
name every broken check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from casbo_bench.schemas.molecules import (
    BEST_COLUMNS,
    MOLECULE_SCHEMAS,
    SCORE_COLUMNS,
    validate_molecule_table,
)
from casbo_bench.schemas.tables import TableValidationError


def _scores() -> pd.DataFrame:
    """Two methods on one task: the reference's row and one tested against it."""
    rows = []
    for method, verdict, p_holm, difference in (
        ("casbo", "reference", np.nan, np.nan),
        ("random", "no significant difference", 1.0, -0.01),
    ):
        row: dict[str, object] = {"task": "mol-qed", "method": method, "n_seeds": 3, "budget": 12}
        row |= {"calls": 12, "denoiser_evals": 48}
        for measure in ("best", "compute", "final"):
            row |= {
                f"{measure}_median": 0.5,
                f"{measure}_q25": 0.45,
                f"{measure}_q75": 0.55,
                f"{measure}_difference": difference,
                f"{measure}_p_holm": p_holm,
                f"{measure}_verdict": verdict,
            }
        row |= {
            "optimized_valid": 0.9,
            "optimized_connected": 0.8,
            "optimized_valid_table": 0.7,
            "optimized_stable": 0.7,
            "optimized_unique": np.nan if method == "casbo" else 1.0,
            "best_valid": 1.0,
            "best_connected": 2 / 3,
            "duplicate_share": 0.25,
            "checkpoint": "057d3448831d",
        }
        rows.append(row)
    return pd.DataFrame(rows)[list(SCORE_COLUMNS)]


def _best() -> pd.DataFrame:
    """Two runs' best molecules, one valid, one not."""
    return pd.DataFrame(
        {
            "task": ["mol-qed", "mol-qed"],
            "method": ["casbo", "casbo"],
            "seed": [0, 1],
            "d": [28, 28],
            "K": [5, 5],
            "best_score": [0.61, 0.0],
            "evaluation": [7, 1],
            "smiles": ["CC(C)O", None],
            "valid": [True, False],
            "fragments": [1, 0],
            "valid_table": [True, False],
            "stable": [True, False],
            "predicted_alpha": [50.2, np.nan],
            "predicted_gap": [6.8, np.nan],
            "predicted_mu": [1.6, np.nan],
            "xtb_dipole": [1.7, np.nan],
            "xtb_gap": [11.1, np.nan],
        }
    )[list(BEST_COLUMNS)]


GOOD = {"molecule_scores": _scores, "molecule_best": _best}


@pytest.mark.parametrize("name", sorted(MOLECULE_SCHEMAS))
def test_accepts_a_good_table_unchanged(name: str) -> None:
    frame = GOOD[name]()
    assert validate_molecule_table(name, frame) is frame


def _set(column: str, value: object, row: int = 0) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[frame.index[row], column] = value
        return frame

    return change


BAD_FRAMES: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str]] = [
    ("molecule_scores", _set("best_q25", 0.9), "best_q25 <= best_median <= best_q75"),
    ("molecule_scores", _set("final_verdict", "maybe", 1), "final_verdict"),
    ("molecule_scores", _set("best_p_holm", 1.5, 1), "best_p_holm"),
    (
        "molecule_scores",
        _set("best_p_holm", np.nan, 1),
        "best_p_holm and best_difference must be given exactly when best_verdict comes from",
    ),
    (
        "molecule_scores",
        _set("final_verdict", "not tested"),
        "the rows with verdict 'reference' must be one method's, in both measures",
    ),
    (
        "molecule_scores",
        _set("optimized_connected", 0.95),
        "optimized_connected <= optimized_valid",
    ),
    ("molecule_scores", _set("optimized_stable", np.nan), "optimized_stable"),
    ("molecule_scores", _set("n_seeds", 0), "n_seeds"),
    ("molecule_scores", _set("duplicate_share", 1.5), "duplicate_share"),
    ("molecule_scores", _set("calls", 0), "calls"),
    ("molecule_scores", _set("final_median", np.nan), "final_median"),
    (
        "molecule_scores",
        lambda frame: pd.concat([frame, frame.tail(1)]),
        "each (task, method) must appear on one row only",
    ),
    (
        "molecule_scores",
        lambda frame: frame[[*SCORE_COLUMNS[1:], SCORE_COLUMNS[0]]],
        "column",
    ),
    ("molecule_best", _set("smiles", None), "smiles must be given exactly when valid"),
    ("molecule_best", _set("best_score", np.inf), "best_score"),
    ("molecule_best", _set("evaluation", 0), "evaluation"),
    ("molecule_best", lambda frame: frame.assign(extra=1), "unexpected column 'extra'"),
    ("molecule_best", lambda frame: frame.drop(columns="xtb_gap"), "missing column 'xtb_gap'"),
]


@pytest.mark.parametrize(("name", "corrupt", "message"), BAD_FRAMES)
def test_rejects_a_bad_table(
    name: str, corrupt: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    with pytest.raises(TableValidationError) as error:
        validate_molecule_table(name, corrupt(GOOD[name]()))
    text = str(error.value)
    assert f"table {name} failed validation" in text
    assert message in text


def test_unknown_table() -> None:
    with pytest.raises(
        TableValidationError,
        match="no schema for a table named 'x'; known tables: molecule_scores, molecule_best",
    ):
        validate_molecule_table("x", _best())
