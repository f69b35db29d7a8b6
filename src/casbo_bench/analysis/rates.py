"""The d^2/sqrt(T) rate check: average optimality gaps, a log-log fit, local slopes, a verdict.

The paper proves ``O(d^2 / sqrt(T))`` convergence of CASBO for cumulative convex functions
with the decaying step ``beta_t = beta_0 / sqrt(t)``. This module tests that claim on traces
that recorded the exact objective (``casbo-bench run --record-expected-loss``), following
docs/method.md section 6. Read :func:`average_gaps`, then :func:`judge_rate_checks`.

The measured quantity. Iteration ``t = 1, 2, ...`` is a batch (the trace's 0-based
``iteration`` column is ``t - 1``); ``J(theta_t)`` is the exact expected loss of the law that
proposed batch ``t`` (the trace's ``expected_loss``), so ``theta_1`` is the starting law. The
average gap after ``T`` iterations is

    R_T = (1/T) sum_{t=1}^{T} (J(theta_t) - J*).

One run of ``T_max`` iterations gives ``R_T`` for every ``T <= T_max`` as prefix averages.
For the ``inverse_sqrt`` schedule the prefix of a longer run *is* the run of length ``T``,
because ``beta_t`` does not depend on the horizon; for a constant step it is too (a
constant does not depend on it either). A schedule tuned to the horizon (``beta_0 /
sqrt(T)``) would need one run per ``T``; none is used here. ``J`` is exact, so ``R_T`` does
not depend on how the optimizer normalizes its scores internally (CASBO z-scores the
losses inside its update by default). ``J*`` is what the runner recorded for the run's
instance (:class:`RunReference`).

The fit. Over the grid of ``d`` and ``T``, the seed-mean gap ``Rbar(d, T)`` is fitted by
least squares in logs,

    log Rbar = c + a log T + b log d,

and the seeds are bootstrapped (resampled with replacement within each d, since every d
holds its own independent instances, ``n_resamples`` times, with a generator derived from
the rule's seed and the check) to give one-sided upper confidence limits ``a_ucl`` and
``b_ucl`` (the ``confidence`` quantile of the bootstrap exponents).

Local slopes. On a finite grid the curves may not have reached their asymptotic slope yet:
with ``beta_0 = 1/d`` CASBO's local slope of ``log R_T`` keeps steepening for decades of T
at d = 20. Per d, the least-squares slope of ``log Rbar(d, T)`` against ``log T`` over the
grid points of the last decade, ``T in [T_max/10, T_max]``, and of the decade before,
``[T_max/100, T_max/10]``, each with a two-sided ``steepening_confidence`` interval from
the same bootstrap resamples as the global fit. A d is

- *settled* when its last-decade slope reaches the T limit ``-1/2 + t_tolerance``;
- *steepening* when the last-decade slope lies below the previous one and the whole
  interval of the difference (last - previous) lies below 0;
- *flat* when neither (a decade with fewer than two grid points has no slope: its d cannot
  be shown to steepen).

The verdict (pre-registered: tolerances, factor and levels are fixed in config before any
run). A bound ``R_T <= C d^2 / sqrt(T)`` with a free ``C`` can be met on any finite grid, so a
pass needs positive evidence for the shape, all three of:

1. ``a_ucl <= -1/2 + t_tolerance`` (the gap decays at least like ``T^{-1/2}``);
2. ``b_ucl <= 2 + d_tolerance`` (it grows at most like ``d^2``);
3. out of sample: ``C = Rbar(d_min, T_min) / (d_min^2 / sqrt(T_min))``, fitted at the
   smallest d and T only, still bounds the largest: ``Rbar(d_max, T_max) <= factor * C
   d_max^2 / sqrt(T_max)``.

Each condition has a *slack* that is >= 0 exactly when it holds: ``slack_t = a_limit -
a_ucl``, ``slack_d = b_limit - b_ucl`` and ``slack_bound = log10(factor / bound_ratio)``
(decades of room), with ``bound_ratio = Rbar(d_max, T_max) / (C d_max^2 / sqrt(T_max))``.
A check that is no pass is ``no positive evidence at this horizon`` when only the T-exponent
fails (the d-exponent and the bound hold) and no d is flat: every d is settled at the T limit
over the last decade of T (the upper end of its interval there) or still steepening;
otherwise it is a ``fail``
(:func:`casbo_bench.schemas.claims.rate_verdict` decides, in one place).

Every verdict row carries a *role*: ``claim`` (the paper's setting: CASBO with the decaying
step on a convex problem), ``control`` (a non-adaptive sampler or a mean-only CASBO, which
must fail, or a non-convex problem, which is expected to fail) or ``observation``
(reported, not judged, e.g. a constant step). Its *expectation* says what a sound check
should give: ``pass``, ``must-fail`` (a pass means the check is broken), ``may-fail`` or
``none``.

Floors. CASBO with its covariance frozen at the starting law ``Sigma_0`` (the control
``casbo-mean-only``) cannot go below ``min_mu J(mu, Sigma_0)``; the runner records that
*frozen-law floor* per repetition. Per d, ``floor`` is its seed mean minus ``J*`` and
``floor_ratio = (J(theta_{T_max}) - J*) / floor`` with the current gap averaged over seeds;
a floor control has reached its floor when every ratio lies in ``[1, 1 + floor_tolerance]``
(its J converged). The ratio of the average gap,
``Rbar(d, T_max) / floor``, is reported beside it (``average_floor_ratio``) but not judged:
``R_T`` carries the early transient for as long as the run lasts (1.16 at d = 20 on the
sphere after 30,000 iterations in a pilot run) and approaches the floor only like 1/T.
``floor_reached`` says whether every ratio lies in the band; a control still above it has not
finished converging (it then fails the check more easily, never passes it), so only a gap
below the floor (a wrong floor) or a pass makes ``control_ok`` false
(``control_ok``, :func:`casbo_bench.schemas.claims.rate_control_ok`).

Calibration. How often does this rule pass a true power law ``Rbar = C d^b T^a`` measured
with the noise of a claim's own seeds? For each claim and each ``(a, b)`` of the configured
grid, ``calibration_replicates`` synthetic gap tables on the claim's d and T grid and seed
counts: each synthetic seed is ``d^b T^a`` times a measured seed's factor ``R_seed(d, T) /
Rbar(d, T)``, the factors drawn per d as whole rows of T (a seed's prefix averages are
correlated across T, and the draw keeps that). ``C`` cancels from every quantity the rule
uses, so 1 is taken. The rule is then run on each table, bootstrap included: fits and slopes
are fixed linear maps of the log seed-mean gaps (:class:`_Layout`), so whole stacks of
tables are judged at once. The law enters a table and each of its resamples as the same
added ``log d^b T^a``, which shifts every linear map, and so every bootstrap percentile of
one, by that map of the law: the noise is bootstrapped once per stack and each ``(a, b)``
shifts it (:meth:`_Estimates.plus`).

>>> gaps = average_gaps_of_files(paths, [3, 10, 30, 100, 300], read_provenance)  # doctest: +SKIP
>>> rule = RateRule(t_tolerance=0.1, d_tolerance=0.25, bound_factor=2.0)  # doctest: +SKIP
>>> judge_rate_checks(gaps, [RateCheck("casbo-decay", "sphere", "claim")], rule)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from casbo_bench.documents import html_document, latex_table, markdown_document
from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_all_or_nothing
from casbo_bench.schemas.claims import (
    CALIBRATION_COLUMNS,
    CALIBRATION_SHARES,
    EXPECTATIONS,
    GAP_COLUMNS,
    LOCAL_SLOPE_COLUMNS,
    RATE_NO_EVIDENCE,
    RATE_PASS,
    RATE_VERDICTS,
    ROLES,
    VERDICT_COLUMNS,
    rate_control_ok,
    rate_floor_reached,
    rate_verdict,
    validate_calibration,
    validate_gaps,
    validate_local_slopes,
    validate_verdicts,
)
from casbo_bench.schemas.trace import (
    RUN_KEYS,
    TraceValidationError,
    complete_runs,
    validate_trace,
)
from casbo_bench.seeding import derive_rng

FloatArray = NDArray[np.float64]

Run = tuple[str, str, int, int, str, int]
"""The :data:`~casbo_bench.schemas.trace.RUN_KEYS` values of one run."""

CHECK_KEYS: tuple[str, ...] = ("method", "problem", "K", "scoring")
"""The columns that name one rate check: one method on one problem family and setting."""

TRACE_GAP_COLUMNS: tuple[str, ...] = (
    *RUN_KEYS,
    "iteration",
    "evaluation",
    "expected_loss",
    "status",
)
"""The trace columns the gaps are computed from: all that is read of a trace file."""

DEFAULT_EXPECTATION: dict[str, str] = {
    "claim": "pass",
    "control": "must-fail",
    "observation": "none",
}
"""What a sound check gives for each role unless the check says otherwise."""

RATE_TABLE_COLUMNS: tuple[str, ...] = (
    "problem",
    "method",
    "role",
    "expectation",
    "n_seeds",
    "a_hat",
    "a_ucl",
    "b_hat",
    "b_ucl",
    "bound_ratio",
    "slack_t",
    "slack_d",
    "slack_bound",
    "steepening_dims",
    "flat_dims",
    "floor_ratio",
    "verdict",
    "control_ok",
)
"""The columns of ``tables/rate_checks.*`` (the full rows are in ``verdicts.csv``)."""

LOCAL_SLOPE_TABLE_COLUMNS: tuple[str, ...] = (
    "problem",
    "method",
    "d",
    "prev_T",
    "slope_prev",
    "last_T",
    "slope_last",
    "slope_last_high",
    "change",
    "change_high",
    "settled",
    "steepening",
    "floor_ratio",
)
"""The local-slope columns shown in ``tables/rate_checks.md`` and ``.tex``."""

CALIBRATION_TABLE_COLUMNS: tuple[str, ...] = (
    "problem",
    "method",
    "t_exponent",
    "d_exponent",
    "replicates",
    *CALIBRATION_SHARES.values(),
)
"""The calibration columns shown in ``tables/rate_checks.md`` and ``.tex``."""

_CALIBRATION_BLOCK = 50_000
"""Bootstrap resamples judged at once in the calibration (bounds its memory to tens of MB)."""


class RateCheckError(UserFacingError, ValueError):
    """The traces or the rule cannot give a rate verdict; the message says what to fix."""


@dataclass(frozen=True)
class RateRule:
    """The pre-registered decision rule of the rate check (module docstring).

    Attributes:
        t_tolerance: how far above ``t_exponent`` the T-exponent's upper limit may lie.
        d_tolerance: how far above ``d_exponent`` the d-exponent's upper limit may lie.
        bound_factor: how far above the out-of-sample bound ``C d^2 / sqrt(T)`` the gap at
            the largest d and T may lie (>= 1).
        confidence: the level of the one-sided upper confidence limits.
        n_resamples: seed-bootstrap resamples.
        seed: the seed the bootstrap and calibration generators are derived from.
        t_exponent: the bound's exponent of T (the theorem's: -1/2).
        d_exponent: the bound's exponent of d (the theorem's: 2).
        steepening_confidence: the level of the two-sided intervals of the local slopes and
            of their change; steepening needs the change's whole interval below 0.
        floor_tolerance: a floor control behaves when its current gap ``J(theta_T) - J*`` at
            the largest T lies within ``[1, 1 + floor_tolerance]`` times its frozen-law floor
            at every d.
        calibration_replicates: synthetic gap tables per pair of true exponents (0: none).
        calibration_t_exponents: the true T-exponents of the calibration.
        calibration_d_exponents: the true d-exponents of the calibration.
    """

    t_tolerance: float
    d_tolerance: float
    bound_factor: float
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    t_exponent: float = -0.5
    d_exponent: float = 2.0
    steepening_confidence: float = 0.95
    floor_tolerance: float = 0.1
    calibration_replicates: int = 200
    calibration_t_exponents: tuple[float, ...] = (-0.3, -0.5, -0.7)
    calibration_d_exponents: tuple[float, ...] = (1.5, 2.0, 3.0)

    def __post_init__(self) -> None:
        for name in ("t_tolerance", "d_tolerance", "floor_tolerance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise RateCheckError(f"{name} must be a finite number >= 0; got {value!r}")
        if not (math.isfinite(self.bound_factor) and self.bound_factor >= 1):
            raise RateCheckError(
                f"bound_factor must be a finite number >= 1 (1: no room above the bound); "
                f"got {self.bound_factor!r}"
            )
        for name in ("confidence", "steepening_confidence"):
            if not 0.5 <= getattr(self, name) < 1:
                raise RateCheckError(f"{name} must lie in [0.5, 1); got {getattr(self, name)}")
        if self.n_resamples < 100:
            raise RateCheckError(
                f"n_resamples must be >= 100 for a percentile limit; got {self.n_resamples}"
            )
        if self.seed < 0:
            raise RateCheckError(f"seed must be >= 0; got {self.seed}")
        if self.calibration_replicates < 0:
            raise RateCheckError(
                f"calibration_replicates must be >= 0 (0: no calibration); got "
                f"{self.calibration_replicates}"
            )
        for name in ("calibration_t_exponents", "calibration_d_exponents"):
            values = tuple(float(value) for value in getattr(self, name))
            if not values or not all(math.isfinite(value) for value in values):
                raise RateCheckError(f"{name} must list at least one finite number; got {values}")
            if len(set(values)) != len(values):
                raise RateCheckError(f"{name} must not repeat a value; got {values}")
            object.__setattr__(self, name, values)

    def shape(self, dim: float, iterations: float) -> float:
        """The bound without its constant: ``d^d_exponent T^t_exponent`` (``d^2 / sqrt(T)``)."""
        return float(dim**self.d_exponent * iterations**self.t_exponent)

    @property
    def t_limit(self) -> float:
        """The largest T-exponent upper limit that passes: ``t_exponent + t_tolerance``."""
        return self.t_exponent + self.t_tolerance

    @property
    def d_limit(self) -> float:
        """The largest d-exponent upper limit that passes: ``d_exponent + d_tolerance``."""
        return self.d_exponent + self.d_tolerance


@dataclass(frozen=True)
class RateCheck:
    """One method on one problem family, judged in one role.

    Attributes:
        method: the method label of the traces.
        problem: the problem family.
        role: ``"claim"``, ``"control"`` or ``"observation"``.
        expectation: ``"pass"``, ``"must-fail"``, ``"may-fail"`` or ``"none"``; by default
            the role's (:data:`DEFAULT_EXPECTATION`).
        variant_of: the method this one is a robustness variant of (empty: none).
    """

    method: str
    problem: str
    role: str
    expectation: str = ""
    variant_of: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise RateCheckError(
                f"rate check {self.method}/{self.problem}: unknown role {self.role!r}; "
                f"choose one of {', '.join(ROLES)}"
            )
        expectation = self.expectation or DEFAULT_EXPECTATION[self.role]
        if expectation not in EXPECTATIONS:
            raise RateCheckError(
                f"rate check {self.method}/{self.problem}: unknown expectation "
                f"{expectation!r}; choose one of {', '.join(EXPECTATIONS)}"
            )
        object.__setattr__(self, "expectation", expectation)


@dataclass(frozen=True)
class RunReference:
    """What a run's gaps are measured against, as the runner recorded it per repetition.

    Attributes:
        optimal_loss: ``J*``, the infimum of ``J`` over all per-step Gaussian laws (NaN:
            unknown; no gap can be measured).
        frozen_law_floor: ``min_mu J(mu, Sigma_0)``, the lowest ``J`` reachable with the
            covariances frozen at the starting law (NaN: not recorded, the method adapts
            its covariance).
    """

    optimal_loss: float
    frozen_law_floor: float = math.nan


LEGACY_REFERENCE = RunReference(optimal_loss=0.0)
"""The reference of a trace written before the runner recorded one: ``J* = 0``, the infimum
of every test-function chain problem (the only problems with a closed-form ``J`` then), and
no floor."""


def _describe_run(run: Sequence[object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(RUN_KEYS, run, strict=True))


def _check_iterations(iterations: Sequence[int]) -> list[int]:
    grid = [int(t) for t in iterations]
    if len(grid) < 2 or any(t < 1 for t in grid) or len(set(grid)) != len(grid):
        raise RateCheckError(
            f"the T grid needs at least two distinct iteration counts >= 1; got {list(iterations)}"
        )
    return sorted(grid)


def _number_or_nan(value: object) -> float:
    return math.nan if value is None else float(cast(float, value))


def references_from_provenance(
    record: Mapping[str, Any], runs: Iterable[Run]
) -> dict[Run, RunReference]:
    """The reference of each run of a trace file, from the file's provenance record.

    The runner records ``record["repetitions"][str(seed)]`` with ``"optimal_loss"`` (J*) and
    ``"frozen_law_floor"``, each null where unknown. A record without ``"repetitions"``
    (written before the runner kept them) gives :data:`LEGACY_REFERENCE` for every run.

    Raises:
        RateCheckError: the record has repetitions but none for a run's seed.
    """
    repetitions = record.get("repetitions")
    if repetitions is None:
        return dict.fromkeys(runs, LEGACY_REFERENCE)
    references: dict[Run, RunReference] = {}
    for run in runs:
        entry = repetitions.get(str(run[-1]))
        if not isinstance(entry, Mapping):
            raise RateCheckError(
                f"its provenance records no repetition {run[-1]} for run "
                f"({_describe_run(run)}); re-run the job that wrote it"
            )
        references[run] = RunReference(
            optimal_loss=_number_or_nan(entry.get("optimal_loss")),
            frozen_law_floor=_number_or_nan(entry.get("frozen_law_floor")),
        )
    return references


def average_gaps(
    traces: pd.DataFrame,
    iterations: Sequence[int],
    references: Mapping[Run, RunReference] | None = None,
) -> pd.DataFrame:
    """The average gap ``R_T`` of every run at every ``T`` of the grid.

    Args:
        traces: validated traces (at least the columns :data:`TRACE_GAP_COLUMNS`) whose runs
            recorded ``expected_loss`` for at least ``max(iterations)`` iterations. Failed
            runs (``status`` failed) are left out, like missing seeds; a failed evaluation
            of a complete run leaves its batch's ``expected_loss``, the law's, as it is.
        iterations: the T grid (iteration counts; e.g. 3, 10, 30, 100, 300).
        references: ``J*`` and the frozen-law floor of every run, by its run keys
            (:func:`references_from_provenance`); None: :data:`LEGACY_REFERENCE` for all.

    Returns:
        One row per complete run and T (columns
        :data:`casbo_bench.schemas.claims.GAP_COLUMNS`): the run keys, ``T``, ``gap``
        (``R_T``), ``current_gap`` (``J(theta_T) - J*``), ``optimal_loss`` and ``floor``
        (the frozen-law floor minus J*, NaN where none); validated.

    Raises:
        RateCheckError: a run did not record ``expected_loss``, has fewer than
            ``max(iterations)`` iterations, has no reference or no known J*, has
            ``J(theta_t) < J*`` or a floor below J* (a wrong reference), or an average gap
            is 0 (its logarithm is needed).
    """
    grid = _check_iterations(iterations)
    horizon = grid[-1]
    if traces.empty:
        raise RateCheckError("there are no traces to measure rates on")
    firsts = (
        complete_runs(traces)
        .sort_values([*RUN_KEYS, "evaluation"], kind="stable")
        .drop_duplicates([*RUN_KEYS, "iteration"])
    )
    rows: list[pd.DataFrame] = []
    for keys, frame in firsts.groupby(list(RUN_KEYS), sort=True):
        run = cast(Run, keys)
        objective = frame["expected_loss"].to_numpy(dtype=np.float64)
        if not np.isfinite(objective).all():
            raise RateCheckError(
                f"run ({_describe_run(run)}) has no exact expected_loss; run it with "
                f"--record-expected-loss on a problem with a closed-form J"
            )
        if objective.size < horizon:
            raise RateCheckError(
                f"run ({_describe_run(run)}) has {objective.size} iterations, fewer than the "
                f"largest T = {horizon}; raise its budget or shorten the T grid"
            )
        reference = LEGACY_REFERENCE if references is None else references.get(run)
        if reference is None:
            raise RateCheckError(
                f"run ({_describe_run(run)}) has no reference (J*); give one for every run"
            )
        best = reference.optimal_loss
        if not math.isfinite(best):
            raise RateCheckError(
                f"run ({_describe_run(run)}): its problem has no known optimal loss J*; the "
                f"rate check needs J* exactly"
            )
        gap = objective[:horizon] - best
        # J >= J* must hold; allow round-off relative to the size of J.
        if (gap < -1e-9 * np.maximum(1.0, np.abs(objective[:horizon]))).any():
            raise RateCheckError(
                f"run ({_describe_run(run)}) has J(theta_t) below J* = {best}; the optimal "
                f"loss recorded for its instance is wrong"
            )
        floor = reference.frozen_law_floor - best
        if floor < -1e-9 * max(1.0, abs(best)):
            raise RateCheckError(
                f"run ({_describe_run(run)}) has a frozen-law floor below J* = {best}; the "
                f"floor recorded for its instance is wrong"
            )
        averages = np.cumsum(np.clip(gap, 0.0, None)) / np.arange(1, horizon + 1)
        at_grid = averages[np.asarray(grid) - 1]
        if not (at_grid > 0).all():
            raise RateCheckError(
                f"run ({_describe_run(run)}) has an average gap of exactly 0; a log-log fit "
                f"needs positive gaps"
            )
        rows.append(
            pd.DataFrame(
                {
                    **dict(zip(RUN_KEYS, run, strict=True)),
                    "T": grid,
                    "gap": at_grid,
                    "current_gap": np.clip(gap, 0.0, None)[np.asarray(grid) - 1],
                    "optimal_loss": best,
                    "floor": max(floor, 0.0) if math.isfinite(floor) else math.nan,
                }
            )
        )
    if not rows:  # every run failed
        return validate_gaps(pd.DataFrame(columns=list(GAP_COLUMNS)).astype(GAP_COLUMNS))
    gaps = pd.concat(rows, ignore_index=True).astype(GAP_COLUMNS)
    return validate_gaps(gaps[list(GAP_COLUMNS)])


def read_gap_columns(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The :data:`TRACE_GAP_COLUMNS` of a trace file, checked by the trace schema's rules on them.

    Only these columns are read, so a rate-check trace of hundreds of thousands of rows per
    seed costs a fraction of the whole file; every rule of the trace schema that involves
    them (dtypes, ranges, one row per evaluation 1..n, iterations non-decreasing) holds.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        TraceValidationError: the file is not readable Parquet, lacks one of the columns,
            or fails a rule (the message names the file and every failed check).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"trace file {source} does not exist")
    try:
        frame = pd.read_parquet(source, columns=list(TRACE_GAP_COLUMNS))
    except (OSError, ValueError) as error:
        raise TraceValidationError(
            f"trace {source} is not a readable Parquet trace with the columns "
            f"{', '.join(TRACE_GAP_COLUMNS)} ({error}); re-run the job that writes it"
        ) from None
    return validate_trace(frame, str(source), columns=TRACE_GAP_COLUMNS)


def average_gaps_of_files(
    paths: Sequence[str | os.PathLike[str]],
    iterations: Sequence[int],
    read_provenance: Callable[[Path], Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """:func:`average_gaps` of trace files, read and reduced one file at a time.

    A rate-check run records every evaluation of thousands of iterations (up to 360,000
    rows per seed at T = 30,000), so the traces of a full check would not fit in memory
    together: each file's :data:`TRACE_GAP_COLUMNS` are read (:func:`read_gap_columns`),
    reduced to its gaps and dropped. A run found in two files fails the gap schema's
    uniqueness check.

    Args:
        paths: Parquet trace files.
        iterations: the T grid.
        read_provenance: reads a file's provenance record, whose repetitions give each
            run's reference (:func:`references_from_provenance`); ``casbo_bench.runner.
            read_provenance`` in the command line. None: :data:`LEGACY_REFERENCE` for all.

    Raises:
        RateCheckError: as :func:`average_gaps`, naming the file.
        TraceValidationError: a file is unreadable or fails the trace schema's rules.
    """
    if not paths:
        raise RateCheckError("give at least one trace file")
    frames = []
    for path in paths:
        try:
            traces = read_gap_columns(path)
            references = None
            if read_provenance is not None:
                runs = traces[list(RUN_KEYS)].drop_duplicates().itertuples(index=False)
                references = references_from_provenance(
                    read_provenance(Path(path)), [cast(Run, tuple(run)) for run in runs]
                )
            frames.append(average_gaps(traces, iterations, references))
        except RateCheckError as error:
            raise RateCheckError(f"{path}: {error}") from None
    return validate_gaps(pd.concat(frames, ignore_index=True))


def _design(iterations: FloatArray, dims: FloatArray) -> FloatArray:
    return np.column_stack([np.ones_like(iterations), np.log(iterations), np.log(dims)])


@dataclass(frozen=True)
class PowerLawFit:
    """``log R = intercept + t_exponent log T + d_exponent log d``, least squares.

    Attributes:
        intercept: c.
        t_exponent: a.
        d_exponent: b.
        r_squared: the share of the variance of ``log R`` the fit explains.
    """

    intercept: float
    t_exponent: float
    d_exponent: float
    r_squared: float

    def predict(self, iterations: FloatArray, dims: FloatArray) -> FloatArray:
        """``exp(c) T^a d^b`` at matching arrays of T and d."""
        return np.asarray(
            np.exp(self.intercept)
            * np.power(iterations, self.t_exponent)
            * np.power(dims, self.d_exponent),
            dtype=np.float64,
        )


def fit_power_law(iterations: ArrayLike, dims: ArrayLike, gaps: ArrayLike) -> PowerLawFit:
    """Least-squares fit of ``log R = c + a log T + b log d`` over matching arrays.

    Args:
        iterations: a ``n`` array of T.
        dims: a ``n`` array of d.
        gaps: a ``n`` array of positive R.

    Raises:
        RateCheckError: fewer than two distinct T or d, or a non-positive gap.

    >>> t = np.array([10.0, 100.0, 10.0, 100.0]); d = np.array([2.0, 2.0, 20.0, 20.0])
    >>> fit = fit_power_law(t, d, 3.0 * d**2 / np.sqrt(t))
    >>> round(fit.t_exponent, 6), round(fit.d_exponent, 6)
    (-0.5, 2.0)
    """
    t = np.asarray(iterations, dtype=np.float64)
    d = np.asarray(dims, dtype=np.float64)
    r = np.asarray(gaps, dtype=np.float64)
    if not t.shape == d.shape == r.shape or t.ndim != 1:
        raise RateCheckError(
            f"iterations, dims and gaps must be 1-d arrays of one length; got shapes "
            f"{t.shape}, {d.shape}, {r.shape}"
        )
    if np.unique(t).size < 2 or np.unique(d).size < 2:
        raise RateCheckError(
            f"the fit needs at least two distinct T and two distinct d; got T "
            f"{sorted(set(t.tolist()))} and d {sorted(set(d.tolist()))}"
        )
    if not (np.isfinite(r).all() and (r > 0).all()):
        raise RateCheckError("every gap must be positive and finite to be fitted in logs")
    design = _design(t, d)
    response = np.log(r)
    coefficients, *_ = np.linalg.lstsq(design, response, rcond=None)
    residual = response - design @ coefficients
    spread = float(np.sum((response - response.mean()) ** 2))
    r_squared = 1.0 - float(residual @ residual) / spread if spread > 0 else 1.0
    c, a, b = (float(value) for value in coefficients)
    return PowerLawFit(intercept=c, t_exponent=a, d_exponent=b, r_squared=r_squared)


@dataclass(frozen=True)
class _Grid:
    """One check's gaps arranged by d: ``values[i]`` is a ``seeds_i x T`` array at ``dims[i]``.

    ``floors[i]`` is the seed mean of the frozen-law floor at ``dims[i]`` (NaN unless every
    seed there has one), ``current[i]`` the seed mean of the current gap at the largest T.
    """

    dims: list[int]
    iterations: list[int]
    values: list[FloatArray]
    floors: FloatArray
    current: FloatArray

    @classmethod
    def of(cls, gaps: pd.DataFrame, label: str) -> _Grid:
        iterations = sorted(int(t) for t in gaps["T"].unique())
        dims: list[int] = []
        values: list[FloatArray] = []
        floors: list[float] = []
        current: list[float] = []
        for d in sorted(int(d) for d in gaps["d"].unique()):
            own = gaps[gaps["d"] == d]
            table = own.pivot(index="seed", columns="T", values="gap")
            if list(table.columns) != iterations or table.isna().to_numpy().any():
                raise RateCheckError(
                    f"{label}: at d={d} some seeds lack some T of the grid {iterations}; every "
                    f"run must cover the whole grid"
                )
            dims.append(d)
            values.append(table.to_numpy(dtype=np.float64))
            floors.append(float(own.groupby("seed")["floor"].first().mean(skipna=False)))
            current.append(float(own.loc[own["T"] == iterations[-1], "current_gap"].mean()))
        return cls(
            dims,
            iterations,
            values,
            np.asarray(floors, dtype=np.float64),
            np.asarray(current, dtype=np.float64),
        )

    def points(self) -> tuple[FloatArray, FloatArray]:
        """T and d of every (d, T) cell, d-major: two ``n_d * n_T`` arrays."""
        t = np.tile(np.asarray(self.iterations, dtype=np.float64), len(self.dims))
        d = np.repeat(np.asarray(self.dims, dtype=np.float64), len(self.iterations))
        return t, d

    def fit_map(self) -> FloatArray:
        """The ``3 x (n_d n_T)`` least-squares map from log gaps of the cells to ``(c, a, b)``."""
        return np.asarray(np.linalg.pinv(_design(*self.points())), dtype=np.float64)

    def means(self) -> FloatArray:
        """The seed-mean gap of every cell, d-major: a ``n_d * n_T`` array."""
        return np.concatenate([values.mean(axis=0) for values in self.values])

    def bootstrap_means(self, rng: np.random.Generator, n_resamples: int) -> FloatArray:
        """Seed-mean gaps of ``n_resamples`` resamples (seeds drawn within each d).

        Returns:
            A ``n_resamples x (n_d * n_T)`` array, cells d-major.
        """
        blocks = []
        for values in self.values:
            picks = rng.integers(0, values.shape[0], size=(n_resamples, values.shape[0]))
            blocks.append(values[picks].mean(axis=1))
        return np.concatenate(blocks, axis=1)


@dataclass(frozen=True)
class _Decade:
    """The grid points of one decade of T and the least-squares slope over them.

    ``slope = weights @ log R`` over the whole T grid: ``weights_j = (x_j - xbar) / sum_k
    (x_k - xbar)^2`` with ``x = log T`` on the decade's points and 0 elsewhere; None with
    fewer than two points (no slope).
    """

    iterations: tuple[int, ...]
    weights: FloatArray | None

    @classmethod
    def back(cls, grid: Sequence[int], decades: int) -> _Decade:
        """The decade ``[T_max / 10^(k+1), T_max / 10^k]`` of the sorted ``grid``, k =
        ``decades`` (0: the last)."""
        horizon = grid[-1]
        # Integer comparisons: the decade edges T_max / 10^k are exact, never rounded.
        inside = [10 ** (decades + 1) * t >= horizon and 10**decades * t <= horizon for t in grid]
        points = tuple(t for t, keep in zip(grid, inside, strict=True) if keep)
        if len(points) < 2:
            return cls(points, None)
        x = np.log(np.asarray(points, dtype=np.float64))
        centred = x - x.mean()
        weights = np.zeros(len(grid))
        weights[np.asarray(inside)] = centred / float(centred @ centred)
        return cls(points, weights)

    def label(self) -> str:
        """The decade's grid points, comma-separated ("" without a slope)."""
        return ",".join(map(str, self.iterations)) if self.weights is not None else ""


