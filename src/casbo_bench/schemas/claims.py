"""Schemas of the rate check's tables and of the claims ledger, checked before writing.

- ``gaps``: one row per run and T: the average optimality gap ``R_T``
  (``analysis.rates.average_gaps``).
- ``verdicts``: one row per rate check (method x problem x K x scoring): fitted exponents,
  their upper confidence limits, the out-of-sample constant, the slacks, the d still
  steepening or flat, the frozen-law floor, the verdict (:data:`RATE_VERDICTS`, decided by
  :func:`rate_verdict`) and ``control_ok`` (:func:`rate_control_ok`)
  (``analysis.rates.judge_rate_checks``); written as
  ``rate_checks/verdicts.csv``.
- ``local_slopes``: one row per rate check and d: the slopes of log R_T over the last two
  decades of T with bootstrap intervals, whether the slope is still steepening, the floor
  ratio; ``rate_checks/local_slopes.csv``.
- ``calibration``: the share of each rate verdict on synthetic power laws with a claim's own
  seed noise, per true pair of exponents; ``rate_checks/calibration.csv``.
- ``claims``: the ledger, one overall row per claim record (id and scope) and method (the
  config's or a robustness variant of CASBO) and one row per cell the verdict is computed
  from (``analysis.claims.build_ledger``); written as ``claims.csv``. Each
  secondary budget L adds the columns ``evaluations_L``, ``p_value_L``, ``p_holm_L``,
  ``effect_L`` and ``verdict_L`` after ``verdict`` (:func:`claim_columns`). A variant's row
  carries CASBO's verdict on the same cells (``reference_verdict``) and is ``flipped`` when
  the two differ.

Beyond dtypes and ranges the schemas check what must hold between columns: a pass exactly
when every slack is >= 0, each slack equal to its limit minus its upper limit; a
"reproduced" cell only with p_holm < alpha and effect >= min_effect, a "contradicted" one
only with p_holm < alpha and effect <= -min_effect, a "not-significant" one with neither;
no reproduced claim with a contradicted cell nor the reverse; one source, sentence and kind
per claim record; one overall row per claim record and method; one rule hash per ledger.

>>> validate_verdicts(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from numpy.typing import ArrayLike, NDArray

from casbo_bench.errors import UserFacingError
from casbo_bench.registration import KINDS, SCOPES, SOURCES
from casbo_bench.schemas.checks import validate_frame
from casbo_bench.schemas.tables import (
    _count,
    _finite,
    _key_columns,
    _non_negative,
    _probability,
    _real,
    _rows,
    _unique,
)
from casbo_bench.schemas.trace import NON_EMPTY, RUN_KEYS

ROLES: tuple[str, ...] = ("claim", "control", "observation")
"""Roles of a rate check: the paper's setting, a control, or a reported observation."""

EXPECTATIONS: tuple[str, ...] = ("pass", "must-fail", "may-fail", "none")
"""What a sound rate check gives: a claim should pass; a non-adaptive control must fail (a
pass means the check is broken); a non-convex control may fail; observations expect nothing."""

RATE_PASS = "pass"
RATE_NO_EVIDENCE = "no positive evidence at this horizon"
RATE_FAIL = "fail"

FLOOR_ROUND_OFF = 1e-9
"""How far below its frozen-law floor a control's gap may lie by round-off alone."""

RATE_VERDICTS: tuple[str, ...] = (RATE_PASS, RATE_NO_EVIDENCE, RATE_FAIL)
"""Verdicts of a rate check (:func:`rate_verdict`): positive evidence for the bound's shape;
none yet, but the local slopes are still steepening toward it; or refuted on this grid."""

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
NOT_SIGNIFICANT = "not-significant"
MIXED = "mixed"
INCONCLUSIVE = "inconclusive"

CELL_VERDICTS: tuple[str, ...] = (REPRODUCED, CONTRADICTED, NOT_SIGNIFICANT, INCONCLUSIVE)
"""Verdicts of a cell: the method significantly better, the baseline significantly better,
neither, or too few paired seeds (or a run missing) to test."""

CLAIM_VERDICTS: tuple[str, ...] = (REPRODUCED, CONTRADICTED, MIXED, INCONCLUSIVE)
"""Verdicts of a claim record over its cells (analysis.claims)."""

VERDICTS: tuple[str, ...] = tuple(dict.fromkeys([*CELL_VERDICTS, *CLAIM_VERDICTS]))
"""Every verdict a ledger row may carry."""

ROWS: tuple[str, ...] = ("overall", "cell")
"""A ledger row is a claim record's overall verdict or one of its cells."""

