"""The d^2/sqrt(T) rate check: average optimality gaps, a log-log fit, a one-sided verdict.

The paper proves ``O(d^2 / sqrt(T))`` convergence of CASBO for cumulative convex functions
with the decaying step ``beta_t = beta_0 / sqrt(t)``. This module tests that claim on traces
that recorded the exact objective (``casbo-bench run --record-expected-loss``), following
docs/method.md section 6. Read :func:`average_gaps`, then :func:`rate_verdicts`.

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
losses inside its update by default).

The fit. Over the grid of ``d`` and ``T``, the seed-mean gap ``Rbar(d, T)`` is fitted by
least squares in logs,

    log Rbar = c + a log T + b log d,

and the seeds are bootstrapped (resampled with replacement within each d, since every d
holds its own independent instances, ``n_resamples`` times, with a generator derived from
the rule's seed and the check) to give one-sided upper confidence limits ``a_ucl`` and
``b_ucl`` (the ``confidence`` quantile of the bootstrap exponents).

The verdict (pre-registered: tolerances and factor are fixed in config before any run). A
bound ``R_T <= C d^2 / sqrt(T)`` with a free ``C`` can be met on any finite grid, so a pass
needs positive evidence for the shape, all three of:

1. ``a_ucl <= -1/2 + t_tolerance`` (the gap decays at least like ``T^{-1/2}``);
2. ``b_ucl <= 2 + d_tolerance`` (it grows at most like ``d^2``);
3. out of sample: ``C = Rbar(d_min, T_min) / (d_min^2 / sqrt(T_min))``, fitted at the
   smallest d and T only, still bounds the largest: ``Rbar(d_max, T_max) <= factor * C
   d_max^2 / sqrt(T_max)``.

Each condition has a *slack* that is >= 0 exactly when it holds: ``slack_t = a_limit -
a_ucl``, ``slack_d = b_limit - b_ucl`` and ``slack_bound = log10(factor / bound_ratio)``
(decades of room), with ``bound_ratio = Rbar(d_max, T_max) / (C d_max^2 / sqrt(T_max))``.

Every verdict row carries a *role*: ``claim`` (the paper's setting: CASBO with the decaying
step on a convex problem), ``control`` (a non-adaptive sampler, which must fail, or a
non-convex problem, which is expected to fail) or ``observation`` (reported, not judged,
e.g. a constant step). Its *expectation* says what a sound check should give:
``pass``, ``must-fail`` (a pass means the check is broken), ``may-fail`` or ``none``.

>>> gaps = average_gaps(load_traces(paths), [3, 10, 30, 100, 300])  # doctest: +SKIP
>>> rule = RateRule(t_tolerance=0.1, d_tolerance=0.25, bound_factor=2.0)  # doctest: +SKIP
>>> rate_verdicts(gaps, [RateCheck("casbo-decay", "sphere", "claim")], rule)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from casbo_bench.analysis.io import read_trace
from casbo_bench.analysis.tables import to_latex, to_markdown, write_documents
from casbo_bench.schemas.claims import (
    EXPECTATIONS,
    GAP_COLUMNS,
    ROLES,
    VERDICT_COLUMNS,
    validate_gaps,
    validate_verdicts,
)
from casbo_bench.schemas.trace import RUN_KEYS
from casbo_bench.seeding import derive_rng

FloatArray = NDArray[np.float64]

OptimalLoss = Callable[[str, int, int, str, int], float]
"""``optimal_loss(problem, d, K, scoring, seed) -> J*`` of the instance a run met."""

CHECK_KEYS: tuple[str, ...] = ("method", "problem", "K", "scoring")
"""The columns that name one rate check: one method on one problem family and setting."""

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
    "C",
    "bound_ratio",
    "slack_t",
    "slack_d",
    "slack_bound",
    "verdict",
)
"""The columns of ``tables/rate_checks.*`` (the full rows are in ``verdicts.csv``)."""


class RateCheckError(ValueError):
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
        seed: the seed the bootstrap generators are derived from.
        t_exponent: the bound's exponent of T (the theorem's: -1/2).
        d_exponent: the bound's exponent of d (the theorem's: 2).
    """

    t_tolerance: float
    d_tolerance: float
    bound_factor: float
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    t_exponent: float = -0.5
    d_exponent: float = 2.0

    def __post_init__(self) -> None:
        for name in ("t_tolerance", "d_tolerance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise RateCheckError(f"{name} must be a finite number >= 0; got {value!r}")
        if not (math.isfinite(self.bound_factor) and self.bound_factor >= 1):
            raise RateCheckError(
                f"bound_factor must be a finite number >= 1 (1: no room above the bound); "
                f"got {self.bound_factor!r}"
            )
        if not 0.5 <= self.confidence < 1:
            raise RateCheckError(
                f"confidence must lie in [0.5, 1) (one-sided upper limits); got {self.confidence}"
            )
        if self.n_resamples < 100:
            raise RateCheckError(
                f"n_resamples must be >= 100 for a percentile limit; got {self.n_resamples}"
            )
        if self.seed < 0:
            raise RateCheckError(f"seed must be >= 0; got {self.seed}")

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


def _describe_run(run: Sequence[object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in zip(RUN_KEYS, run, strict=True))


def _check_iterations(iterations: Sequence[int]) -> list[int]:
    grid = [int(t) for t in iterations]
    if len(grid) < 2 or any(t < 1 for t in grid) or len(set(grid)) != len(grid):
        raise RateCheckError(
            f"the T grid needs at least two distinct iteration counts >= 1; got {list(iterations)}"
        )
    return sorted(grid)


def zero_optimal_loss(problem: str, d: int, steps: int, scoring: str, seed: int) -> float:
    """``J* = 0``: the infimum of every test-function chain problem (``ChainProblem``)."""
    return 0.0


def average_gaps(
    traces: pd.DataFrame,
    iterations: Sequence[int],
    optimal_loss: OptimalLoss = zero_optimal_loss,
) -> pd.DataFrame:
    """The average gap ``R_T`` of every run at every ``T`` of the grid.

    Args:
        traces: validated traces (:func:`casbo_bench.analysis.io.load_traces`) whose runs
            recorded ``expected_loss`` for at least ``max(iterations)`` iterations.
        iterations: the T grid (iteration counts; e.g. 3, 10, 30, 100, 300).
        optimal_loss: ``J*`` of the instance of a run, from its problem, d, K, scoring and
            repetition seed (the command line reads it off the problem; 0 by default, the
            infimum of every test-function problem).

    Returns:
        One row per run and T (columns :data:`casbo_bench.schemas.claims.GAP_COLUMNS`):
        the run keys, ``T``, ``gap`` (``R_T``) and ``optimal_loss``; validated.

    Raises:
        RateCheckError: a run did not record ``expected_loss``, has fewer than
            ``max(iterations)`` iterations, or has ``J(theta_t) < J*`` (a wrong J*), or an
            average gap is 0 (its logarithm is needed).
    """
    grid = _check_iterations(iterations)
    horizon = grid[-1]
    if traces.empty:
        raise RateCheckError("there are no traces to measure rates on")
    firsts = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable").drop_duplicates(
        [*RUN_KEYS, "iteration"]
    )
    rows: list[pd.DataFrame] = []
    for run, frame in firsts.groupby(list(RUN_KEYS), sort=True):
        _, problem, d, steps, scoring, seed = cast(tuple[str, str, int, int, str, int], run)
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
        best = float(optimal_loss(str(problem), int(d), int(steps), str(scoring), int(seed)))
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
                f"loss given for its problem is wrong"
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
                    "optimal_loss": best,
                }
            )
        )
    gaps = pd.concat(rows, ignore_index=True).astype(GAP_COLUMNS)
    return validate_gaps(gaps[list(GAP_COLUMNS)])