@dataclass(frozen=True)
class _Layout:
    """The fixed linear maps of one (d, T) grid, from log seed-mean gaps to what the rule uses.

    Attributes:
        dims, iterations: the grid.
        fit: the ``3 x (n_d n_T)`` least-squares map: ``(c, a, b) = fit @ log Rbar`` (cells
            d-major).
        last: the decade ``[T_max/10, T_max]``.
        previous: the decade ``[T_max/100, T_max/10]``.
        shape_ratio: ``shape(d_min, T_min) / shape(d_max, T_max)``: ``bound_ratio =
            Rbar(d_max, T_max) / Rbar(d_min, T_min) * shape_ratio``.
    """

    dims: tuple[int, ...]
    iterations: tuple[int, ...]
    fit: FloatArray
    last: _Decade
    previous: _Decade
    shape_ratio: float

    @classmethod
    def of(cls, grid: _Grid, rule: RateRule) -> _Layout:
        dims, iterations = grid.dims, grid.iterations
        return cls(
            dims=tuple(dims),
            iterations=tuple(iterations),
            fit=grid.fit_map(),
            last=_Decade.back(iterations, 0),
            previous=_Decade.back(iterations, 1),
            shape_ratio=rule.shape(dims[0], iterations[0]) / rule.shape(dims[-1], iterations[-1]),
        )


