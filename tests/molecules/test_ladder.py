"""The ladder's molecules: seeded dataset rungs, and the two judges' columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from casbo_bench.molecules import ladder
from casbo_bench.molecules.data import format_xyz, load_dataset, parse_xyz
from casbo_bench.molecules.xtb_calibration import LinearFit
from casbo_bench.schemas.ladder import validate_ladder_molecules

SUBSET = Path(__file__).resolve().parents[1] / "data" / "qm9_subset.npz"


@pytest.fixture(scope="module")
def dataset() -> Any:
    return load_dataset(SUBSET)


@pytest.mark.parametrize(("rung", "n_atoms"), [(ladder.NAIVE, None), (ladder.N_ATOMS, 8)])
def test_dataset_rungs_are_reproducible_from_their_seed(
    dataset: Any, rung: str, n_atoms: int | None
) -> None:
    first = ladder.draw_dataset_rung(dataset, rung, "mol-gap", 10, seed=0, n_atoms=n_atoms)
    again = ladder.draw_dataset_rung(dataset, rung, "mol-gap", 10, seed=0, n_atoms=n_atoms)
    other = ladder.draw_dataset_rung(dataset, rung, "mol-gap", 10, seed=1, n_atoms=n_atoms)
    assert first == again
    assert first != other
    assert len(set(first)) == 10
    if n_atoms is not None:
        assert all(len(parse_xyz(text)[1]) == n_atoms for text in first)


def test_dataset_rungs_draw_from_the_generative_split(dataset: Any) -> None:
    pool = {
        format_xyz(dataset.positions[row], dataset.atom_types[row])
        for row in dataset.split_indices(ladder.DATASET_SPLIT)
    }
    assert set(ladder.draw_dataset_rung(dataset, ladder.NAIVE, "mol-mu", 20, seed=0)) <= pool


def test_a_small_pool_gives_all_it_has_and_an_empty_one_is_refused(dataset: Any) -> None:
    six = ladder.draw_dataset_rung(dataset, ladder.N_ATOMS, "mol-gap", 1000, seed=0, n_atoms=6)
    assert 0 < len(six) < 1000
    with pytest.raises(ladder.LadderError, match="no molecule with 1 heavy atoms"):
        ladder.draw_dataset_rung(dataset, ladder.N_ATOMS, "mol-gap", 5, seed=0, n_atoms=1)


class _ConstantPredictor:
    """A stand-in predictor: every molecule's gap is 7.0 eV."""

    properties = ("alpha", "gap", "mu")

    def predict(self, positions: Any, atom_types: Any) -> np.ndarray:
        return np.tile([70.0, 7.0, 2.0], (len(positions), 1))


def test_scored_molecules_carry_both_judges_and_validate(dataset: Any) -> None:
    texts = ladder.draw_dataset_rung(dataset, ladder.NAIVE, "mol-gap", 3, seed=0)
    broken = "C 0.0 0.0 0.0\nC 0.1 0.0 0.0"  # a clash: not scorable
    frame = pd.concat(
        [
            ladder.rung_frame("mol-gap", ladder.NAIVE, "baseline", texts),
            ladder.rung_frame("mol-gap", "random", "method", [broken], [4]),
        ],
        ignore_index=True,
    )
    fit = LinearFit(slope=1.0, intercept=2.0, n=10, mae=0.1, rmse=0.1, r2=0.9)
    scored = ladder.score_molecules(frame, _ConstantPredictor(), "gap", 8.5, fit)  # type: ignore[arg-type]
    validate_ladder_molecules(scored)
    assert list(scored.columns) == list(ladder.MOLECULE_COLUMNS)
    good = scored[scored["scorable"]]
    np.testing.assert_allclose(good["error_predictor"], 1.5)
    np.testing.assert_allclose(good["xtb_dft"], good["xtb_raw"] + 2.0)
    assert good["xtb_ok"].all()
    bad = scored[scored["rung"] == "random"].iloc[0]
    assert not bad["scorable"] and np.isnan(bad["predicted"]) and not bad["xtb_ok"]


def test_scoring_refuses_a_property_the_predictor_lacks(dataset: Any) -> None:
    frame = ladder.rung_frame("mol-gap", ladder.NAIVE, "baseline", ["C 0 0 0"])
    with pytest.raises(ladder.LadderError, match="predicts"):
        ladder.score_molecules(frame, _ConstantPredictor(), "cv", 1.0, None)  # type: ignore[arg-type]
