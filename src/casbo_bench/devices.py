"""The torch device of a config's or command line's ``device`` name, resolved in one place.

Every torch part of the benchmark (CASBO's batched update, TuRBO's GP, the diffusion model,
the property predictor) takes ``"auto"``, ``"cpu"`` or ``"cuda"``; each resolves it here, so
the meaning of ``auto`` and the error for a missing GPU are the same everywhere.
"""

from __future__ import annotations

import torch

from casbo_bench.names import DEVICE_NAMES


def resolve_device(device: str, owner: str, error: type[Exception] = ValueError) -> torch.device:
    """The torch device named by ``device``: ``"auto"`` is CUDA when torch sees one, else CPU.

    ``"cuda"`` is refused up front where torch sees no CUDA device, rather than failing at
    the first tensor, deep inside a run.

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        owner: who asks (an optimizer's or command's name), the errors' first word.
        error: the exception raised, so each caller keeps its own error type.

    Raises:
        error: ``device`` is not a device name, or is ``"cuda"`` without a CUDA device.

    >>> resolve_device("cpu", "turbo")
    device(type='cpu')
    >>> resolve_device("tpu", "turbo")
    Traceback (most recent call last):
    ...
    ValueError: turbo: device must be one of auto, cpu, cuda; got 'tpu'
    """
    if device not in DEVICE_NAMES:
        raise error(f"{owner}: device must be one of {', '.join(DEVICE_NAMES)}; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise error(
            f"{owner}: device 'cuda' was asked for but no CUDA device is available; "
            f"use device 'auto' or 'cpu'"
        )
    return torch.device(device)