@dataclass(frozen=True)
class _Judgement:
    """The rule applied to a stack of ``S`` grids (leading axis ``S`` everywhere).

    Attributes:
        upper: ``S x 2``: ``(a_ucl, b_ucl)``.
        bound_ratio: ``S``.
        slack_t, slack_d, slack_bound: ``S`` each.
        slope_last, slope_prev, change: ``S x n_d`` (NaN where a decade has no slope).
        last_interval, prev_interval, change_interval: ``S x n_d x 2`` (low, high).
        settled, steepening, flat: ``S x n_d`` booleans (module docstring).
        verdict: ``S`` verdicts.
    """

    upper: FloatArray
    bound_ratio: FloatArray
    slack_t: FloatArray
    slack_d: FloatArray
    slack_bound: FloatArray
    slope_last: FloatArray
    slope_prev: FloatArray
    change: FloatArray
    last_interval: FloatArray
    prev_interval: FloatArray
    change_interval: FloatArray
    settled: NDArray[np.bool_]
    steepening: NDArray[np.bool_]
    flat: NDArray[np.bool_]
    verdict: NDArray[np.str_]


def _slopes(
    log_means: FloatArray, resampled: FloatArray, decade: _Decade
) -> tuple[FloatArray, FloatArray]:
    """A decade's slope per d: ``S x n_d`` of the means and ``S x B x n_d`` of the resamples."""
    if decade.weights is None:
        return (
            np.full(log_means.shape[:-1], np.nan),
            np.full(resampled.shape[:-1], np.nan),
        )
    return log_means @ decade.weights, resampled @ decade.weights


