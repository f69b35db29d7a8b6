"""The rate check's verdict constants and the two rules the verdict schema enforces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from casbo_bench.schemas.claims import (
    CALIBRATION_COLUMNS,
    CALIBRATION_SHARES,
    RATE_VERDICTS,
    VERDICTS_SCHEMA,
    rate_control_ok,
    rate_verdict,
)

NO_EVIDENCE = "no positive evidence at this horizon"


def test_the_verdicts_are_the_pre_registered_three() -> None:
    # The claims ledger reads these strings: changing one changes what a ledger row means.
    assert RATE_VERDICTS == ("pass", NO_EVIDENCE, "fail")
    assert set(VERDICTS_SCHEMA.columns["verdict"].checks[0].statistics["allowed_values"]) == set(
        RATE_VERDICTS
    )
    assert list(CALIBRATION_SHARES) == list(RATE_VERDICTS)
    assert set(CALIBRATION_SHARES.values()) <= set(CALIBRATION_COLUMNS)


@pytest.mark.parametrize(
    ("slacks", "any_flat", "any_steepening", "expected"),
    [
        # every condition holds: pass, whatever the local slopes say
        ((0.0, 0.0, 0.0), True, False, "pass"),
        # T-exponent fails, bound holds, every unsettled d still steepening
        ((-0.1, 0.2, 0.3), False, True, NO_EVIDENCE),
        # ... or no d unsettled at all (every last-decade slope already at the limit)
        ((-0.1, 0.2, 0.3), False, False, NO_EVIDENCE),
        # a d has flattened above the limit
        ((-0.1, 0.2, 0.3), True, True, "fail"),
        # the bound is broken: no excuse
        ((-0.1, 0.2, -0.01), False, True, "fail"),
        ((0.1, 0.2, -0.01), False, True, "fail"),
        # d-exponent fails while some d is still bending: pre-asymptotic, not refuted
        ((0.1, -0.2, 0.3), False, True, NO_EVIDENCE),
        ((-0.1, -0.2, 0.3), False, True, NO_EVIDENCE),
        # d-exponent fails and no d bends any more: the growth in d is measured
        ((0.1, -0.2, 0.3), False, False, "fail"),
    ],
)
def test_rate_verdict_follows_the_decision_table(
    slacks: tuple[float, float, float], any_flat: bool, any_steepening: bool, expected: str
) -> None:
    assert str(rate_verdict(*slacks, any_flat, any_steepening)) == expected


def test_rate_verdict_is_elementwise() -> None:
    verdicts = rate_verdict([0.1, -0.1], [0.1, 0.1], [0.1, 0.1], [False, True], [False, False])
    assert verdicts.tolist() == ["pass", "fail"]


@pytest.mark.parametrize(
    ("role", "expectation", "verdict", "floor_ratio", "expected"),
    [
        ("claim", "pass", "fail", math.nan, True),
        ("claim", "pass", "pass", 3.0, True),  # a claim's floor ratio is only reported
        ("control", "must-fail", "fail", math.nan, True),
        ("control", "must-fail", NO_EVIDENCE, math.nan, True),
        ("control", "must-fail", "pass", math.nan, False),
        ("control", "must-fail", "fail", 1.05, True),
        ("control", "must-fail", "fail", 1.0, True),
        ("control", "must-fail", "fail", 1.2, False),
        ("control", "must-fail", "fail", 0.9, False),  # below its floor: a wrong floor
        ("control", "may-fail", "pass", math.nan, True),
    ],
)
def test_rate_control_ok_flags_a_passing_must_fail_control_or_one_off_its_floor(
    role: str, expectation: str, verdict: str, floor_ratio: float, expected: bool
) -> None:
    assert bool(rate_control_ok(role, expectation, verdict, floor_ratio, 0.1)) is expected


def test_rate_control_ok_is_elementwise() -> None:
    ok = rate_control_ok(
        np.array(["control", "control"]),
        np.array(["must-fail", "must-fail"]),
        np.array(["fail", "fail"]),
        np.array([1.05, 1.5]),
        0.1,
    )
    assert ok.tolist() == [True, False]