def average_gaps_of_files(
    paths: Sequence[str | os.PathLike[str]],
    iterations: Sequence[int],
    optimal_loss: OptimalLoss = zero_optimal_loss,
) -> pd.DataFrame:
    """:func:`average_gaps` of trace files, read and reduced one file at a time.

    A rate-check run records every evaluation of thousands of iterations, so the traces of
    a full check would not fit in memory together; only their gaps are kept. A run found in
    two files fails the gap schema's uniqueness check.

    Raises:
        RateCheckError: as :func:`average_gaps`, naming the file.
        TraceValidationError: a file is unreadable or fails the trace schema.
    """
    if not paths:
        raise RateCheckError("give at least one trace file")
    frames = []
    for path in paths:
        try:
            frames.append(average_gaps(read_trace(path), iterations, optimal_loss))
        except RateCheckError as error:
            raise RateCheckError(f"{path}: {error}") from None
    return validate_gaps(pd.concat(frames, ignore_index=True))


def _design(iterations: FloatArray, dims: FloatArray) -> FloatArray:
    return np.column_stack([np.ones_like(iterations), np.log(iterations), np.log(dims)])


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
    """One check's gaps arranged by d: ``values[i]`` is a ``seeds_i x T`` array at ``dims[i]``."""

    dims: list[int]
    iterations: list[int]
    values: list[FloatArray]

    @classmethod
    def of(cls, gaps: pd.DataFrame, label: str) -> _Grid:
        iterations = sorted(int(t) for t in gaps["T"].unique())
        dims: list[int] = []
        values: list[FloatArray] = []
        for d in sorted(int(d) for d in gaps["d"].unique()):
            table = gaps[gaps["d"] == d].pivot(index="seed", columns="T", values="gap")
            if list(table.columns) != iterations or table.isna().to_numpy().any():
                raise RateCheckError(
                    f"{label}: at d={d} some seeds lack some T of the grid {iterations}; every "
                    f"run must cover the whole grid"
                )
            dims.append(d)
            values.append(table.to_numpy(dtype=np.float64))
        return cls(dims, iterations, values)

    def points(self) -> tuple[FloatArray, FloatArray]:
        """T and d of every (d, T) cell, d-major: two ``n_d * n_T`` arrays."""
        t = np.tile(np.asarray(self.iterations, dtype=np.float64), len(self.dims))
        d = np.repeat(np.asarray(self.dims, dtype=np.float64), len(self.iterations))
        return t, d

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
    t, d = grid.points()
    design = _design(t, d)
    responses = np.log(grid.bootstrap_means(rng, n_resamples))  # n_resamples x n_points
    coefficients, *_ = np.linalg.lstsq(design, responses.T, rcond=None)
    return np.asarray(coefficients.T, dtype=np.float64)


