"""Tests of casbo_bench.molecules.training.predictor and ``casbo-bench train-predictor``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from casbo_bench.cli import main
from casbo_bench.molecules.checkpoint import (
    CURVE_FILE,
    MANIFEST_FILE,
    PREDICTOR_FILE,
    load_predictor,
)
from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.training.config import (
    PREDICTED_PROPERTIES,
    PredictorConfig,
    TrainingError,
)
from casbo_bench.molecules.training.predictor import (
    _Split,
    save_predictor,
    split_mae,
    train_predictor,
)
from casbo_bench.provenance import hardware_description
from tests.molecules.structures import SUBSET


def test_bad_options_are_refused() -> None:
    with pytest.raises(TrainingError, match="positive"):
        PredictorConfig(epochs=0)
    with pytest.raises(TrainingError, match="property"):
        PredictorConfig(properties=())


def test_training_learns_early_stops_and_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "predictor"
    status = main(
        [
            "train-predictor",
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
    assert status == 0
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
    hardware = hardware_description("cuda")
    assert hardware["cuda_device"]
    save_predictor(model, config, record, tmp_path, SUBSET, dataset, mae, "cuda", hardware)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["training"]["device"] == "cuda"
    assert manifest["training"]["hardware"]["cuda_device"] == hardware["cuda_device"]
    state = torch.load(tmp_path / PREDICTOR_FILE, map_location="cpu", weights_only=True)
    assert all(
        tensor.device.type == "cpu" and tensor.dtype == torch.float32
        for tensor in state["weights"].values()
    )
    loaded = load_predictor(tmp_path, device="cuda")
    assert loaded.model.mean.device.type == "cuda"
