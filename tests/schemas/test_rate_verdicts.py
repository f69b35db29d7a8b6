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
    rate_floor_reached,
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
    ("slacks", "any_flat", "expected"),
    [
        # every condition holds: pass, whatever the local slopes say
        ((0.0, 0.0, 0.0), True, "pass"),
        # only the T-exponent fails, every d settled at the limit or still steepening
        ((-0.1, 0.2, 0.3), False, NO_EVIDENCE),
        # a d has flattened above the limit
        ((-0.1, 0.2, 0.3), True, "fail"),
        # the bound is broken: no excuse
        ((-0.1, 0.2, -0.01), False, "fail"),
        ((0.1, 0.2, -0.01), False, "fail"),
        # the d-exponent fails: no excuse
        ((0.1, -0.2, 0.3), False, "fail"),
        ((-0.1, -0.2, 0.3), False, "fail"),
    ],
)
def test_rate_verdict_follows_the_decision_table(
    slacks: tuple[float, float, float], any_flat: bool, expected: str
) -> None:
    assert str(rate_verdict(*slacks, any_flat)) == expected


def test_rate_verdict_is_elementwise() -> None:
    verdicts = rate_verdict([0.1, -0.1], [0.1, 0.1], [0.1, 0.1], [False, True])
    assert verdicts.tolist() == ["pass", "fail"]


@pytest.mark.parametrize(
    ("role", "expectation", "verdict", "floor_ratio", "expected"),
    [
        ("claim", "pass", "fail", math.nan, True),
        ("claim", "pass", "pass", 3.0, True),  # a claim's floor ratio is only reported
        ("control", "must-fail", "fail", math.nan, True),
        ("control", "must-fail", NO_EVIDENCE, math.nan, False),  # excused: must fail
        ("control", "must-fail", "pass", math.nan, False),
        ("control", "must-fail", "fail", 1.05, True),
        ("control", "must-fail", "fail", 1.0, True),
        ("control", "must-fail", "fail", 1.2, True),  # not converged yet: still failing
        ("control", "must-fail", "fail", 0.9, False),  # below its floor: a wrong floor
        ("control", "may-fail", "pass", math.nan, True),
    ],
)
def test_rate_control_ok_flags_a_passing_must_fail_control_or_one_below_its_floor(
    role: str, expectation: str, verdict: str, floor_ratio: float, expected: bool
) -> None:
    assert bool(rate_control_ok(role, expectation, verdict, floor_ratio)) is expected


@pytest.mark.parametrize(
    ("floor_ratio", "expected"), [(1.0, True), (1.1, True), (1.2, False), (0.9, False)]
)
def test_the_floor_is_reached_within_the_tolerance_band(floor_ratio: float, expected: bool) -> None:
    assert bool(rate_floor_reached(floor_ratio, 0.1)) is expected
    assert not bool(rate_floor_reached(math.nan, 0.1))


def test_rate_control_ok_is_elementwise() -> None:
    ok = rate_control_ok(
        np.array(["control", "control"]),
        np.array(["must-fail", "must-fail"]),
        np.array(["fail", "fail"]),
        np.array([1.05, 0.5]),
    )
    assert ok.tolist() == [True, False]