def _verdict_row(gaps: pd.DataFrame, check: RateCheck, rule: RateRule) -> dict[str, object]:
    """The verdict of one check on one (K, scoring) setting."""
    steps, scoring = int(gaps["K"].iloc[0]), str(gaps["scoring"].iloc[0])
    label = f"rate check {check.method} on {check.problem} (K={steps}, {scoring})"
    grid = _Grid.of(gaps, label)
    if len(grid.dims) < 2 or len(grid.iterations) < 2:
        raise RateCheckError(
            f"{label}: the fit needs at least two d and two T; got d {grid.dims} and T "
            f"{grid.iterations}"
        )
    t, d = grid.points()
    means = grid.means()
    fit = fit_power_law(t, d, means)
    rng = derive_rng("rate-bootstrap", rule.seed, check.method, check.problem, steps, scoring)
    resampled = bootstrap_exponents(gaps, rng, rule.n_resamples)
    a_ucl, b_ucl = np.quantile(resampled[:, 1:], rule.confidence, axis=0)

    d_min, d_max = grid.dims[0], grid.dims[-1]
    t_min, t_max = grid.iterations[0], grid.iterations[-1]
    constant = float(means[0] / rule.shape(d_min, t_min))
    bound_ratio = float(means[-1] / (constant * rule.shape(d_max, t_max)))

    slack_t = rule.t_limit - float(a_ucl)
    slack_d = rule.d_limit - float(b_ucl)
    slack_bound = math.log10(rule.bound_factor / bound_ratio)
    failed = []
    if slack_t < 0:
        failed.append(f"T-exponent upper limit {a_ucl:.3g} > {rule.t_limit:.3g}")
    if slack_d < 0:
        failed.append(f"d-exponent upper limit {b_ucl:.3g} > {rule.d_limit:.3g}")
    if slack_bound < 0:
        failed.append(
            f"R_T at (d={d_max}, T={t_max}) is {bound_ratio:.3g}x the bound C d^2/sqrt(T) "
            f"fitted at (d={d_min}, T={t_min}) (> {rule.bound_factor:g})"
        )
    if failed:
        reason = "; ".join(failed)
    else:
        reason = (
            f"all three hold: T-exponent upper limit {a_ucl:.3g} <= {rule.t_limit:.3g}, d-exponent "
            f"upper limit {b_ucl:.3g} <= {rule.d_limit:.3g}, R_T at (d={d_max}, T={t_max}) "
            f"is {bound_ratio:.3g}x the bound fitted at (d={d_min}, T={t_min}) "
            f"(<= {rule.bound_factor:g})"
        )
    return {
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
        "a_ucl": float(a_ucl),
        "a_limit": rule.t_limit,
        "slack_t": slack_t,
        "b_hat": fit.d_exponent,
        "b_ucl": float(b_ucl),
        "b_limit": rule.d_limit,
        "slack_d": slack_d,
        "intercept": fit.intercept,
        "r_squared": fit.r_squared,
        "C": constant,
        "bound_ratio": bound_ratio,
        "bound_factor": rule.bound_factor,
        "slack_bound": slack_bound,
        "confidence": rule.confidence,
        "n_resamples": rule.n_resamples,
        "verdict": "fail" if failed else "pass",
        "reason": reason,
    }


