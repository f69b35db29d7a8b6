"""The one error contract of the package: mistakes a user can fix.

Every error the package raises for bad input (an argument, a config, a data file or trace, a
model folder, a black box that returns NaN) subclasses :class:`UserFacingError`, and its
message names the problem and the fix in one sentence. The command line reports any of
them as one line and exit status 2 (:mod:`casbo_bench.cli`); anything else is a bug and
keeps its traceback. Each subclass also keeps its builtin base (``ValueError``,
``RuntimeError``, ...), so callers that catch those keep working.
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
