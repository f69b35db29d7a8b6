"""Tests of casbo_bench.molecules.property_model: invariance and physical units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.egnn import random_orthogonal
from casbo_bench.molecules.property_model import PredictorError, PropertyPredictor
from casbo_bench.molecules.training.config import PREDICTED_PROPERTIES
from tests.molecules.structures import SUBSET


def _predictor(seed: int = 0) -> PropertyPredictor:
    torch.manual_seed(seed)
    model = PropertyPredictor(PREDICTED_PROPERTIES, hidden=16, n_blocks=2).double().eval()
    # A non-trivial normalization, so the physical-unit path is exercised too.
    model.mean.copy_(torch.tensor([75.0, 6.8, 2.7]))
    model.std.copy_(torch.tensor([8.0, 1.3, 1.5]))
    return model


def test_predictions_are_invariant_to_rotation_translation_and_permutation() -> None:
    dataset = load_dataset(SUBSET)
    model = _predictor()
    positions = torch.from_numpy(dataset.positions[:32]).double()
    types = torch.from_numpy(dataset.atom_types[:32]).long()
    one_hot = torch.from_numpy(dataset.one_hot[:32]).double()
    mask = types >= 0
    generator = torch.Generator().manual_seed(1)
    rotation = random_orthogonal(32, generator)  # reflections included
    shift = 3.0 * torch.randn(32, 1, 3, generator=generator, dtype=torch.float64)
    moved = (positions @ rotation.transpose(1, 2) + shift) * mask.unsqueeze(-1)
    with torch.no_grad():
        before = model(one_hot, positions, mask)
        after = model(one_hot, moved, mask)
    assert torch.allclose(before, after, atol=1e-9, rtol=0)
    assert (before.std(dim=0) > 1e-6).all()  # the molecules do not all look alike to it
    order = torch.randperm(9, generator=generator)
    with torch.no_grad():
        permuted = model(one_hot[:, order], positions[:, order], mask[:, order])
    assert torch.allclose(before, permuted, atol=1e-9, rtol=0)


def test_predict_returns_physical_units_and_nan_for_unreadable_rows() -> None:
    dataset = load_dataset(SUBSET)
    model = _predictor().float()
    positions = dataset.positions[:5].astype(np.float64)
    positions[3, 0, 0] = np.nan
    values = model.predict(positions, dataset.atom_types[:5])
    assert values.shape == (5, 3)
    assert np.isnan(values[3]).all() and np.isfinite(np.delete(values, 3, axis=0)).all()
    with torch.no_grad():
        standardized = model(
            torch.from_numpy(dataset.one_hot[:1]),
            torch.from_numpy(dataset.positions[:1]),
            torch.from_numpy(dataset.mask[:1]),
        )
    expected = (standardized * model.std + model.mean).double().numpy()
    np.testing.assert_allclose(values[:1], expected, rtol=1e-6)
    with pytest.raises(PredictorError, match="B x N x 3"):
        model.predict(positions[0], dataset.atom_types[0])
