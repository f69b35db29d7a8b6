"""Tests of casbo_bench.molecules.predictor: invariance, training, the stored predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.egnn import random_orthogonal
from casbo_bench.molecules.evaluate import CheckpointError, read_checkpoint
from casbo_bench.molecules.predictor import (
    CURVE_FILE,
    PREDICTED_PROPERTIES,
    PREDICTOR_FILE,
    PredictorConfig,
    PredictorError,
    PropertyPredictor,
    _hardware,
    _Split,
    load_predictor,
    main,
    save_predictor,
    split_mae,
    train_predictor,
)
from casbo_bench.molecules.training import MANIFEST_FILE

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "models" / "property_predictor"
SUBSET = ROOT / "tests" / "data" / "qm9_subset.npz"


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


def test_bad_options_are_refused() -> None:
    with pytest.raises(PredictorError, match="positive"):
        PredictorConfig(epochs=0)
    with pytest.raises(PredictorError, match="property"):
        PredictorConfig(properties=())


def test_training_learns_early_stops_and_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "predictor"
    main(
        [
            "--data",
            str(SUBSET),
            "--out",
            str(out),
            "--hidden",
            "16",
            "--blocks",
            "1",
            "--batch",
            "32",
            "--epochs",
            "4",
            "--patience",
            "1",
            "--lr",
            "3e-3",
        ]
    )
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["status"] == "final"
    assert set(manifest["test_mae"]) == set(PREDICTED_PROPERTIES)
    assert manifest["data"]["train_split"] == "property"
    curve = (out / CURVE_FILE).read_text().splitlines()
    assert len(curve) == 1 + manifest["training"]["epochs_run"]
    percentiles = manifest["property_split_percentiles"]["alpha"]
    assert percentiles["p10"] < percentiles["p50"] < percentiles["p90"]
    loaded = load_predictor(out)
    assert loaded.sha256 == manifest["files"][PREDICTOR_FILE]["sha256"]
    dataset = load_dataset(SUBSET)
    test = dataset.subset("test")
    predicted = loaded.model.predict(test.positions, test.atom_types)
    truth = np.stack([test.property(name) for name in PREDICTED_PROPERTIES], axis=1)
    mae = np.abs(predicted - truth).mean(axis=0)
    np.testing.assert_allclose(
        mae, [manifest["test_mae"][name]["value"] for name in PREDICTED_PROPERTIES], rtol=1e-4
    )


def test_training_beats_predicting_the_mean() -> None:
    dataset = load_dataset(SUBSET)
    config = PredictorConfig(hidden=16, n_blocks=1, batch_size=32, lr=3e-3, epochs=6, patience=6)
    _, record = train_predictor(dataset, config)
    assert record.epochs_run == 6 and record.stopped_by == "schedule complete"
    # A standardized MAE of about 0.8 is what the mean predictor gets on a Gaussian target.
    assert record.best_validation < 0.7


def test_training_on_the_cpu_device_is_the_default_run() -> None:
    dataset = load_dataset(SUBSET)
    config = PredictorConfig(hidden=16, n_blocks=1, batch_size=32, lr=3e-3, epochs=2, patience=2)
    default, default_record = train_predictor(dataset, config)
    on_cpu, record = train_predictor(dataset, config, device="cpu")
    assert record.epochs_run == default_record.epochs_run == 2
    assert record.best_validation == default_record.best_validation
    weights, default_weights = on_cpu.state_dict(), default.state_dict()
    assert list(weights) == list(default_weights)
    for name, tensor in weights.items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, default_weights[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_saves_cpu_float32_weights(tmp_path: Path) -> None:
    dataset = load_dataset(SUBSET)
    config = PredictorConfig(hidden=16, n_blocks=1, batch_size=32, lr=3e-3, epochs=2, patience=2)
    model, record = train_predictor(dataset, config, device="cuda")
    assert all(tensor.device.type == "cuda" for tensor in model.state_dict().values())
    cpu_model, cpu_record = train_predictor(dataset, config, device="cpu")
    # Same initial weights and data order; only the kernels' rounding differs.
    assert record.best_validation == pytest.approx(cpu_record.best_validation, rel=0.05)
    test = _Split.from_dataset(dataset.subset("test"), config.properties, model.mean, model.std)
    mae = split_mae(model, test)
    assert isinstance(mae, np.ndarray) and mae.shape == (len(config.properties),)
    np.testing.assert_allclose(mae, split_mae(cpu_model, test), rtol=0.05)
    hardware = _hardware(torch.device("cuda"), 1)
    assert hardware["device"] == "cuda" and hardware["gpu"]
    save_predictor(model, config, record, tmp_path, SUBSET, dataset, mae, hardware)
    state = torch.load(tmp_path / PREDICTOR_FILE, map_location="cpu", weights_only=True)
    assert all(
        tensor.device.type == "cpu" and tensor.dtype == torch.float32
        for tensor in state["weights"].values()
    )
    loaded = load_predictor(tmp_path, device="cuda")
    assert loaded.model.mean.device.type == "cuda"


def test_stored_predictor_matches_its_manifest_and_is_small() -> None:
    checkpoint = read_checkpoint(STORED, (PREDICTOR_FILE, CURVE_FILE))
    assert len(checkpoint.contents[PREDICTOR_FILE]) < 3 * 2**20
    manifest = checkpoint.manifest
    assert manifest["status"] == "final", "the stored predictor is an interim checkpoint"
    assert manifest["data"]["train_split"] == "property"
    loaded = load_predictor(STORED)
    assert loaded.sha256 == checkpoint.sha256(PREDICTOR_FILE)
    assert loaded.model.properties == PREDICTED_PROPERTIES


def test_a_tampered_predictor_is_refused(tmp_path: Path) -> None:
    checkpoint = read_checkpoint(STORED, (PREDICTOR_FILE,))
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(checkpoint.manifest))
    data = bytearray(checkpoint.contents[PREDICTOR_FILE])
    data[len(data) // 2] ^= 0xFF
    (tmp_path / PREDICTOR_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_predictor(tmp_path, attempts=1)
