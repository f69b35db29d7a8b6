"""Optimizers behind one ask/tell contract (see :mod:`casbo_bench.optimizers.base`).

Each optimizer lives in its own module of this package and is found by its ``name``;
adding one is adding one file.
"""

from __future__ import annotations

from typing import Any

from casbo_bench._registry import PluginRegistry
from casbo_bench.optimizers.base import (
    GaussianLaw,
    NonFiniteLossError,
    Optimizer,
    OptimizerError,
    SearchSpace,
)

__all__ = [
    "GaussianLaw",
    "NonFiniteLossError",
    "Optimizer",
    "OptimizerError",
    "SearchSpace",
    "available_optimizers",
    "describe_optimizers",
    "get_optimizer",
    "make_optimizer",
    "torch_optimizers",
]


_REGISTRY: PluginRegistry[Optimizer] = PluginRegistry(__name__, Optimizer)


def available_optimizers() -> list[str]:
    """Names of every registered optimizer, sorted."""
    return _REGISTRY.names()


def describe_optimizers() -> dict[str, str]:
    """Every optimizer's name with the first line of its module docstring (none imported)."""
    return {name: entry.summary for name, entry in _REGISTRY.entries.items()}


def torch_optimizers() -> list[str]:
    """The optimizers whose own file declares ``uses_torch = True`` (none imported): their
    jobs run torch code on the config's device."""
    return [name for name, entry in _REGISTRY.entries.items() if entry.uses_torch]


def get_optimizer(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name``."""
    try:
        return _REGISTRY.get(name)
    except KeyError:
        raise OptimizerError(
            f"unknown optimizer {name!r}; choose one of {', '.join(available_optimizers())}"
        ) from None


def make_optimizer(name: str, space: SearchSpace, seed: int, **options: Any) -> Optimizer:
    """Construct optimizer ``name`` on ``space`` with ``seed`` and config ``options``."""
    return get_optimizer(name)(space, seed, **options)
