"""Schemas of the rate check's tables and of the claims ledger, checked before writing.

- ``gaps``: one row per run and T: the average optimality gap ``R_T``
  (:func:`casbo_bench.analysis.rates.average_gaps`).
- ``verdicts``: one row per rate check (method x problem x K x scoring): fitted exponents,
  their upper confidence limits, the out-of-sample constant, the slacks and pass/fail
  (:func:`casbo_bench.analysis.rates.rate_verdicts`); written as ``rate_checks/verdicts.csv``.
- ``claims``: the ledger, one overall row per claim and method (CASBO or a robustness
  variant of it) and one row per cell the verdict is computed from
  (:func:`casbo_bench.analysis.claims.build_ledger`); written as ``claims.csv``. A
  variant's row carries CASBO's verdict on the same cells (``reference_verdict``) and is
  ``flipped`` when the two differ.

Beyond dtypes and ranges the schemas check what must hold between columns: a pass exactly
when every slack is >= 0, each slack equal to its limit minus its upper limit, a
"reproduced" cell only with an adjusted p below alpha and an effect of at least the minimum,
the ours/paper label of every claim, one overall row per claim and method.

>>> validate_verdicts(frame)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from casbo_bench.schemas.tables import (
    _count,
    _describe,
    _finite,
    _key_columns,
    _non_empty,
    _real,
    _rows,
    _unique,
)
from casbo_bench.schemas.trace import RUN_KEYS

ROLES: tuple[str, ...] = ("claim", "control", "observation")
"""Roles of a rate check: the paper's setting, a control, or a reported observation."""

EXPECTATIONS: tuple[str, ...] = ("pass", "must-fail", "may-fail", "none")
"""What a sound rate check gives: a claim should pass; a non-adaptive control must fail (a
pass means the check is broken); a non-convex control may fail; observations expect nothing."""

RATE_VERDICTS: tuple[str, ...] = ("pass", "fail")

CLAIM_VERDICTS: tuple[str, ...] = ("reproduced", "not reproduced", "inconclusive")

SOURCES: tuple[str, ...] = ("paper", "ours")
"""Whose claim a ledger row tests: the paper's, or ours (ablations the paper does not make)."""

SCOPES: tuple[str, ...] = ("overall", "cell")

GAP_COLUMNS: dict[str, str] = {
    **{key: ("int64" if key in ("d", "K", "seed") else "str") for key in RUN_KEYS},
    "T": "int64",
    "gap": "float64",
    "optimal_loss": "float64",
}
"""Column -> dtype of the ``gaps`` table, in the order written."""

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
    "confidence": "float64",
    "n_resamples": "int64",
    "verdict": "str",
    "reason": "str",
}
"""Column -> dtype of ``rate_checks/verdicts.csv``, in the order written."""

CLAIM_COLUMNS: dict[str, str] = {
    "claim_id": "str",
    "claim": "str",
    "source": "str",
    "scope": "str",
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
    "effect_size": "float64",
    "alpha": "float64",
    "min_seeds": "int64",
    "min_effect": "float64",
    "verdict": "str",
    "reference_verdict": "str",
    "flipped": "bool",
    "reason": "str",
    "evidence": "str",
    "config": "str",
}
"""Column -> dtype of ``claims.csv``, in the order written (Int64: may be missing)."""

CLAIM_SOURCES: dict[str, str] = {
    "rate": "paper",
    "beats-cmaes": "paper",
    "beats-turbo": "paper",
    "molecule": "paper",
    "full-covariance": "ours",
    "per-step": "ours",
}
"""Every claim of the ledger and whose it is."""


class ClaimsValidationError(ValueError):
    """A rate-check table or the ledger failed its schema; the message names every check."""


def _one_of(values: tuple[str, ...]) -> pa.Check:
    return pa.Check.isin(list(values), error=f"must be one of {', '.join(values)}")


def _slack_matches(slack: str, limit: str, upper: str) -> pa.Check:
    def rule(frame: pd.DataFrame) -> pd.Series:
        return pd.Series(
            np.isclose(frame[slack], frame[limit] - frame[upper], rtol=1e-9, atol=1e-12),
            index=frame.index,
        )

    return _rows([slack, limit, upper], rule, f"{slack} must equal {limit} - {upper}")


def _pass_iff_slack(frame: pd.DataFrame) -> pd.Series:
    holds = (frame["slack_t"] >= 0) & (frame["slack_d"] >= 0) & (frame["slack_bound"] >= 0)
    return (frame["verdict"] == "pass") == holds


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
        "optimal_loss": _real(_finite),
    },
    checks=[_unique([*RUN_KEYS, "T"])],
    strict=True,
    ordered=True,
    name="gaps",
)
"""The average gap R_T per run and T."""

