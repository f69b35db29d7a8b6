"""Optimizers behind one ask/tell contract (see :mod:`casbo_bench.optimizers.base`).

Each optimizer lives in its own module of this package and is found by its ``name``;
adding one is adding one file. The steering methods (``smc``, ``svdd``; contract in
:mod:`casbo_bench.optimizers.steering`) live here too: they are methods of the same registry
(configs, ``casbo-bench list``, the config checks), marked by a literal ``steers = True``, and
are built with :func:`get_steering` instead of :func:`get_optimizer`.
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
from casbo_bench.optimizers.steering import SteeringMethod

__all__ = [
    "GaussianLaw",
    "NonFiniteLossError",
    "Optimizer",
    "OptimizerError",
    "SearchSpace",
    "SteeringMethod",
    "ask_tell_optimizers",
    "available_optimizers",
    "describe_optimizers",
    "get_optimizer",
    "get_steering",
    "is_steering",
    "make_optimizer",
    "steering_methods",
    "torch_optimizers",
]


_REGISTRY: PluginRegistry[Optimizer] = PluginRegistry(__name__, Optimizer)
_STEERING: PluginRegistry[SteeringMethod] = PluginRegistry(__name__, SteeringMethod)


def available_optimizers() -> list[str]:
    """Names of every registered optimizer, sorted."""
    return _REGISTRY.names()


def ask_tell_optimizers() -> list[str]:
    """The registered methods behind the ask/tell contract (every one but the steering
    methods), sorted."""
    return [name for name, entry in _REGISTRY.entries.items() if not entry.steers]


def describe_optimizers() -> dict[str, str]:
    """Every optimizer's name with the first line of its module docstring (none imported)."""
    return {name: entry.summary for name, entry in _REGISTRY.entries.items()}


def torch_optimizers() -> list[str]:
    """The optimizers whose own file declares ``uses_torch = True`` (none imported): their
    jobs run torch code on the config's device."""
    return [name for name, entry in _REGISTRY.entries.items() if entry.uses_torch]


def steering_methods() -> list[str]:
    """The registered steering methods (their own file declares ``steers = True``; none
    imported): they run on problems with a stepwise sampler (the molecule tasks) only."""
    return [name for name, entry in _REGISTRY.entries.items() if entry.steers]


def is_steering(name: str) -> bool:
    """Whether ``name`` is a registered steering method."""
    entry = _REGISTRY.entries.get(name)
    return entry is not None and entry.steers


def get_steering(name: str) -> type[SteeringMethod]:
    """The steering method class registered as ``name``."""
    if not is_steering(name):
        raise OptimizerError(
            f"{name!r} is no steering method; choose one of {', '.join(steering_methods())}"
        )
    return _STEERING.get(name)


def get_optimizer(name: str) -> type[Optimizer]:
    """The ask/tell optimizer class registered as ``name``."""
    if is_steering(name):
        raise OptimizerError(
            f"{name!r} is a steering method, not an ask/tell optimizer; build it with get_steering"
        )
    try:
        return _REGISTRY.get(name)
    except KeyError:
        raise OptimizerError(
            f"unknown optimizer {name!r}; choose one of {', '.join(available_optimizers())}"
        ) from None


def make_optimizer(name: str, space: SearchSpace, seed: int, **options: Any) -> Optimizer:
    """Construct optimizer ``name`` on ``space`` with ``seed`` and config ``options``."""
    return get_optimizer(name)(space, seed, **options)