GAP_COLUMNS: dict[str, str] = {
    **{key: ("int64" if key in ("d", "K", "seed") else "str") for key in RUN_KEYS},
    "T": "int64",
    "gap": "float64",
    "current_gap": "float64",
    "optimal_loss": "float64",
    "floor": "float64",
}
"""Column -> dtype of the ``gaps`` table, in the order written. ``gap`` is the average gap
``R_T``, ``current_gap`` the gap ``J(theta_T) - J*`` of iteration T alone, ``floor`` the run's
frozen-law floor above J* (NaN: none recorded, the method adapts its covariance)."""

VERDICT_COLUMNS: dict[str, str] = {
    "problem": "str",
    "method": "str",
    "variant_of": "str",
    "role": "str",
    "expectation": "str",
    "K": "int64",
    "scoring": "str",
    "dims": "str",
    "iterations": "str",
    "n_seeds": "int64",
    "n_points": "int64",
    "a_hat": "float64",
    "a_ucl": "float64",
    "a_limit": "float64",
    "slack_t": "float64",
    "b_hat": "float64",
    "b_ucl": "float64",
    "b_limit": "float64",
    "slack_d": "float64",
    "intercept": "float64",
    "r_squared": "float64",
    "C": "float64",
    "bound_ratio": "float64",
    "bound_factor": "float64",
    "slack_bound": "float64",
    "steepening_dims": "str",
    "flat_dims": "str",
    "steepening_confidence": "float64",
    "floor_dim": "Int64",
    "floor": "float64",
    "floor_ratio": "float64",
    "floor_tolerance": "float64",
    "confidence": "float64",
    "n_resamples": "int64",
    "verdict": "str",
    "control_ok": "bool",
    "floor_reached": "bool",
    "reason": "str",
}
"""Column -> dtype of ``rate_checks/verdicts.csv``, in the order written. ``steepening_dims``
and ``flat_dims`` list the d (comma-separated, "" for none) whose last-decade slope is still
steepening, and whose slope misses the T limit without steepening; ``floor_dim`` is the d
whose floor ratio lies farthest outside [1, 1 + floor_tolerance] (missing: no floor)."""

LOCAL_SLOPE_COLUMNS: dict[str, str] = {
    "problem": "str",
    "method": "str",
    "role": "str",
    "K": "int64",
    "scoring": "str",
    "d": "int64",
    "n_seeds": "int64",
    "gap_t_max": "float64",
    "current_gap_t_max": "float64",
    "prev_T": "str",
    "slope_prev": "float64",
    "slope_prev_low": "float64",
    "slope_prev_high": "float64",
    "last_T": "str",
    "slope_last": "float64",
    "slope_last_low": "float64",
    "slope_last_high": "float64",
    "change": "float64",
    "change_low": "float64",
    "change_high": "float64",
    "t_limit": "float64",
    "settled": "bool",
    "steepening": "bool",
    "floor": "float64",
    "floor_ratio": "float64",
    "average_floor_ratio": "float64",
    "confidence": "float64",
}
"""Column -> dtype of ``rate_checks/local_slopes.csv`` (one row per check and d), in order.
``prev_T`` and ``last_T`` list the grid points of the two decades ("" and missing slopes
where a decade holds fewer than two); ``_low``/``_high`` bound two-sided intervals."""

CALIBRATION_SHARES: dict[str, str] = {
    RATE_PASS: "share_pass",
    RATE_NO_EVIDENCE: "share_no_evidence",
    RATE_FAIL: "share_fail",
}
"""The calibration table's column of the share of each rate verdict."""

CALIBRATION_COLUMNS: dict[str, str] = {
    "problem": "str",
    "method": "str",
    "K": "int64",
    "scoring": "str",
    "n_seeds": "int64",
    "t_exponent": "float64",
    "d_exponent": "float64",
    "replicates": "int64",
    **{share: "float64" for share in CALIBRATION_SHARES.values()},
}
"""Column -> dtype of ``rate_checks/calibration.csv`` (one row per claim and true exponents)."""

CLAIM_COLUMNS: dict[str, str] = {
    "claim_id": "str",
    "scope": "str",
    "source": "str",
    "kind": "str",
    "claim": "str",
    "row": "str",
    "method": "str",
    "variant_of": "str",
    "baseline": "str",
    "group": "str",
    "problem": "str",
    "d": "Int64",
    "K": "Int64",
    "scoring": "str",
    "evaluations": "Int64",
    "n_seeds": "Int64",
    "test": "str",
    "p_value": "float64",
    "p_holm": "float64",
    "effect": "float64",
    "verdict": "str",
    "reference_verdict": "str",
    "flipped": "bool",
    "reason": "str",
    "note": "str",
    "evidence": "str",
    "config": "str",
    "alpha": "float64",
    "min_seeds": "int64",
    "min_effect": "float64",
    "rule_hash": "str",
}
"""Column -> dtype of ``claims.csv`` without secondary budgets, in the order written (Int64:
may be missing). ``scope`` is the claim record's (casbo_bench.registration.SCOPES), ``row``
says whether the row is the record's overall verdict or one of its cells."""

