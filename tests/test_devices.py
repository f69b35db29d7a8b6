"""Tests of casbo_bench.devices: the one place a device name becomes a torch device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from casbo_bench.devices import DEVICE_NAMES, resolve_device

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class OwnError(RuntimeError):
    """Stands for a caller's own error type."""


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_is_cpu() -> None:
    assert resolve_device("cpu", "test") == torch.device("cpu")


@pytest.mark.usefixtures("no_cuda")
def test_auto_without_cuda_is_the_cpu() -> None:
    assert resolve_device("auto", "test") == torch.device("cpu")


def test_auto_with_cuda_is_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "test") == torch.device("cuda")


@pytest.mark.usefixtures("no_cuda")
def test_cuda_without_cuda_raises_the_callers_error_with_the_fix() -> None:
    with pytest.raises(OwnError, match=r"^turbo: .*no CUDA device.*use device 'auto' or 'cpu'"):
        resolve_device("cuda", "turbo", OwnError)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda", "turbo")


@pytest.mark.parametrize("name", ["tpu", "CUDA", "", "cuda:0"])
def test_other_names_raise_naming_the_valid_ones(name: str) -> None:
    with pytest.raises(OwnError, match=r"^casbo: device must be one of auto, cpu, cuda; got "):
        resolve_device(name, "casbo", OwnError)


def test_the_names_are_the_configs() -> None:
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    assert list(DEVICE_NAMES) == schema["properties"]["device"]["enum"]