def _interval(resampled: FloatArray, level: float) -> FloatArray:
    """The two-sided percentile interval over axis 1: ``S x B x n`` -> ``S x n x 2``."""
    if np.isnan(resampled).all():
        return np.full((resampled.shape[0], resampled.shape[2], 2), np.nan)
    bounds = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return np.moveaxis(bounds, 0, -1)


@dataclass(frozen=True)
class _Estimates:
    """What the rule thresholds, for a stack of ``S`` grids: point values and bootstrap
    percentiles of linear maps of the log seed-mean gaps (leading axis ``S`` everywhere).

    Every field is a linear map, or a percentile over resamples of one, so adding a fixed
    log gap ``L`` (``n_d x n_T``) to every grid and resample adds the map of ``L`` to the
    field (:meth:`plus`): the calibration's synthetic power laws share one bootstrap.

    Attributes:
        upper: ``S x 2``: the ``confidence`` upper limits of ``(a, b)``.
        log_rise: ``S``: ``log Rbar(d_max, T_max) - log Rbar(d_min, T_min)``.
        slope_last, slope_prev: ``S x n_d`` (NaN where a decade has no slope).
        last_interval, prev_interval, change_interval: ``S x n_d x 2`` (low, high).
    """

    upper: FloatArray
    log_rise: FloatArray
    slope_last: FloatArray
    slope_prev: FloatArray
    last_interval: FloatArray
    prev_interval: FloatArray
    change_interval: FloatArray

    @classmethod
    def of(
        cls, log_means: FloatArray, resampled: FloatArray, layout: _Layout, rule: RateRule
    ) -> _Estimates:
        """The estimates of ``log_means`` (``S x n_d x n_T``) and of its bootstrap
        resamples ``resampled`` (``S x B x n_d x n_T``)."""
        stack, n_d, n_t = log_means.shape
        exponents = resampled.reshape(stack, -1, n_d * n_t) @ layout.fit[1:].T  # S x B x 2
        last, last_resampled = _slopes(log_means, resampled, layout.last)
        previous, previous_resampled = _slopes(log_means, resampled, layout.previous)
        level = rule.steepening_confidence
        return cls(
            upper=np.quantile(exponents, rule.confidence, axis=1),
            log_rise=log_means[:, -1, -1] - log_means[:, 0, 0],
            slope_last=last,
            slope_prev=previous,
            last_interval=_interval(last_resampled, level),
            prev_interval=_interval(previous_resampled, level),
            change_interval=_interval(last_resampled - previous_resampled, level),
        )

    def plus(self, law: FloatArray, layout: _Layout) -> _Estimates:
        """The estimates had ``law`` (``n_d x n_T`` log gaps) been added to every grid and
        resample (a percentile moves with a constant added to all its resamples)."""
        last, _ = _slopes(law[None], law[None, None], layout.last)
        previous, _ = _slopes(law[None], law[None, None], layout.previous)
        return _Estimates(
            upper=self.upper + law.ravel() @ layout.fit[1:].T,
            log_rise=self.log_rise + (law[-1, -1] - law[0, 0]),
            slope_last=self.slope_last + last,
            slope_prev=self.slope_prev + previous,
            last_interval=self.last_interval + last[..., None],
            prev_interval=self.prev_interval + previous[..., None],
            change_interval=self.change_interval + (last - previous)[..., None],
        )


