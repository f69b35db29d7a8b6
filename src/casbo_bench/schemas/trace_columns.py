"""The trace's column names, dtypes and status words, standard library only.

The runner needs these while it runs a job; they live here, below :mod:`.trace` (which
re-exports them), so that a job imports pandas and pandera only when it writes its trace.
"""

from __future__ import annotations

TRACE_COLUMNS: dict[str, str] = {
    "method": "str",
    "optimizer": "str",
    "problem": "str",
    "d": "int64",
    "K": "int64",
    "scoring": "str",
    "seed": "int64",
    "budget": "int64",
    "iteration": "int64",
    "evaluation": "int64",
    "loss": "float64",
    "best_so_far": "float64",
    "wall_time": "float64",
    "expected_loss": "float64",
    "fresh_sample_loss": "float64",
    "safeguard_events": "int64",
    "failed": "bool",
    "error": "str",
    "status": "str",
}
"""Column name -> dtype of a trace, in the order the runner writes them."""

COST_COLUMNS: dict[str, str] = {"calls": "int64", "denoiser_evals": "int64"}
"""The optional cost columns, written for problems with a pre-trained sampler (the molecule
tasks; docs/method.md section 7b), after :data:`TRACE_COLUMNS`: the cumulative black-box calls
(rollouts, scored ``x0_hat`` of steering methods, finished samples; repeats included) and the
cumulative denoiser evaluations (network forward passes) spent when the row's sample was
completed. Both never decrease within a run, and ``calls >= evaluation`` (every completed
sample cost at least its own call)."""

COMPLETE = "complete"
"""The ``status`` of a run that spent its whole budget (its failed evaluations included)."""

FAILED = "failed"
"""The ``status`` of a run whose repetition failed (the optimizer raised, or no evaluation
succeeded): the runner keeps its rows and records the error in the trace's provenance."""

RUN_STATUSES: tuple[str, ...] = (COMPLETE, FAILED)
"""The values of the ``status`` column."""

DETAIL_PREFIX = "detail_"
"""Prefix of the optional per-evaluation side-information columns a problem may add (e.g. a
molecule's validity and SMILES): any dtype, nullable, never needed by the generic analysis."""

SETTING_KEYS: tuple[str, ...] = ("problem", "d", "K", "scoring")
"""The columns that name a setting, in which methods are compared with each other."""

CELL_KEYS: tuple[str, ...] = ("method", *SETTING_KEYS)
"""The columns that name a benchmark cell: one method on one problem at one d, K, scoring."""

RUN_KEYS: tuple[str, ...] = (*CELL_KEYS, "seed")
"""The columns that identify one run (one method, instance and repetition seed)."""
