"""The xTB calibration: the line fit, the finite-field polarizability, the sealed folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from casbo_bench.molecules.checkpoint import MANIFEST_FILE
from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.scores import BOHR_IN_ANGSTROM
from casbo_bench.molecules.xtb_calibration import (
    CALIBRATION_FILE,
    MOLECULES_FILE,
    CalibrationError,
    calibrate,
    calibration_rows,
    finite_field_polarizability,
    fit_line,
    load_calibration,
)

SUBSET = Path(__file__).resolve().parents[1] / "data" / "qm9_subset.npz"

# Water at its experimental geometry (Angstrom): O, H, H.
WATER_NUMBERS = np.array([8, 1, 1])
WATER_ANGSTROM = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_recovers_slope_and_intercept_of_noisy_synthetic_data(dtype: type) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(40.0, 80.0, size=2000).astype(dtype)
    y = (1.3 * x + 9.5 + rng.normal(0.0, 0.5, size=2000)).astype(dtype)
    fit = fit_line(x, y)
    assert fit.slope == pytest.approx(1.3, abs=0.01)
    assert fit.intercept == pytest.approx(9.5, abs=0.5)
    assert fit.n == 2000
    assert fit.mae == pytest.approx(0.5 * np.sqrt(2 / np.pi), rel=0.05)  # E|N(0, s^2)|
    assert 0.99 < fit.r2 <= 1.0
    np.testing.assert_allclose(fit.apply([0.0, 1.0]), [fit.intercept, fit.intercept + fit.slope])


def test_fit_is_exact_on_a_line_and_ignores_nan_pairs() -> None:
    fit = fit_line([0.0, 1.0, 2.0, np.nan, 3.0], [1.0, 3.0, 5.0, 4.0, np.nan])
    assert (fit.slope, fit.intercept, fit.n) == pytest.approx((2.0, 1.0, 3))
    assert fit.mae == pytest.approx(0.0, abs=1e-12)
    assert fit.r2 == pytest.approx(1.0)


@pytest.mark.parametrize("x", [[1.0, 2.0], [1.0, 1.0, 1.0]])
def test_fit_refuses_too_few_or_constant_points(x: list[float]) -> None:
    with pytest.raises(CalibrationError, match="at least 3 finite pairs"):
        fit_line(x, np.arange(len(x), dtype=float))


def test_finite_field_alpha_of_water_is_positive_and_stable_under_the_step() -> None:
    positions = WATER_ANGSTROM / BOHR_IN_ANGSTROM
    steps = (5e-4, 1e-3, 2e-3)
    values = [finite_field_polarizability(WATER_NUMBERS, positions, step) for step in steps]
    assert all(value > 0 for value in values)
    # GFN2-xTB's minimal basis underestimates water's 9.6 bohr^3 (experiment) about 4-fold.
    assert 1.0 < values[1] < 15.0
    assert max(values) - min(values) < 5e-3 * values[1]  # measured: 0.14%


def test_finite_field_alpha_refuses_a_non_positive_step() -> None:
    with pytest.raises(ValueError, match="positive"):
        finite_field_polarizability(WATER_NUMBERS, WATER_ANGSTROM, 0.0)


def test_calibration_rows_are_a_seeded_draw_of_the_split() -> None:
    dataset = load_dataset(SUBSET)
    rows = calibration_rows(dataset, "test", 10, seed=3)
    np.testing.assert_array_equal(rows, calibration_rows(dataset, "test", 10, seed=3))
    assert set(rows) <= set(dataset.split_indices("test"))
    assert len(set(rows)) == 10
    assert not np.array_equal(rows, calibration_rows(dataset, "test", 10, seed=4))
    with pytest.raises(CalibrationError, match="holds"):
        calibration_rows(dataset, "test", 10**6, seed=0)


def test_calibrate_writes_a_sealed_folder_that_loads_and_refuses_tampering(
    tmp_path: Path,
) -> None:
    dataset = load_dataset(SUBSET)
    record = calibrate(dataset, tmp_path, SUBSET, n=5, seed=0, n_alpha=3)
    assert set(record["fits"]) == {"alpha", "gap", "mu"}
    assert record["data"]["n_failed"] == 0
    assert record["fits"]["alpha"]["n"] == 3 and record["fits"]["gap"]["n"] == 5
    assert record["data"]["n_requested"] == 5 and record["data"]["seed"] == 0
    for name in (CALIBRATION_FILE, MOLECULES_FILE, MANIFEST_FILE):
        assert (tmp_path / name).is_file()
    fits = load_calibration(tmp_path)
    assert fits["gap"].slope == pytest.approx(record["fits"]["gap"]["slope"])
    stored = json.loads((tmp_path / CALIBRATION_FILE).read_text())
    stored["fits"]["gap"]["slope"] = 1.0
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(stored))
    with pytest.raises(CalibrationError, match="damaged"):
        load_calibration(tmp_path)


def test_load_calibration_names_the_command_when_missing(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="casbo-bench calibrate-xtb"):
        load_calibration(tmp_path / "none")