def _judge(estimates: _Estimates, layout: _Layout, rule: RateRule) -> _Judgement:
    """The rule on the ``S`` grids of ``estimates``."""
    upper = estimates.upper
    bound_ratio = np.exp(estimates.log_rise) * layout.shape_ratio
    slack_t = rule.t_limit - upper[:, 0]
    slack_d = rule.d_limit - upper[:, 1]
    slack_bound = np.log10(rule.bound_factor / bound_ratio)
    change = estimates.slope_last - estimates.slope_prev
    with np.errstate(invalid="ignore"):
        # Settled needs the interval's upper end at the limit, as a pass needs the exponent's.
        settled = estimates.last_interval[..., 1] <= rule.t_limit
        steepening = (change < 0) & (estimates.change_interval[..., 1] < 0)
    flat = ~settled & ~steepening
    return _Judgement(
        upper=upper,
        bound_ratio=bound_ratio,
        slack_t=slack_t,
        slack_d=slack_d,
        slack_bound=slack_bound,
        slope_last=estimates.slope_last,
        slope_prev=estimates.slope_prev,
        change=change,
        last_interval=estimates.last_interval,
        prev_interval=estimates.prev_interval,
        change_interval=estimates.change_interval,
        settled=settled,
        steepening=steepening,
        flat=flat,
        verdict=rate_verdict(slack_t, slack_d, slack_bound, flat.any(axis=1)),
    )