CELL_IDENTITY: tuple[str, ...] = (
    "claim_id",
    "scope",
    "method",
    "baseline",
    "group",
    "problem",
    "d",
    "K",
    "scoring",
)
"""The columns that name a ledger cell: its claim record, the comparison and the setting."""

SECONDARY_COLUMNS: dict[str, str] = {
    "evaluations": "Int64",
    "p_value": "float64",
    "p_holm": "float64",
    "effect": "float64",
    "verdict": "str",
}
"""The columns each secondary budget L repeats as ``<column>_L``, right after ``verdict``."""

_SECONDARY_VERDICT = re.compile(r"verdict_(.+)")


def claim_columns(secondary: Sequence[str] = ()) -> dict[str, str]:
    """Column -> dtype of a ledger with the secondary budgets labelled ``secondary``.

    >>> list(claim_columns(["10d"]))[20:26]
    ['verdict', 'evaluations_10d', 'p_value_10d', 'p_holm_10d', 'effect_10d', 'verdict_10d']
    """
    columns: dict[str, str] = {}
    for name, kind in CLAIM_COLUMNS.items():
        columns[name] = kind
        if name == "verdict":
            for label in secondary:
                columns.update(
                    {f"{key}_{label}": dtype for key, dtype in SECONDARY_COLUMNS.items()}
                )
    return columns


def secondary_labels(columns: Iterable[str]) -> tuple[str, ...]:
    """The secondary budget labels of a ledger's columns (``verdict_10d`` -> ``10d``)."""
    found = (_SECONDARY_VERDICT.fullmatch(str(column)) for column in columns)
    return tuple(match.group(1) for match in found if match is not None)


class ClaimsValidationError(UserFacingError, ValueError):
    """A rate-check table or the ledger failed its schema; the message names every check."""


def _one_of(values: tuple[str, ...]) -> pa.Check:
    return pa.Check.isin(list(values), error=f"must be one of {', '.join(values)}")


_dim_list = pa.Check.str_matches(r"^(\d+(,\d+)*)?$", error="must list d, comma-separated, or be ''")
_t_list = pa.Check.str_matches(r"^(\d+(,\d+)*)?$", error="must list T, comma-separated, or be ''")
_level = pa.Check.in_range(0.5, 1.0, True, False, error="must lie in [0.5, 1)")