def rate_verdicts(gaps: pd.DataFrame, checks: Sequence[RateCheck], rule: RateRule) -> pd.DataFrame:
    """The verdict of every check, one row per check and (K, scoring) setting it covers.

    Args:
        gaps: :func:`average_gaps` rows.
        checks: what to judge, in which role; each (method, problem) once.
        rule: the pre-registered rule.

    Returns:
        The verdicts (columns :data:`casbo_bench.schemas.claims.VERDICT_COLUMNS`), in the
        order of ``checks``; validated.

    Raises:
        RateCheckError: no checks, a check given twice, a check without gaps, or a grid
            the fit cannot use (fewer than two d or T, seeds missing some T).
    """
    if not checks:
        raise RateCheckError("give at least one rate check (method, problem, role)")
    named = [(check.method, check.problem) for check in checks]
    if len(set(named)) != len(named):
        raise RateCheckError("a rate check (method, problem) is given twice; give each once")
    rows: list[dict[str, object]] = []
    for check in checks:
        own = gaps[(gaps["method"] == check.method) & (gaps["problem"] == check.problem)]
        if own.empty:
            raise RateCheckError(
                f"rate check {check.method} on {check.problem}: no traces of that method and "
                f"problem were given; add them or drop the check"
            )
        for _, setting in own.groupby(["K", "scoring"], sort=True):
            rows.append(_verdict_row(setting, check, rule))
    verdicts = pd.DataFrame(rows, columns=list(VERDICT_COLUMNS)).astype(VERDICT_COLUMNS)
    return validate_verdicts(verdicts)


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
    "holds (slack_bound in decades). role: claim (the theorem's setting), control (a "
    "non-adaptive sampler that must fail; a non-convex problem expected to fail) or "
    "observation (reported, not judged). Full rows with the limits, tolerances, C and the "
    "reasons: rate_checks/verdicts.csv."
)


def rate_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The compact verdict table of ``tables/rate_checks.*`` (:data:`RATE_TABLE_COLUMNS`)."""
    return verdicts[list(RATE_TABLE_COLUMNS)].reset_index(drop=True)


def write_rate_outputs(
    verdicts: pd.DataFrame,
    gaps: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    table_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Validate and write ``verdicts.csv`` and ``gaps.csv``, and the table if asked.

    Args:
        verdicts: :func:`rate_verdicts` rows.
        gaps: :func:`average_gaps` rows.
        out_dir: the folder of ``verdicts.csv`` and ``gaps.csv``.
        table_dir: the folder of ``rate_checks.csv``, ``.md`` and ``.tex`` (none if None).

    Returns:
        The written paths. Nothing is written unless both frames pass their schemas.
    """
    validate_verdicts(verdicts)
    validate_gaps(gaps)
    out = Path(out_dir)
    documents: dict[Path, str] = {
        out / "verdicts.csv": verdicts.to_csv(index=False, lineterminator="\n"),
        out / "gaps.csv": gaps.to_csv(index=False, lineterminator="\n"),
    }
    if table_dir is not None:
        table = rate_table(verdicts)
        scorings = ", ".join(sorted(set(verdicts["scoring"])))
        caption = RATE_TABLE_CAPTION.format(scoring=scorings)
        tables = Path(table_dir)
        documents[tables / "rate_checks.csv"] = table.to_csv(index=False, lineterminator="\n")
        markdown = to_markdown(table, RATE_TABLE_HEADING, caption)
        reasons = "\n".join(
            f"- {row.method} on {row.problem} ({row.role}): {row.reason}"
            for row in verdicts.itertuples(index=False)
        )
        documents[tables / "rate_checks.md"] = f"{markdown}\n## Reasons\n\n{reasons}\n"
        documents[tables / "rate_checks.tex"] = to_latex(table, RATE_TABLE_HEADING, caption)
    return write_documents(documents)


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
