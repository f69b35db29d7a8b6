"""The one error contract of the package: mistakes a user can fix.

Every error the package raises for bad input (an argument, a config, a data file or trace, a
model folder, a black box that fails under ``on_failure: stop``) subclasses
:class:`UserFacingError`, and its message names the problem and the fix in one sentence. The
command line reports any of them as one line (:func:`one_line`) and exit status 2
(:mod:`casbo_bench.cli`); anything else is a bug and keeps its traceback. Each subclass also
keeps its builtin base (``ValueError``, ``RuntimeError``, ...), so callers that catch those
keep working.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """A mistake the user can fix; ``str(error)`` says what is wrong and what to do."""


class ProblemError(UserFacingError, ValueError):
    """A problem was asked for with an impossible name, size or option.

    Defined here rather than in :mod:`casbo_bench.problems.base` (which re-exports it) so that
    the torch-free molecule task table can raise it without importing the problems package,
    which registers that table.
    """


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (its type's name when the message is empty)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def describe_error(error: BaseException) -> str:
    """``"<type>: <message>"`` on one line, e.g. ``"ValueError: math domain error"`` (the
    type alone when the message is empty): how a trace and a log name an exception."""
    text = one_line(error)
    name = type(error).__name__
    return name if text == name else f"{name}: {text}"
