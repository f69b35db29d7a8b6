"""The registered test functions grouped by what they declare, for parametrizing tests.

Every group is read from the registry, so a function added as one file joins the tests of
its group without editing them.
"""

from __future__ import annotations

from casbo_bench.problems.functions import available_functions, get_function


def functions_with_closed_form() -> list[str]:
    """The registered functions whose Gaussian expectation has a closed form, sorted."""
    return [name for name in available_functions() if get_function(name).has_gaussian_expectation]


def functions_without_closed_form() -> list[str]:
    """The registered functions without a closed-form Gaussian expectation, sorted."""
    return sorted(set(available_functions()) - set(functions_with_closed_form()))


def convex_functions() -> list[str]:
    """The registered functions that declare themselves convex, sorted."""
    return [name for name in available_functions() if get_function(name).convex]