def _slack_matches(slack: str, limit: str, upper: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(
            np.isclose(frame[slack], frame[limit] - frame[upper], rtol=1e-9, atol=1e-12),
            index=frame.index,
        )

    return _rows([slack, limit, upper], rule, f"{slack} must equal {limit} - {upper}")


def rate_verdict(
    slack_t: ArrayLike,
    slack_d: ArrayLike,
    slack_bound: ArrayLike,
    any_flat: ArrayLike,
) -> NDArray[np.str_]:
    """The pre-registered rate verdict from its ingredients, elementwise (the one place it is
    decided; ``analysis.rates`` and the verdict schema both call it).

    - ``pass``: every slack >= 0 (the T- and d-exponents' upper limits and the out-of-sample
      bound all hold);
    - ``no positive evidence at this horizon``: only the T-exponent fails, the out-of-sample
      bound and the d-exponent hold, and no d is *flat*: every d is settled at the T limit
      over the last decade (its interval's upper end there) or still steepening, so the decay
      reaches or is still speeding up toward the rate where the grid ends; the horizon is too
      short to show it in the global fit, which is not a refutation;
    - ``fail``: otherwise (a failing d-exponent or bound, or a slope that stopped steepening
      above the limit).

    Args:
        slack_t, slack_d, slack_bound: the slacks (>= 0 exactly when a condition holds).
        any_flat: whether some d is flat (neither settled nor still steepening).

    Returns:
        An array of :data:`RATE_VERDICTS`, of the inputs' broadcast shape.

    >>> str(rate_verdict(-0.1, 0.2, 0.3, False))
    'no positive evidence at this horizon'
    """
    t, d, bound = (np.asarray(slack, dtype=np.float64) for slack in (slack_t, slack_d, slack_bound))
    flat = np.asarray(any_flat, dtype=bool)
    holds = (t >= 0) & (d >= 0) & (bound >= 0)
    excused = (bound >= 0) & (d >= 0) & ~flat
    return np.select([holds, excused], [RATE_PASS, RATE_NO_EVIDENCE], RATE_FAIL)


def rate_control_ok(
    role: ArrayLike,
    expectation: ArrayLike,
    verdict: ArrayLike,
    floor_ratio: ArrayLike,
) -> NDArray[np.bool_]:
    """Whether a rate check's control behaved, elementwise (True for every non-control).

    A control misbehaves when it must fail and did not (a pass, or no positive evidence: the
    check cannot tell adaptation from none, or excuses a method known not to converge), or
    when it has a frozen-law floor and its current gap ``J(theta_T) - J*`` at the
    largest T lies below that floor (``floor_ratio < 1``: no law of its kind goes there, so the
    recorded floor is wrong). A control still above its floor has not finished converging to
    it: :func:`rate_floor_reached` reports that, and it leaves the control failing the check
    more easily, never passing it.
    """
    ratio = np.asarray(floor_ratio, dtype=np.float64)
    broken = (np.asarray(expectation) == "must-fail") & (np.asarray(verdict) != RATE_FAIL)
    floored = (np.asarray(role) == "control") & ~np.isnan(ratio)
    below = ratio < 1.0 - FLOOR_ROUND_OFF
    return np.asarray(~broken & ~(floored & below), dtype=bool)


def rate_floor_reached(floor_ratio: ArrayLike, floor_tolerance: ArrayLike) -> NDArray[np.bool_]:
    """Whether a floor control's current gap has come within ``[1, 1 + floor_tolerance]``
    times its frozen-law floor at every d (``floor_ratio`` is the d farthest from that band;
    False where there is no floor, which the ``floor`` column shows as missing)."""
    ratio = np.asarray(floor_ratio, dtype=np.float64)
    tolerance = np.asarray(floor_tolerance, dtype=np.float64)
    reached = (ratio >= 1.0 - FLOOR_ROUND_OFF) & (ratio <= 1.0 + tolerance)
    return np.asarray(reached, dtype=bool)


def _verdict_follows_rule(frame: pd.DataFrame) -> pd.Series:
    expected = rate_verdict(
        frame["slack_t"],
        frame["slack_d"],
        frame["slack_bound"],
        frame["flat_dims"] != "",
    )
    return pd.Series(frame["verdict"].to_numpy() == expected, index=frame.index)


def _control_ok_follows_rule(frame: pd.DataFrame) -> pd.Series:
    expected = rate_control_ok(
        frame["role"], frame["expectation"], frame["verdict"], frame["floor_ratio"]
    )
    return pd.Series(frame["control_ok"].to_numpy(dtype=bool) == expected, index=frame.index)


def _floor_reached_follows_rule(frame: pd.DataFrame) -> pd.Series:
    expected = rate_floor_reached(frame["floor_ratio"], frame["floor_tolerance"])
    return pd.Series(frame["floor_reached"].to_numpy(dtype=bool) == expected, index=frame.index)


def _floor_given_together(frame: pd.DataFrame) -> pd.Series:
    present = frame[["floor_dim", "floor", "floor_ratio"]].notna()
    return present.all(axis=1) | ~present.any(axis=1)


def _close(left: pd.Series, right: pd.Series) -> pd.Series:
    """Equal within round-off, or both missing."""
    values = np.isclose(left, right, rtol=1e-9, atol=1e-12, equal_nan=True)
    return pd.Series(values, index=left.index)


def _interval(low: str, high: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        both_missing = frame[[low, high]].isna().all(axis=1)
        return both_missing | (frame[low] <= frame[high])

    return _rows([low, high], rule, f"{low} <= {high} must hold (or both be missing)")


def _slope_iff_two_points(points: str, slope: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return frame[slope].notna() == frame[points].str.contains(",")

    return _rows([points, slope], rule, f"{slope} must be given exactly when {points} lists >= 2 T")


def _steepening_follows_change(frame: pd.DataFrame) -> pd.Series:
    return frame["steepening"] == ((frame["change"] < 0) & (frame["change_high"] < 0))


def _settled_follows_limit(frame: pd.DataFrame) -> pd.Series:
    return frame["settled"] == (frame["slope_last_high"] <= frame["t_limit"])


def _shares_sum_to_one(frame: pd.DataFrame) -> pd.Series:
    total = frame[list(CALIBRATION_SHARES.values())].sum(axis=1)
    return pd.Series(np.isclose(total, 1.0, rtol=0.0, atol=1e-9), index=frame.index)


def _bound_slack_matches(frame: pd.DataFrame) -> pd.Series:
    expected = np.log10(frame["bound_factor"] / frame["bound_ratio"])
    return pd.Series(
        np.isclose(frame["slack_bound"], expected, rtol=1e-9, atol=1e-12), index=frame.index
    )


GAPS_SCHEMA = pa.DataFrameSchema(
    columns={
        **_key_columns(["method", "problem", "d", "K", "scoring"]),
        "seed": _count(0),
        "T": _count(1),
        "gap": _real(_finite, pa.Check.gt(0.0, error="must be > 0")),
        "current_gap": _real(_non_negative),
        "optimal_loss": _real(_finite),
        "floor": _real(_non_negative, nullable=True),
    },
    checks=[_unique([*RUN_KEYS, "T"])],
    strict=True,
    ordered=True,
    name="gaps",
)
"""The average gap R_T per run and T."""

VERDICTS_SCHEMA = pa.DataFrameSchema(
    columns={
        "problem": pa.Column(str, NON_EMPTY),
        "method": pa.Column(str, NON_EMPTY),
        "variant_of": pa.Column(str),
        "role": pa.Column(str, _one_of(ROLES)),
        "expectation": pa.Column(str, _one_of(EXPECTATIONS)),
        "K": _count(1),
        "scoring": _key_columns(["scoring"])["scoring"],
        "dims": pa.Column(str, pa.Check.str_matches(r"^\d+(,\d+)+$", error="must list >= 2 d")),
        "iterations": pa.Column(
            str, pa.Check.str_matches(r"^\d+(,\d+)+$", error="must list >= 2 T")
        ),
        "n_seeds": _count(1),
        "n_points": _count(4),
        "a_hat": _real(_finite),
        "a_ucl": _real(_finite),
        "a_limit": _real(_finite),
        "slack_t": _real(_finite),
        "b_hat": _real(_finite),
        "b_ucl": _real(_finite),
        "b_limit": _real(_finite),
        "slack_d": _real(_finite),
        "intercept": _real(_finite),
        "r_squared": _real(pa.Check.le(1.0, error="must be <= 1")),
        "C": _real(_finite, pa.Check.gt(0.0, error="must be > 0")),
        "bound_ratio": _real(_finite, pa.Check.gt(0.0, error="must be > 0")),
        "bound_factor": _real(pa.Check.ge(1.0, error="must be >= 1")),
        "slack_bound": _real(_finite),
        "steepening_dims": pa.Column(str, _dim_list),
        "flat_dims": pa.Column(str, _dim_list),
        "steepening_confidence": _real(_level),
        "floor_dim": pa.Column("Int64", pa.Check.ge(1, error="must be >= 1"), nullable=True),
        "floor": _real(_non_negative, nullable=True),
        "floor_ratio": _real(pa.Check.gt(0.0, error="must be > 0"), nullable=True),
        "floor_tolerance": _real(_finite, _non_negative),
        "confidence": _real(_level),
        "n_resamples": _count(1),
        "verdict": pa.Column(str, _one_of(RATE_VERDICTS)),
        "control_ok": pa.Column(bool),
        "floor_reached": pa.Column(bool),
        "reason": pa.Column(str, NON_EMPTY),
    },
    checks=[
        _unique(["method", "problem", "K", "scoring"]),
        _slack_matches("slack_t", "a_limit", "a_ucl"),
        _slack_matches("slack_d", "b_limit", "b_ucl"),
        _rows(
            ["slack_bound", "bound_factor", "bound_ratio"],
            _bound_slack_matches,
            "slack_bound must equal log10(bound_factor / bound_ratio)",
        ),
        _rows(
            ["verdict", "slack_t", "slack_d", "slack_bound", "flat_dims", "steepening_dims"],
            _verdict_follows_rule,
            "verdict must follow the rule (rate_verdict): pass exactly when slack_t, slack_d "
            "and slack_bound are all >= 0; no positive evidence only with slack_bound >= 0, no "
            "flat_dims and, where slack_d < 0, some steepening_dims",
        ),
        _rows(
            ["control_ok", "role", "expectation", "verdict", "floor_ratio"],
            _control_ok_follows_rule,
            "control_ok must be false exactly for a must-fail check that did not fail or a "
            "control whose floor_ratio lies below 1 (rate_control_ok)",
        ),
        _rows(
            ["floor_reached", "floor_ratio", "floor_tolerance"],
            _floor_reached_follows_rule,
            "floor_reached must be true exactly when floor_ratio lies in "
            "[1, 1 + floor_tolerance] (rate_floor_reached)",
        ),
        _rows(
            ["floor_dim", "floor", "floor_ratio"],
            _floor_given_together,
            "floor_dim, floor and floor_ratio must be given together or all be missing",
        ),
        _rows(
            ["variant_of", "method"],
            lambda frame: frame["variant_of"] != frame["method"],
            "a method must not be a variant of itself",
        ),
    ],
    strict=True,
    ordered=True,
    name="verdicts",
)
"""One rate verdict per check (method x problem x K x scoring)."""

LOCAL_SLOPES_SCHEMA = pa.DataFrameSchema(
    columns={
        "problem": pa.Column(str, NON_EMPTY),
        "method": pa.Column(str, NON_EMPTY),
        "role": pa.Column(str, _one_of(ROLES)),
        "K": _count(1),
        "scoring": _key_columns(["scoring"])["scoring"],
        "d": _count(1),
        "n_seeds": _count(1),
        "gap_t_max": _real(_finite, pa.Check.gt(0.0, error="must be > 0")),
        "current_gap_t_max": _real(_non_negative),
        "prev_T": pa.Column(str, _t_list),
        "slope_prev": _real(_finite, nullable=True),
        "slope_prev_low": _real(_finite, nullable=True),
        "slope_prev_high": _real(_finite, nullable=True),
        "last_T": pa.Column(str, _t_list),
        "slope_last": _real(_finite, nullable=True),
        "slope_last_low": _real(_finite, nullable=True),
        "slope_last_high": _real(_finite, nullable=True),
        "change": _real(_finite, nullable=True),
        "change_low": _real(_finite, nullable=True),
        "change_high": _real(_finite, nullable=True),
        "t_limit": _real(_finite),
        "settled": pa.Column(bool),
        "steepening": pa.Column(bool),
        "floor": _real(_non_negative, nullable=True),
        "floor_ratio": _real(pa.Check.gt(0.0, error="must be > 0"), nullable=True),
        "average_floor_ratio": _real(pa.Check.gt(0.0, error="must be > 0"), nullable=True),
        "confidence": _real(_level),
    },
    checks=[
        _unique(["method", "problem", "K", "scoring", "d"]),
        _slope_iff_two_points("prev_T", "slope_prev"),
        _slope_iff_two_points("last_T", "slope_last"),
        _interval("slope_prev_low", "slope_prev_high"),
        _interval("slope_last_low", "slope_last_high"),
        _interval("change_low", "change_high"),
        _rows(
            ["change", "slope_last", "slope_prev"],
            lambda frame: _close(frame["change"], frame["slope_last"] - frame["slope_prev"]),
            "change must equal slope_last - slope_prev (missing where either is)",
        ),
        _rows(
            ["steepening", "change", "change_high"],
            _steepening_follows_change,
            "steepening must be true exactly when change < 0 and change_high < 0",
        ),
        _rows(
            ["settled", "slope_last_high", "t_limit"],
            _settled_follows_limit,
            "settled must be true exactly when slope_last_high <= t_limit",
        ),
        _rows(
            ["floor_ratio", "current_gap_t_max", "floor"],
            lambda frame: _close(frame["floor_ratio"], frame["current_gap_t_max"] / frame["floor"]),
            "floor_ratio must equal current_gap_t_max / floor (missing where floor is)",
        ),
        _rows(
            ["average_floor_ratio", "gap_t_max", "floor"],
            lambda frame: _close(frame["average_floor_ratio"], frame["gap_t_max"] / frame["floor"]),
            "average_floor_ratio must equal gap_t_max / floor (missing where floor is)",
        ),
    ],
    strict=True,
    ordered=True,
    name="local_slopes",
)
"""Local slopes of log R_T over the last two decades of T, per rate check and d."""

CALIBRATION_SCHEMA = pa.DataFrameSchema(
    columns={
        "problem": pa.Column(str, NON_EMPTY),
        "method": pa.Column(str, NON_EMPTY),
        "K": _count(1),
        "scoring": _key_columns(["scoring"])["scoring"],
        "n_seeds": _count(1),
        "t_exponent": _real(_finite),
        "d_exponent": _real(_finite),
        "replicates": _count(1),
        **{share: _real(_probability) for share in CALIBRATION_SHARES.values()},
    },
    checks=[
        _unique(["method", "problem", "K", "scoring", "t_exponent", "d_exponent"]),
        _rows(
            list(CALIBRATION_SHARES.values()),
            _shares_sum_to_one,
            f"{', '.join(CALIBRATION_SHARES.values())} must sum to 1",
        ),
    ],
    strict=True,
    ordered=True,
    name="calibration",
)
"""Shares of each rate verdict on synthetic power laws with a check's measured seed noise."""


def _family(frame: pd.DataFrame) -> list[pd.Series]:
    """The keys of a verdict's family: the claim record, and the variant judged in it."""
    variant = frame["method"].where(frame["variant_of"] != "", "")
    return [frame["claim_id"], frame["scope"], frame["variant_of"], variant]


def _one_per_record(column: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby(["claim_id", "scope"])[column].transform("nunique") <= 1

    return _rows(["claim_id", "scope", column], rule, f"each claim record must have one {column}")


def _verdict_fits_row(suffix: str) -> pa.Check:
    """Cell rows carry cell verdicts, overall rows claim verdicts; secondary ones only
    comparisons (a rate claim has no secondary budget)."""
    verdict = f"verdict{suffix}"

    def rule(frame: pd.DataFrame) -> pd.Series:
        allowed = frame["row"].map({"cell": CELL_VERDICTS, "overall": CLAIM_VERDICTS})
        fits = pd.Series(
            [value in options for value, options in zip(frame[verdict], allowed, strict=True)],
            index=frame.index,
        )
        if not suffix:
            return fits
        return fits.where(frame["kind"] == "comparison", frame[verdict] == "")

    return _rows(
        ["row", "kind", verdict],
        rule,
        f"{verdict} must be one of {', '.join(CELL_VERDICTS)} on cell rows and one of "
        f"{', '.join(CLAIM_VERDICTS)} on overall rows"
        + (", and empty on rate rows" if suffix else ""),
    )


def _cell_verdict_matches_test(suffix: str) -> pa.Check:
    """A tested comparison cell's verdict is what its adjusted p and effect say."""
    p_holm, effect, verdict = f"p_holm{suffix}", f"effect{suffix}", f"verdict{suffix}"

    def rule(frame: pd.DataFrame) -> pd.Series:
        cell = (frame["row"] == "cell") & (frame["kind"] == "comparison")
        significant = frame[p_holm] < frame["alpha"]
        favours_method = significant & (frame[effect] >= frame["min_effect"])
        favours_baseline = significant & (frame[effect] <= -frame["min_effect"])
        expected = np.select(
            [frame[p_holm].isna(), favours_method, favours_baseline],
            [INCONCLUSIVE, REPRODUCED, CONTRADICTED],
            NOT_SIGNIFICANT,
        )
        return ~cell | (frame[verdict] == expected)

    return _rows(
        ["row", "kind", p_holm, effect, verdict, "alpha", "min_effect"],
        rule,
        f"a '{REPRODUCED}' cell needs {p_holm} < alpha and {effect} >= min_effect, a "
        f"'{CONTRADICTED}' one {p_holm} < alpha and {effect} <= -min_effect, a "
        f"'{NOT_SIGNIFICANT}' one neither, an '{INCONCLUSIVE}' one no {p_holm} ({verdict})",
    )


def _holm_not_below_raw(suffix: str) -> pa.Check:
    p_value, p_holm = f"p_value{suffix}", f"p_holm{suffix}"

    def rule(frame: pd.DataFrame) -> pd.Series:
        both = frame[p_value].notna() & frame[p_holm].notna()
        return ~both | (frame[p_holm] >= frame[p_value])

    return _rows(
        [p_value, p_holm],
        rule,
        f"{p_holm} >= {p_value} must hold (a correction never lowers a p-value)",
    )


def _claim_agrees_with_cells(suffix: str) -> pa.Check:
    """No reproduced comparison claim with a contradicted cell, no contradicted one with a
    reproduced cell (within one family: claim record and method). A rate claim is
    contradicted by one failing problem whatever the others give."""
    verdict = f"verdict{suffix}"

    def rule(frame: pd.DataFrame) -> pd.Series:
        keys = _family(frame)
        cells = frame[verdict].where(frame["row"] == "cell", "")
        has_reproduced = (cells == REPRODUCED).groupby(keys).transform("any")
        has_contradicted = (cells == CONTRADICTED).groupby(keys).transform("any")
        overall = (frame["row"] == "overall") & (frame["kind"] == "comparison")
        wrong = ((frame[verdict] == REPRODUCED) & has_contradicted) | (
            (frame[verdict] == CONTRADICTED) & has_reproduced
        )
        return ~(overall & wrong)

    return _rows(
        ["row", "kind", "claim_id", "scope", "method", "variant_of", verdict],
        rule,
        f"a comparison claim whose {verdict} is '{REPRODUCED}' must have no '{CONTRADICTED}' "
        f"cell and the reverse",
    )


def _primary_never_flips(frame: pd.DataFrame) -> pd.Series:
    return (frame["variant_of"] != "") | ~frame["flipped"]


def _flipped_iff_verdicts_differ(frame: pd.DataFrame) -> pd.Series:
    compared = frame["reference_verdict"] != ""
    differs = compared & (frame["reference_verdict"] != frame["verdict"])
    return frame["flipped"] == differs


def _one_rule_hash(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(frame["rule_hash"].nunique() <= 1, index=frame.index)


def _one_overall_row(frame: pd.DataFrame) -> pd.Series:
    overall = frame["row"] == "overall"
    keyed = pd.concat(_family(frame), axis=1, keys=["claim_id", "scope", "variant_of", "m"])
    duplicated = keyed[overall].duplicated(keep=False).reindex(frame.index, fill_value=False)
    return ~duplicated


_effect = pa.Check.in_range(-1.0, 1.0, error="must lie in [-1, 1]")
_empty_or_verdict = pa.Check.isin(["", *VERDICTS], error="must be empty or a verdict")


def _secondary_columns(label: str) -> dict[str, pa.Column]:
    return {
        f"evaluations_{label}": pa.Column(
            "Int64", pa.Check.ge(1, error="must be >= 1"), nullable=True
        ),
        f"p_value_{label}": _real(_probability, nullable=True),
        f"p_holm_{label}": _real(_probability, nullable=True),
        f"effect_{label}": _real(_effect, nullable=True),
        f"verdict_{label}": pa.Column(str, _empty_or_verdict),
    }


@functools.cache
def claims_schema(secondary: tuple[str, ...] = ()) -> pa.DataFrameSchema:
    """The ledger's schema with the secondary budgets labelled ``secondary`` (in order)."""
    suffixes = ["", *(f"_{label}" for label in secondary)]
    columns: dict[str, pa.Column] = {
        "claim_id": pa.Column(str, NON_EMPTY),
        "scope": pa.Column(str, _one_of(SCOPES)),
        "source": pa.Column(str, _one_of(SOURCES)),
        "kind": pa.Column(str, _one_of(KINDS)),
        "claim": pa.Column(str, NON_EMPTY),
        "row": pa.Column(str, _one_of(ROWS)),
        "method": pa.Column(str, NON_EMPTY),
        "variant_of": pa.Column(str),
        "baseline": pa.Column(str),
        "group": pa.Column(str),
        "problem": pa.Column(str),
        "d": pa.Column("Int64", pa.Check.ge(1, error="must be >= 1"), nullable=True),
        "K": pa.Column("Int64", pa.Check.ge(1, error="must be >= 1"), nullable=True),
        "scoring": pa.Column(str),
        "evaluations": pa.Column("Int64", pa.Check.ge(1, error="must be >= 1"), nullable=True),
        "n_seeds": pa.Column("Int64", pa.Check.ge(0, error="must be >= 0"), nullable=True),
        "test": pa.Column(str),
        "p_value": _real(_probability, nullable=True),
        "p_holm": _real(_probability, nullable=True),
        "effect": _real(_effect, nullable=True),
        "verdict": pa.Column(str, _one_of(VERDICTS)),
        "reference_verdict": pa.Column(str, _empty_or_verdict),
        "flipped": pa.Column(bool),
        "reason": pa.Column(str, NON_EMPTY),
        "note": pa.Column(str),
        "evidence": pa.Column(str, NON_EMPTY),
        "config": pa.Column(str, NON_EMPTY),
        "alpha": _real(pa.Check.in_range(0.0, 1.0, False, False, error="must lie in (0, 1)")),
        "min_seeds": _count(1),
        "min_effect": _real(pa.Check.in_range(0.0, 1.0, error="must lie in [0, 1]")),
        "rule_hash": pa.Column(
            str, pa.Check.str_matches(r"^[0-9a-f]{16}$", error="must be 16 hex digits")
        ),
    }
    for label in secondary:
        columns.update(_secondary_columns(label))
    ordered = claim_columns(secondary)
    checks = [
        _one_per_record("source"),
        _one_per_record("claim"),
        _one_per_record("kind"),
        _rows(["rule_hash"], _one_rule_hash, "every row of a ledger must carry the same rule_hash"),
        _rows(
            ["variant_of", "flipped"],
            _primary_never_flips,
            "only a variant's row can be flipped (flipped must be false where variant_of is '')",
        ),
        _rows(
            ["flipped", "reference_verdict", "verdict"],
            _flipped_iff_verdicts_differ,
            "flipped must be true exactly when reference_verdict is given and differs from verdict",
        ),
        _rows(
            ["claim_id", "scope", "row", "method", "variant_of"],
            _one_overall_row,
            "each claim record (claim_id, scope) must have exactly one overall row per method",
        ),
    ]
    for suffix in suffixes:
        checks += [
            _verdict_fits_row(suffix),
            _cell_verdict_matches_test(suffix),
            _holm_not_below_raw(suffix),
            _claim_agrees_with_cells(suffix),
        ]
    return pa.DataFrameSchema(
        columns={name: columns[name] for name in ordered},
        checks=checks,
        strict=True,
        ordered=True,
        name="claims",
    )


def _validate(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, what: str, source: str | None
) -> pd.DataFrame:
    origin = f" {source}" if source else ""
    return validate_frame(schema, frame, f"{what}{origin}", ClaimsValidationError)


def validate_gaps(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate an average-gap table and return it unchanged (ClaimsValidationError if not)."""
    return _validate(GAPS_SCHEMA, frame, "rate-check gaps", source)


def validate_verdicts(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a rate-verdict table and return it unchanged (ClaimsValidationError if not)."""
    return _validate(VERDICTS_SCHEMA, frame, "rate verdicts", source)


def validate_local_slopes(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a local-slope table and return it unchanged (ClaimsValidationError if not)."""
    return _validate(LOCAL_SLOPES_SCHEMA, frame, "rate-check local slopes", source)


def validate_calibration(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a rate-rule calibration table and return it unchanged (ClaimsValidationError
    if not)."""
    return _validate(CALIBRATION_SCHEMA, frame, "rate-rule calibration", source)


def validate_claims(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a claims ledger and return it unchanged (ClaimsValidationError if not).

    Its secondary budgets are read from its ``verdict_L`` columns (:func:`secondary_labels`).
    """
    schema = claims_schema(secondary_labels(frame.columns))
    return _validate(schema, frame, "claims ledger", source)
