"""The words config, command line and code share, defined once (nothing heavy imported).

>>> "cumulative" in SCORINGS and "auto" in DEVICE_NAMES and "stop" in FAILURE_POLICIES
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

FreshKind = Literal["law", "point"]
FRESH_KINDS: tuple[str, ...] = get_args(FreshKind)
"""What a method's fresh samples (the fresh-sample measure, drawn after the budget) come
from: ``law``, new draws from the law it adapted (or, for random search, the unguided
sampler's); ``point``, its best candidate repeated (a latent method's later noises still
fresh). Each optimizer declares its own as ``fresh_kind`` (docs/method.md section 4)."""

OnFailure = Literal["penalty", "stop"]
FAILURE_POLICIES: tuple[str, ...] = get_args(OnFailure)
"""What a failed evaluation (NaN, infinity or an exception from the black box) does:
``penalty`` records it and tells the optimizer a penalty in its place, ``stop`` ends the job
with an error (:mod:`casbo_bench.runner`)."""

DEFAULT_FAILURE_PENALTY = 1.0e6
"""The loss told for a failed evaluation before any evaluation of the repetition succeeded
(afterwards the penalty is the worst finite loss so far; :func:`casbo_bench.runner.penalized`).
workflow/schemas/config.schema.yaml states the same default for ``failure_penalty``."""

JOB_FOLDERS: tuple[str, ...] = ("raw", "robustness/raw", "rate_checks/raw", "molecules/raw")
"""The folders below results/<name>/ in which the workflow's job table registers runs: the
name of every job of rule run (its ``{job}`` wildcard) begins with one of them."""

MOLECULE_GRID_PREFIX = "best_molecules_"
"""The molecule report's grid of a task's best molecules is ``<prefix><task>.png``
(:func:`casbo_bench.analysis.molecules.write_grids`; a published archive draws these again
rather than keeping them, :mod:`casbo_bench.publish`)."""