def bootstrap_exponents(
    gaps: pd.DataFrame, rng: np.random.Generator, n_resamples: int
) -> FloatArray:
    """Exponents ``(c, a, b)`` fitted on seed-bootstrap resamples of one check's gaps.

    Args:
        gaps: the :func:`average_gaps` rows of one check (one method, problem, K, scoring).
        rng: draws the resamples.
        n_resamples: how many.

    Returns:
        A ``n_resamples x 3`` array of ``(intercept, t_exponent, d_exponent)``.
    """
    grid = _Grid.of(gaps, "bootstrap")
    return np.asarray(np.log(grid.bootstrap_means(rng, n_resamples)) @ grid.fit_map().T)


def _dim_list(dims: Sequence[int], chosen: NDArray[np.bool_]) -> str:
    return ",".join(str(d) for d, keep in zip(dims, chosen, strict=True) if keep)


def _floor_worst(
    floors: FloatArray, current_gap: FloatArray, rule: RateRule
) -> tuple[int | None, float, float]:
    """The index, floor and ratio ``current_gap / floor`` of the d whose ratio lies farthest
    outside ``[1, 1 + floor_tolerance]`` (in log distance; the one nearest an edge when all lie
    inside), or ``(None, nan, nan)`` without floors."""
    ratios = current_gap / floors
    present = np.flatnonzero(~np.isnan(ratios))
    if present.size == 0:
        return None, math.nan, math.nan
    with np.errstate(divide="ignore"):
        logs = np.log(ratios[present])
    outside = np.maximum(logs - math.log1p(rule.floor_tolerance), -logs)
    index = int(present[np.argmax(outside)])
    return index, float(floors[index]), float(ratios[index])


def _reason(judged: _Judgement, layout: _Layout, rule: RateRule, verdict: str) -> str:
    """Why the check got its verdict: the conditions that fail and what the slopes show."""
    a_ucl, b_ucl = (float(value) for value in judged.upper[0])
    bound_ratio = float(judged.bound_ratio[0])
    d_min, d_max = layout.dims[0], layout.dims[-1]
    t_min, t_max = layout.iterations[0], layout.iterations[-1]
    if verdict == RATE_PASS:
        return (
            f"all three hold: T-exponent upper limit {a_ucl:.3g} <= {rule.t_limit:.3g}, "
            f"d-exponent upper limit {b_ucl:.3g} <= {rule.d_limit:.3g}, R_T at (d={d_max}, "
            f"T={t_max}) is {bound_ratio:.3g}x the bound fitted at (d={d_min}, T={t_min}) "
            f"(<= {rule.bound_factor:g})"
        )
    failed = []
    if judged.slack_t[0] < 0:
        failed.append(f"T-exponent upper limit {a_ucl:.3g} > {rule.t_limit:.3g}")
    if judged.slack_d[0] < 0:
        failed.append(f"d-exponent upper limit {b_ucl:.3g} > {rule.d_limit:.3g}")
    if judged.slack_bound[0] < 0:
        failed.append(
            f"R_T at (d={d_max}, T={t_max}) is {bound_ratio:.3g}x the bound C d^2/sqrt(T) "
            f"fitted at (d={d_min}, T={t_min}) (> {rule.bound_factor:g})"
        )
    steepening = _dim_list(layout.dims, judged.steepening[0])
    flat = _dim_list(layout.dims, judged.flat[0])
    span = f"T = {layout.last.label() or 'fewer than two grid points'}"
    if verdict == RATE_NO_EVIDENCE:
        settled = _dim_list(layout.dims, judged.settled[0])
        states = []
        if steepening:
            states.append(
                f"still steepening at d = {steepening} (the {rule.steepening_confidence:g} "
                f"interval of its change from the decade before lies below 0)"
            )
        if settled:
            states.append(f"at or below {rule.t_limit:.3g} at d = {settled}")
        return (
            f"{'; '.join(failed)}; but the bound holds and the last-decade slope ({span}) is "
            f"{' and '.join(states)}: no d has flattened above the limit"
        )
    notes = []
    if flat and judged.slack_bound[0] >= 0:
        notes.append(
            f"the last-decade slope ({span}) misses {rule.t_limit:.3g} and is not shown to "
            f"steepen at d = {flat}"
        )
    if judged.slack_d[0] < 0 and not steepening and judged.slack_bound[0] >= 0:
        notes.append("no d is still steepening, so the d-exponent measures the growth in d")
    return "; ".join(failed + notes)


def _judge_check(
    gaps: pd.DataFrame, check: RateCheck, rule: RateRule
) -> tuple[dict[str, object], list[dict[str, object]], list[dict[str, object]]]:
    """The verdict row, local-slope rows and calibration rows of one check on one (K,
    scoring) setting."""
    steps, scoring = int(gaps["K"].iloc[0]), str(gaps["scoring"].iloc[0])
    label = f"rate check {check.method} on {check.problem} (K={steps}, {scoring})"
    grid = _Grid.of(gaps, label)
    if len(grid.dims) < 2 or len(grid.iterations) < 2:
        raise RateCheckError(
            f"{label}: the fit needs at least two d and two T; got d {grid.dims} and T "
            f"{grid.iterations}"
        )
    layout = _Layout.of(grid, rule)
    n_d, n_t = len(grid.dims), len(grid.iterations)
    t, d = grid.points()
    means = grid.means()
    fit = fit_power_law(t, d, means)
    rng = derive_rng("rate-bootstrap", rule.seed, check.method, check.problem, steps, scoring)
    resampled = grid.bootstrap_means(rng, rule.n_resamples)
    estimates = _Estimates.of(
        np.log(means).reshape(1, n_d, n_t),
        np.log(resampled).reshape(1, rule.n_resamples, n_d, n_t),
        layout,
        rule,
    )
    judged = _judge(estimates, layout, rule)
    verdict = str(judged.verdict[0])
    gap_t_max = means.reshape(n_d, n_t)[:, -1]
    worst, floor, floor_ratio = _floor_worst(grid.floors, grid.current, rule)
    reason = _reason(judged, layout, rule, verdict)
    if worst is not None:
        reason += (
            f"; J(theta_T) - J* at T={grid.iterations[-1]} is {floor_ratio:.3g}x the frozen-law "
            f"floor at d={grid.dims[worst]}, the d farthest from "
            f"[1, {1 + rule.floor_tolerance:g}]"
        )
    a_ucl, b_ucl = (float(value) for value in judged.upper[0])
    row: dict[str, object] = {
        "problem": check.problem,
        "method": check.method,
        "variant_of": check.variant_of,
        "role": check.role,
        "expectation": check.expectation,
        "K": steps,
        "scoring": scoring,
        "dims": ",".join(map(str, grid.dims)),
        "iterations": ",".join(map(str, grid.iterations)),
        "n_seeds": int(min(values.shape[0] for values in grid.values)),
        "n_points": int(means.size),
        "a_hat": fit.t_exponent,
        "a_ucl": a_ucl,
        "a_limit": rule.t_limit,
        "slack_t": float(judged.slack_t[0]),
        "b_hat": fit.d_exponent,
        "b_ucl": b_ucl,
        "b_limit": rule.d_limit,
        "slack_d": float(judged.slack_d[0]),
        "intercept": fit.intercept,
        "r_squared": fit.r_squared,
        "C": float(means[0] / rule.shape(grid.dims[0], grid.iterations[0])),
        "bound_ratio": float(judged.bound_ratio[0]),
        "bound_factor": rule.bound_factor,
        "slack_bound": float(judged.slack_bound[0]),
        "steepening_dims": _dim_list(grid.dims, judged.steepening[0]),
        "flat_dims": _dim_list(grid.dims, judged.flat[0]),
        "steepening_confidence": rule.steepening_confidence,
        "floor_dim": pd.NA if worst is None else grid.dims[worst],
        "floor": floor,
        "floor_ratio": floor_ratio,
        "floor_tolerance": rule.floor_tolerance,
        "confidence": rule.confidence,
        "n_resamples": rule.n_resamples,
        "verdict": verdict,
        "control_ok": bool(rate_control_ok(check.role, check.expectation, verdict, floor_ratio)),
        "floor_reached": bool(rate_floor_reached(floor_ratio, rule.floor_tolerance)),
        "reason": reason,
    }
    slopes = [
        {
            "problem": check.problem,
            "method": check.method,
            "role": check.role,
            "K": steps,
            "scoring": scoring,
            "d": dim,
            "n_seeds": int(grid.values[i].shape[0]),
            "gap_t_max": float(gap_t_max[i]),
            "current_gap_t_max": float(grid.current[i]),
            "prev_T": layout.previous.label(),
            "slope_prev": float(judged.slope_prev[0, i]),
            "slope_prev_low": float(judged.prev_interval[0, i, 0]),
            "slope_prev_high": float(judged.prev_interval[0, i, 1]),
            "last_T": layout.last.label(),
            "slope_last": float(judged.slope_last[0, i]),
            "slope_last_low": float(judged.last_interval[0, i, 0]),
            "slope_last_high": float(judged.last_interval[0, i, 1]),
            "change": float(judged.change[0, i]),
            "change_low": float(judged.change_interval[0, i, 0]),
            "change_high": float(judged.change_interval[0, i, 1]),
            "t_limit": rule.t_limit,
            "settled": bool(judged.settled[0, i]),
            "steepening": bool(judged.steepening[0, i]),
            "floor": float(grid.floors[i]),
            "floor_ratio": float(grid.current[i] / grid.floors[i]),
            "average_floor_ratio": float(gap_t_max[i] / grid.floors[i]),
            "confidence": rule.steepening_confidence,
        }
        for i, dim in enumerate(grid.dims)
    ]
    calibration = []
    if check.role == "claim" and rule.calibration_replicates > 0:
        calibration = _calibration_rows(grid, layout, check, steps, scoring, rule)
    return row, slopes, calibration


