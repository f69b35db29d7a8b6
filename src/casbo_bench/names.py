"""The words config, command line and code share, defined once (nothing heavy imported).

>>> "cumulative" in SCORINGS and "auto" in DEVICE_NAMES
True
"""

from __future__ import annotations

from typing import Literal, get_args

Scoring = Literal["final", "cumulative"]
SCORINGS: tuple[str, ...] = get_args(Scoring)
"""How a rollout is scored: ``final`` (the last state only) or ``cumulative`` (every state)."""

DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Where torch code runs: ``auto`` (CUDA when torch sees one, else CPU), ``cpu``, ``cuda``
(resolved by :func:`casbo_bench.devices.resolve_device`)."""