VERDICTS_SCHEMA = pa.DataFrameSchema(
    columns={
        "problem": pa.Column(str, _non_empty),
        "method": pa.Column(str, _non_empty),
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
        "confidence": _real(pa.Check.in_range(0.5, 1.0, True, False, error="must lie in [0.5, 1)")),
        "n_resamples": _count(1),
        "verdict": pa.Column(str, _one_of(RATE_VERDICTS)),
        "reason": pa.Column(str, _non_empty),
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
            ["verdict", "slack_t", "slack_d", "slack_bound"],
            _pass_iff_slack,
            "verdict must be 'pass' exactly when slack_t, slack_d and slack_bound are all >= 0",
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


def _source_matches(frame: pd.DataFrame) -> pd.Series:
    return frame["claim_id"].map(CLAIM_SOURCES) == frame["source"]


def _reproduced_needs_evidence(frame: pd.DataFrame) -> pd.Series:
    """A reproduced cell tested by a rank test has p_holm < alpha and effect >= minimum."""
    tested = frame["p_holm"].notna()
    reproduced = (frame["scope"] == "cell") & (frame["verdict"] == "reproduced") & tested
    significant = (frame["p_holm"] < frame["alpha"]) & (frame["effect_size"] >= frame["min_effect"])
    return ~reproduced | significant


def _holm_not_below_raw(frame: pd.DataFrame) -> pd.Series:
    both = frame["p_value"].notna() & frame["p_holm"].notna()
    return ~both | (frame["p_holm"] >= frame["p_value"])


def _primary_never_flips(frame: pd.DataFrame) -> pd.Series:
    return (frame["variant_of"] != "") | ~frame["flipped"]


def _flipped_iff_verdicts_differ(frame: pd.DataFrame) -> pd.Series:
    compared = frame["reference_verdict"] != ""
    differs = compared & (frame["reference_verdict"] != frame["verdict"])
    return frame["flipped"] == differs


CLAIMS_SCHEMA = pa.DataFrameSchema(
    columns={
        "claim_id": pa.Column(str, _one_of(tuple(CLAIM_SOURCES))),
        "claim": pa.Column(str, _non_empty),
        "source": pa.Column(str, _one_of(SOURCES)),
        "scope": pa.Column(str, _one_of(SCOPES)),
        "method": pa.Column(str, _non_empty),
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
        "p_value": _real(pa.Check.in_range(0.0, 1.0, error="must lie in [0, 1]"), nullable=True),
        "p_holm": _real(pa.Check.in_range(0.0, 1.0, error="must lie in [0, 1]"), nullable=True),
        "effect_size": _real(
            pa.Check.in_range(-1.0, 1.0, error="must lie in [-1, 1]"), nullable=True
        ),
        "alpha": _real(pa.Check.in_range(0.0, 1.0, False, False, error="must lie in (0, 1)")),
        "min_seeds": _count(1),
        "min_effect": _real(pa.Check.in_range(0.0, 1.0, error="must lie in [0, 1]")),
        "verdict": pa.Column(str, _one_of(CLAIM_VERDICTS)),
        "reference_verdict": pa.Column(
            str,
            pa.Check.isin(["", *CLAIM_VERDICTS], error="must be empty or a verdict"),
        ),
        "flipped": pa.Column(bool),
        "reason": pa.Column(str, _non_empty),
        "evidence": pa.Column(str, _non_empty),
        "config": pa.Column(str, _non_empty),
    },
    checks=[
        _rows(
            ["claim_id", "source"],
            _source_matches,
            f"source must be the claim's own ({CLAIM_SOURCES}): ours rows are labelled ours",
        ),
        _rows(
            ["scope", "verdict", "p_holm", "alpha", "effect_size", "min_effect"],
            _reproduced_needs_evidence,
            "a 'reproduced' cell needs p_holm < alpha and effect_size >= min_effect",
        ),
        _rows(
            ["p_value", "p_holm"],
            _holm_not_below_raw,
            "p_holm >= p_value must hold (a correction never lowers a p-value)",
        ),
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
            ["claim_id", "scope", "method"],
            lambda frame: (
                ~frame[frame["scope"] == "overall"]
                .duplicated(["claim_id", "method"], keep=False)
                .reindex(frame.index, fill_value=False)
            ),
            "each (claim_id, method) must have exactly one overall row",
        ),
    ],
    strict=True,
    ordered=True,
    name="claims",
)
"""The claims ledger: overall and per-cell verdicts of every claim, per CASBO variant."""


def _validate(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, what: str, source: str | None
) -> pd.DataFrame:
    try:
        schema.validate(frame.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        lines = _describe(errors.failure_cases)
        origin = f" {source}" if source else ""
        raise ClaimsValidationError(
            f"{what}{origin} failed validation ({len(lines)} check(s)):\n"
            + "\n".join(f"  - {line}" for line in lines)
        ) from None
    return frame


def validate_gaps(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate an average-gap table and return it unchanged (ClaimsValidationError if not)."""
    return _validate(GAPS_SCHEMA, frame, "rate-check gaps", source)


def validate_verdicts(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a rate-verdict table and return it unchanged (ClaimsValidationError if not)."""
    return _validate(VERDICTS_SCHEMA, frame, "rate verdicts", source)


def validate_claims(frame: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate a claims ledger and return it unchanged (ClaimsValidationError if not)."""
    if not set(CLAIM_SOURCES) <= set(frame.get("claim_id", pd.Series(dtype=str))):
        missing = sorted(set(CLAIM_SOURCES) - set(frame.get("claim_id", pd.Series(dtype=str))))
        raise ClaimsValidationError(
            f"claims ledger{f' {source}' if source else ''} lacks claim(s) {missing}; every "
            f"claim needs a row, with verdict 'inconclusive' where it was not tested"
        )
    return _validate(CLAIMS_SCHEMA, frame, "claims ledger", source)
