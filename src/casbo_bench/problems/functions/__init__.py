"""Test functions, one per module, found by their ``name`` (see :mod:`.base` for the contract).

Adding a test function is adding one module here with a :class:`~.base.TestFunction`
subclass; it then appears in :func:`available_functions` and as a problem name.
"""

from __future__ import annotations

from casbo_bench._registry import PluginRegistry
from casbo_bench.problems.base import ProblemError
from casbo_bench.problems.functions.base import TestFunction

__all__ = ["TestFunction", "available_functions", "describe_functions", "get_function"]


_REGISTRY: PluginRegistry[TestFunction] = PluginRegistry(__name__, TestFunction)


def available_functions() -> list[str]:
    """Names of every registered test function, sorted."""
    return _REGISTRY.names()


def describe_functions() -> dict[str, str]:
    """Every test function's name with the first line of its module docstring (none imported)."""
    return {name: entry.summary for name, entry in _REGISTRY.entries.items()}


def get_function(name: str) -> TestFunction:
    """The test function registered as ``name`` (functions are stateless)."""
    try:
        return _REGISTRY.get(name)()
    except KeyError:
        raise ProblemError(
            f"unknown test function {name!r}; choose one of {', '.join(available_functions())}"
        ) from None