def _synthetic_noise(
    factors: Sequence[FloatArray], rng: np.random.Generator, size: int, n_resamples: int
) -> tuple[FloatArray, FloatArray]:
    """Log seed-mean noise of ``size`` synthetic tables and of their bootstrap resamples.

    Args:
        factors: per d, the ``seeds x n_T`` measured factors ``R_seed / Rbar``.
        rng: draws the synthetic seeds (whole rows, within each d) and the resamples.
        size: synthetic tables.
        n_resamples: bootstrap resamples of each.

    Returns:
        ``size x n_d x n_T`` and ``size x n_resamples x n_d x n_T`` logs of seed means.
    """
    points, resamples = [], []
    for factor in factors:
        n = factor.shape[0]
        synthetic = rng.integers(0, n, size=(size, n))
        picks = rng.integers(0, n, size=(size, n_resamples, n))
        # A resample of a synthetic table is a multiset of measured seeds: count them, so
        # the means are one matrix product instead of a size x B x n x n_T gather.
        chosen = np.take_along_axis(synthetic[:, None, :], picks, axis=2).reshape(-1, n)
        offsets = (np.arange(chosen.shape[0]) * n)[:, None]
        counts = np.bincount((chosen + offsets).ravel(), minlength=chosen.size).reshape(-1, n)
        points.append(factor[synthetic].mean(axis=1))
        resamples.append((counts @ factor / n).reshape(size, n_resamples, -1))
    return np.log(np.stack(points, axis=1)), np.log(np.stack(resamples, axis=2))


