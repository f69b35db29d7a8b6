"""The error-ladder table: its rows, the published values marked, the schema's refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.ladder import (
    PREDICTOR_FLOOR,
    PUBLISHED_SUFFIX,
    XTB_FLOOR,
    bootstrap_mean_ci,
    ladder_table,
    markdown,
    published_errors,
)
from casbo_bench.schemas.ladder import validate_ladder_molecules, validate_ladder_table
from casbo_bench.schemas.tables import TableValidationError

META = {
    "task": "mol-gap",
    "quantity": "gap",
    "unit": "eV",
    "target_percentile": 90,
    "target": 8.6,
    "predictor_test_mae": 0.24,
    "xtb_fit_mae": 0.3,
}


def _molecules(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for rung, kind, n in (
        ("naive", "baseline", 6),
        ("n-atoms", "baseline", 6),
        ("unguided", "baseline", 6),
        ("random", "method", 3),
        ("casbo", "method", 3),
    ):
        for replicate in range(n):
            predicted = 8.6 + rng.normal(0.0, 1.0)
            xtb = 8.6 + rng.normal(0.0, 1.5)
            scorable = replicate != 0 or kind == "method"
            rows.append(
                {
                    "task": "mol-gap",
                    "rung": rung,
                    "kind": kind,
                    "replicate": replicate,
                    "xyz": "C 0 0 0",
                    "smiles": "C" if scorable else None,
                    "scorable": scorable,
                    "predicted": predicted if scorable else np.nan,
                    "xtb_ok": scorable,
                    "xtb_raw": xtb - 2.0 if scorable else np.nan,
                    "xtb_dft": xtb if scorable else np.nan,
                    "target": 8.6,
                    "error_predictor": abs(predicted - 8.6) if scorable else np.nan,
                    "error_xtb": abs(xtb - 8.6) if scorable else np.nan,
                }
            )
    return validate_ladder_molecules(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return ladder_table([(_molecules(), META)], methods_order=["casbo", "random"], resamples=200)


def test_rows_come_in_ladder_order_with_the_target(table: pd.DataFrame) -> None:
    published = [
        name + PUBLISHED_SUFFIX for name in ("naive", "n-atoms", "EDM", "GeoLDM", "L-bound")
    ]
    assert table["rung"].tolist() == [
        "naive",
        "n-atoms",
        "unguided",
        "casbo",
        "random",
        PREDICTOR_FLOOR,
        XTB_FLOOR,
        *published,
    ]
    assert (table["target"] == 8.6).all() and (table["target_percentile"] == 90).all()


def test_maes_are_the_means_of_the_scored_errors(table: pd.DataFrame) -> None:
    molecules = _molecules()
    naive = molecules[(molecules["rung"] == "naive") & molecules["scorable"]]
    row = table.set_index("rung").loc["naive"]
    assert row["n_molecules"] == 6 and row["n_scored"] == 5 and row["n_xtb"] == 5
    assert row["mae_predictor"] == pytest.approx(naive["error_predictor"].mean())
    assert row["mae_xtb"] == pytest.approx(naive["error_xtb"].mean())
    assert row["predictor_minus_xtb"] == pytest.approx(
        (naive["error_predictor"] - naive["error_xtb"]).mean()
    )
    assert row["mae_predictor_low"] <= row["mae_predictor"] <= row["mae_predictor_high"]


def test_published_values_are_marked_not_comparable_and_in_the_task_unit(
    table: pd.DataFrame,
) -> None:
    published = table[table["kind"] == "published"]
    assert not published["comparable"].any()
    assert table.loc[table["kind"] != "published", "comparable"].all()
    edm = published.set_index("rung").loc["EDM" + PUBLISHED_SUFFIX, "reference_mae"]
    assert edm == pytest.approx(0.655)  # 655 meV
    assert published_errors()["values"]["alpha"]["GeoLDM"] == 2.37
    assert "Hoogeboom" in published_errors()["source"]
    assert "not comparable" in markdown(table)


def test_floors_carry_the_predictor_and_calibration_errors(table: pd.DataFrame) -> None:
    floors = table.set_index("rung")["reference_mae"]
    assert floors[PREDICTOR_FLOOR] == 0.24 and floors[XTB_FLOOR] == 0.3


def test_the_bootstrap_is_seeded() -> None:
    again = ladder_table([(_molecules(), META)], methods_order=["casbo", "random"], resamples=200)
    other = ladder_table([(_molecules(), META)], ["casbo", "random"], seed=1, resamples=200)
    pd.testing.assert_frame_equal(
        ladder_table([(_molecules(), META)], ["casbo", "random"], resamples=200), again
    )
    assert not other["mae_xtb_low"].equals(again["mae_xtb_low"])
    assert bootstrap_mean_ci([], np.random.default_rng(0), 0.95, 100) == pytest.approx(
        (np.nan, np.nan), nan_ok=True
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"comparable": True}, "not comparable"),
        ({"n_xtb": 99}, "n_xtb <= n_scored"),
        ({"mae_predictor": -1.0}, ">= 0"),
    ],
)
def test_the_schema_refuses_inconsistent_rows(
    table: pd.DataFrame, change: dict[str, Any], message: str
) -> None:
    broken = table.copy()
    row = broken.index[broken["kind"] == "published"][0] if "comparable" in change else 0
    for column, value in change.items():
        broken.loc[row, column] = value
    with pytest.raises(TableValidationError, match=message):
        validate_ladder_table(broken)