def _calibration_rows(
    grid: _Grid, layout: _Layout, check: RateCheck, steps: int, scoring: str, rule: RateRule
) -> list[dict[str, object]]:
    """The share of each verdict on synthetic power laws with this check's seed noise."""
    factors = [values / values.mean(axis=0) for values in grid.values]
    log_t = np.log(np.asarray(grid.iterations, dtype=np.float64))
    log_d = np.log(np.asarray(grid.dims, dtype=np.float64))
    truths = [(a, b) for a in rule.calibration_t_exponents for b in rule.calibration_d_exponents]
    tallies = np.zeros((len(truths), len(RATE_VERDICTS)), dtype=np.int64)
    rng = derive_rng("rate-calibration", rule.seed, check.method, check.problem, steps, scoring)
    block = max(1, _CALIBRATION_BLOCK // rule.n_resamples)
    for start in range(0, rule.calibration_replicates, block):
        size = min(block, rule.calibration_replicates - start)
        noise = _Estimates.of(*_synthetic_noise(factors, rng, size, rule.n_resamples), layout, rule)
        for i, (a, b) in enumerate(truths):
            law = b * log_d[:, None] + a * log_t[None, :]  # log(d^b T^a), n_d x n_T
            judged = _judge(noise.plus(law, layout), layout, rule)
            tallies[i] += [int(np.sum(judged.verdict == verdict)) for verdict in RATE_VERDICTS]
    return [
        {
            "problem": check.problem,
            "method": check.method,
            "K": steps,
            "scoring": scoring,
            "n_seeds": int(min(values.shape[0] for values in grid.values)),
            "t_exponent": a,
            "d_exponent": b,
            "replicates": rule.calibration_replicates,
            **{
                CALIBRATION_SHARES[verdict]: count / rule.calibration_replicates
                for verdict, count in zip(RATE_VERDICTS, tally, strict=True)
            },
        }
        for (a, b), tally in zip(truths, tallies, strict=True)
    ]


@dataclass(frozen=True)
class RateResults:
    """Everything :func:`judge_rate_checks` decides, each table validated.

    Attributes:
        verdicts: one row per check and (K, scoring) setting
            (:data:`~casbo_bench.schemas.claims.VERDICT_COLUMNS`).
        local_slopes: one row per check, setting and d
            (:data:`~casbo_bench.schemas.claims.LOCAL_SLOPE_COLUMNS`).
        calibration: one row per claim, setting and pair of true exponents
            (:data:`~casbo_bench.schemas.claims.CALIBRATION_COLUMNS`; empty without claims or
            with ``calibration_replicates = 0``).
    """

    verdicts: pd.DataFrame
    local_slopes: pd.DataFrame
    calibration: pd.DataFrame


def judge_rate_checks(
    gaps: pd.DataFrame, checks: Sequence[RateCheck], rule: RateRule
) -> RateResults:
    """The verdict of every check, its local slopes per d, and the rule's calibration.

    Args:
        gaps: :func:`average_gaps` rows.
        checks: what to judge, in which role; each (method, problem) once.
        rule: the pre-registered rule.

    Returns:
        The three tables, rows in the order of ``checks``.

    Raises:
        RateCheckError: no checks, a check given twice, a check without gaps, or a grid
            the fit cannot use (fewer than two d or T, seeds missing some T).
    """
    if not checks:
        raise RateCheckError("give at least one rate check (method, problem, role)")
    named = [(check.method, check.problem) for check in checks]
    if len(set(named)) != len(named):
        raise RateCheckError("a rate check (method, problem) is given twice; give each once")
    verdicts: list[dict[str, object]] = []
    slopes: list[dict[str, object]] = []
    calibration: list[dict[str, object]] = []
    for check in checks:
        own = gaps[(gaps["method"] == check.method) & (gaps["problem"] == check.problem)]
        if own.empty:
            raise RateCheckError(
                f"rate check {check.method} on {check.problem}: no traces of that method and "
                f"problem were given; add them or drop the check"
            )
        for _, setting in own.groupby(["K", "scoring"], sort=True):
            row, rows, calibrated = _judge_check(setting, check, rule)
            verdicts.append(row)
            slopes += rows
            calibration += calibrated
    return RateResults(
        verdicts=validate_verdicts(_typed(verdicts, VERDICT_COLUMNS)),
        local_slopes=validate_local_slopes(_typed(slopes, LOCAL_SLOPE_COLUMNS)),
        calibration=validate_calibration(_typed(calibration, CALIBRATION_COLUMNS)),
    )


def rate_verdicts(gaps: pd.DataFrame, checks: Sequence[RateCheck], rule: RateRule) -> pd.DataFrame:
    """The verdicts alone of :func:`judge_rate_checks` (the calibration is not run)."""
    return judge_rate_checks(gaps, checks, replace(rule, calibration_replicates=0)).verdicts


def _typed(rows: list[dict[str, object]], columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(dict(columns))


def mean_gaps(gaps: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean ``R_T`` per check and (d, T): columns CHECK_KEYS, d, T, mean_gap, n_seeds."""
    grouped = gaps.groupby([*CHECK_KEYS, "d", "T"], sort=True)["gap"]
    return grouped.agg(mean_gap="mean", n_seeds="count").reset_index()


RATE_TABLE_HEADING = "Rate checks of the O(d^2/sqrt(T)) bound (rate_checks)"

RATE_TABLE_CAPTION = (
    "One row per check (method x problem family; K steps, {scoring} scoring). "
    "R_T = (1/T) sum_(t<=T) (J(theta_t) - J*) is measured exactly: J(theta_t) is the closed-form "
    "expected loss of the law that proposed batch t, so R_T does not depend on score "
    "normalization (CASBO itself z-scores the losses inside its update, its default). "
    "log R = c + a log T + b log d is fitted by least squares to the seed-mean R_T over the "
    "(d, T) grid; a_ucl and b_ucl are one-sided upper confidence limits from a seed bootstrap. "
    "Pre-registered rule: pass iff a_ucl <= -1/2 + T-tolerance, b_ucl <= 2 + d-tolerance, and "
    "R_T at the largest (d, T) is at most bound_factor times C d^2/sqrt(T), with C fitted at the "
    "smallest (d, T) only (bound_ratio is that multiple). A slack >= 0 means its condition "
    "holds (slack_bound in decades). Otherwise 'no positive evidence at this horizon' when only "
    "the T-exponent fails and every d whose slope of log R_T over the last decade of T is not "
    "settled at the T limit is still steepening (steepening_dims; the change from the decade "
    "before has its whole bootstrap interval below 0): not refuted, the horizon is too short "
    "to show the rate. 'fail' when some d has flattened above the limit (flat_dims), or the "
    "d-exponent or the bound fails. role: claim (the theorem's setting), control (a "
    "sampler that must fail: non-adaptive, or adapting the mean only, whose current gap "
    "J(theta_T) - J* at the largest T must end within the floor tolerance above its frozen-law "
    "floor, floor_ratio; or a non-convex problem "
    "expected to fail) or observation (reported, not judged); control_ok is false where a "
    "control misbehaved. Full rows with the limits, tolerances, C and the reasons: "
    "rate_checks/verdicts.csv."
)

LOCAL_SLOPE_HEADING = "Local slopes of log R_T per d (rate_checks/local_slopes.csv)"

LOCAL_SLOPE_CAPTION = (
    "Least-squares slope of log seed-mean R_T against log T over the grid points of the last "
    "decade of T (last_T) and of the decade before (prev_T), per check and d; change = "
    "slope_last - slope_prev. The _high columns are upper ends of two-sided {level:g} "
    "bootstrap intervals (same resamples as the global fit). settled: slope_last reaches the "
    "T limit; steepening: change < 0 with its whole interval below 0. floor_ratio: the current "
    "gap J(theta_T) - J* at the largest T over the frozen-law floor (mean-only controls; judged), "
    "average_floor_ratio: R_T there over it (reported). Intervals and lower ends: "
    "rate_checks/local_slopes.csv."
)

CALIBRATION_HEADING = "Calibration of the rule (rate_checks/calibration.csv)"

CALIBRATION_CAPTION = (
    "Share of each verdict when the pre-registered rule, bootstrap included, judges synthetic "
    "gaps R = d^d_exponent T^t_exponent times a claim's own measured seed factors "
    "R_seed/Rbar (whole rows of T drawn per d, same d and T grid and seed counts), replicates "
    "tables per pair of true exponents. A sound rule passes t_exponent <= -0.5 with "
    "d_exponent <= 2 often and t_exponent > -0.5 or d_exponent > 2 rarely."
)


def rate_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The compact verdict table of ``tables/rate_checks.*`` (:data:`RATE_TABLE_COLUMNS`)."""
    return verdicts[list(RATE_TABLE_COLUMNS)].reset_index(drop=True)


def write_rate_outputs(
    results: RateResults,
    gaps: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    table_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Validate and write ``verdicts.csv``, ``local_slopes.csv``, ``calibration.csv`` and
    ``gaps.csv``, and the table if asked.

    Args:
        results: :func:`judge_rate_checks` tables.
        gaps: :func:`average_gaps` rows.
        out_dir: the folder of the four CSV files.
        table_dir: the folder of ``rate_checks.csv``, ``.md``, ``.html`` and ``.tex`` (none
            if None): the compact verdicts, and in ``.md``, ``.html`` and ``.tex`` the local
            slopes and the calibration too (``.md`` and ``.html`` also the reasons).

    Returns:
        The written paths. Nothing is written unless every frame passes its schema.
    """
    verdicts = validate_verdicts(results.verdicts)
    local_slopes = validate_local_slopes(results.local_slopes)
    calibration = validate_calibration(results.calibration)
    validate_gaps(gaps)
    out = Path(out_dir)
    documents: dict[Path, str] = {
        out / "verdicts.csv": verdicts.to_csv(index=False, lineterminator="\n"),
        out / "local_slopes.csv": local_slopes.to_csv(index=False, lineterminator="\n"),
        out / "calibration.csv": calibration.to_csv(index=False, lineterminator="\n"),
        out / "gaps.csv": gaps.to_csv(index=False, lineterminator="\n"),
    }
    if table_dir is not None:
        scorings = ", ".join(sorted(set(verdicts["scoring"])))
        levels = sorted(set(local_slopes["confidence"])) or [float("nan")]
        parts = [
            (rate_table(verdicts), RATE_TABLE_HEADING, RATE_TABLE_CAPTION.format(scoring=scorings)),
            (
                local_slopes[list(LOCAL_SLOPE_TABLE_COLUMNS)].reset_index(drop=True),
                LOCAL_SLOPE_HEADING,
                LOCAL_SLOPE_CAPTION.format(level=levels[0]),
            ),
            (
                calibration[list(CALIBRATION_TABLE_COLUMNS)].reset_index(drop=True),
                CALIBRATION_HEADING,
                CALIBRATION_CAPTION,
            ),
        ]
        # Sections after the first go one heading level down ("## ...").
        markdown = [("#" if i else "") + markdown_document(*part) for i, part in enumerate(parts)]
        reasons = "\n".join(
            f"- {row.method} on {row.problem} ({row.role}): {row.verdict}: {row.reason}"
            for row in verdicts.itertuples(index=False)
        )
        tables = Path(table_dir)
        documents[tables / "rate_checks.csv"] = rate_table(verdicts).to_csv(
            index=False, lineterminator="\n"
        )
        document = "\n".join([*markdown, f"## Reasons\n\n{reasons}\n"])
        documents[tables / "rate_checks.md"] = document
        documents[tables / "rate_checks.html"] = html_document(document)
        documents[tables / "rate_checks.tex"] = "\\par\\medskip\n".join(
            latex_table(*part) for part in parts
        )
    return write_all_or_nothing(documents)


def read_verdicts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``verdicts.csv`` back and validate it.

    Raises:
        FileNotFoundError: no file at ``path``.
        ClaimsValidationError: it fails the verdict schema.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"rate verdicts {source} do not exist; run 'casbo-bench rates'")
    return validate_verdicts(read_typed_csv(source, VERDICT_COLUMNS), source=str(source))


def read_typed_csv(path: Path, columns: Mapping[str, str]) -> pd.DataFrame:
    """A CSV written by this package, read back with the dtypes of ``columns``.

    Text columns may hold "" (no variant, no reason): they are read as text, never as
    missing values, so an all-empty text column keeps its string dtype; an empty numeric
    cell is missing (a nullable integer such as the ``d`` of an overall ledger row).
    """
    text = {column: "str" for column, kind in columns.items() if kind == "str"}
    missing = {column: [""] for column in columns if column not in text}
    frame = pd.read_csv(path, keep_default_na=False, na_values=missing, dtype=text)
    return frame.astype(dict(columns))
