"""The rate check: average gaps, the log-log fit, local slopes, the three verdicts, floors,
the calibration, outputs and the command."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike

from casbo_bench.analysis import rate_figures, rates
from casbo_bench.analysis.rates import (
    LEGACY_REFERENCE,
    RateCheck,
    RateCheckError,
    RateRule,
    RunReference,
    average_gaps,
    average_gaps_of_files,
    fit_power_law,
    judge_rate_checks,
    rate_verdicts,
    references_from_provenance,
)
from casbo_bench.cli import main
from casbo_bench.runner import Job, run_job
from casbo_bench.schemas.claims import (
    GAP_COLUMNS,
    RATE_NO_EVIDENCE,
    ClaimsValidationError,
    validate_calibration,
    validate_gaps,
    validate_local_slopes,
    validate_verdicts,
)
from casbo_bench.schemas.trace import TRACE_COLUMNS, TraceValidationError, validate_trace
from casbo_bench.traces import read_provenance, write_trace

DIMS = (2, 5, 10, 20)
ITERATIONS = (3, 10, 30, 100, 300)
LONG = (3, 10, 30, 100, 300, 1000, 3000, 10000, 30000)
RULE = RateRule(
    t_tolerance=0.1, d_tolerance=0.25, bound_factor=2.0, n_resamples=500, calibration_replicates=0
)
RUN = ("m", "sphere", 2, 1, "final", 0)


def synthetic_gaps(
    t_exponent: float,
    d_exponent: float,
    noise: float = 0.2,
    seeds: int = 8,
    method: str = "casbo-decay",
    problem: str = "sphere",
    seed: int = 0,
    iterations: Sequence[int] = ITERATIONS,
    curvature: float = 0.0,
) -> pd.DataFrame:
    """``R = 3 d^b T^a exp(curvature (log T)^2)`` times a seeded log-normal factor per (seed, d,
    T), as gap rows: the local slope of log R over log T is ``a + 2 curvature log T``. The
    current gap is ``d(T R)/dT = (1 + a) R`` of the curve without curvature."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "method": method,
            "problem": problem,
            "d": d,
            "K": 3,
            "scoring": "cumulative",
            "seed": s,
            "T": t,
            "gap": gap,
            "current_gap": max(1.0 + t_exponent, 0.0) * gap,
            "optimal_loss": 0.0,
            "floor": math.nan,
        }
        for s in range(seeds)
        for d in DIMS
        for t in iterations
        for gap in [
            3.0
            * d**d_exponent
            * t**t_exponent
            * math.exp(curvature * math.log(t) ** 2)
            * rng.lognormal(0.0, noise)
        ]
    ]
    return validate_gaps(pd.DataFrame(rows).astype(GAP_COLUMNS))


def floor_gaps(excess: float, seeds: int = 6, method: str = "casbo-mean-only") -> pd.DataFrame:
    """A mean-only control's gaps: ``R_T = d (1 + excess / sqrt(T))`` above the floor ``d``,
    the excess varying by a seeded 10% per seed: at T = 300 ``R_T / floor ~ 1 + excess / 17``;
    the current gap ``d(T R_T)/dT = d (1 + excess / (2 sqrt(T)))``."""
    rng = np.random.default_rng(1)
    rows = [
        {
            "method": method,
            "problem": "sphere",
            "d": d,
            "K": 3,
            "scoring": "cumulative",
            "seed": s,
            "T": t,
            "gap": d * (1.0 + excess * factor / math.sqrt(t)),
            "current_gap": d * (1.0 + excess * factor / (2.0 * math.sqrt(t))),
            "optimal_loss": 0.0,
            "floor": float(d),
        }
        for s, factor in enumerate(rng.lognormal(0.0, 0.1, seeds))
        for d in DIMS
        for t in ITERATIONS
    ]
    return validate_gaps(pd.DataFrame(rows).astype(GAP_COLUMNS))


def trace_with_objective(
    objective: ArrayLike, method: str = "m", d: int = 2, seed: int = 0, batch: int = 2
) -> pd.DataFrame:
    """A valid trace whose batches t = 1..n have ``expected_loss = objective[t - 1]``."""
    values = np.asarray(objective, dtype=np.float64)
    n = values.size * batch
    iteration = np.repeat(np.arange(values.size), batch)
    loss = np.linspace(2.0, 1.0, n)
    frame = pd.DataFrame(
        {
            "method": method,
            "optimizer": method,
            "problem": "sphere",
            "d": d,
            "K": 1,
            "scoring": "final",
            "seed": seed,
            "budget": n,
            "iteration": iteration,
            "evaluation": np.arange(1, n + 1),
            "loss": loss,
            "best_so_far": np.minimum.accumulate(loss),
            "wall_time": 1e-3 * (iteration + 1),
            "expected_loss": np.repeat(values, batch),
            "fresh_sample_loss": 1.0,
            "safeguard_events": 0,
            "failed": False,
            "error": "",
            "status": "complete",
        }
    )
    return validate_trace(frame.astype(TRACE_COLUMNS), source="test")


def _judge(gaps: pd.DataFrame, check: RateCheck, rule: RateRule = RULE) -> rates.RateResults:
    return judge_rate_checks(gaps, [check], rule)


# --- average gaps -------------------------------------------------------------------


def test_average_gap_is_the_prefix_mean_of_the_objective_minus_the_optimum() -> None:
    objective = 1.0 / np.arange(1, 21) + 0.5
    gaps = average_gaps(trace_with_objective(objective), [1, 4, 20], {RUN: RunReference(0.5)})
    harmonic = np.cumsum(1.0 / np.arange(1, 21))
    np.testing.assert_allclose(gaps["gap"], harmonic[[0, 3, 19]] / [1, 4, 20], rtol=1e-12)
    np.testing.assert_allclose(gaps["current_gap"], [1.0, 1 / 4, 1 / 20], rtol=1e-12)
    assert gaps["T"].tolist() == [1, 4, 20]
    assert (gaps["optimal_loss"] == 0.5).all()
    assert gaps["floor"].isna().all()


def test_average_gaps_carry_the_frozen_law_floor_above_the_optimum() -> None:
    reference = RunReference(optimal_loss=0.5, frozen_law_floor=0.75)
    gaps = average_gaps(trace_with_objective([1.0] * 4), [1, 4], {RUN: reference})
    assert gaps["floor"].tolist() == [0.25, 0.25]


def test_average_gaps_refuse_a_run_without_a_reference_or_its_optimum() -> None:
    trace = trace_with_objective([1.0] * 4)
    with pytest.raises(RateCheckError, match="has no reference"):
        average_gaps(trace, [1, 4], {})
    with pytest.raises(RateCheckError, match="no known optimal loss"):
        average_gaps(trace, [1, 4], {RUN: RunReference(math.nan)})
    with pytest.raises(RateCheckError, match="frozen-law floor below J"):
        average_gaps(trace, [1, 4], {RUN: RunReference(0.5, frozen_law_floor=0.25)})


def test_references_come_from_the_provenance_and_default_for_older_traces() -> None:
    record = {"repetitions": {"0": {"optimal_loss": 0.5, "frozen_law_floor": None}}}
    assert references_from_provenance(record, [RUN]) == {RUN: RunReference(0.5)}
    floored = {"repetitions": {"0": {"optimal_loss": 0.0, "frozen_law_floor": 2.0}}}
    assert references_from_provenance(floored, [RUN])[RUN].frozen_law_floor == 2.0
    unknown = references_from_provenance({"repetitions": {"0": {"optimal_loss": None}}}, [RUN])
    assert math.isnan(unknown[RUN].optimal_loss)
    assert references_from_provenance({"git_commit": "abc"}, [RUN]) == {RUN: LEGACY_REFERENCE}
    with pytest.raises(RateCheckError, match="records no repetition 0"):
        references_from_provenance({"repetitions": {"1": {}}}, [RUN])


def test_files_are_reduced_one_at_a_time_with_their_own_references(tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    repetitions = {"0": {"optimal_loss": 0.5, "frozen_law_floor": 0.75}}
    write_trace(trace_with_objective([1.0, 0.9, 0.8]), path, {"repetitions": repetitions})
    gaps = average_gaps_of_files([path], [1, 3], read_provenance)
    np.testing.assert_allclose(gaps["gap"], [0.5, 0.4])
    assert gaps["floor"].tolist() == [0.25, 0.25]
    assert average_gaps_of_files([path], [1, 3])["optimal_loss"].tolist() == [0.0, 0.0]
    write_trace(trace_with_objective([1.0] * 3), path, {"repetitions": {}})
    with pytest.raises(RateCheckError, match=f"{path}: .*records no repetition"):
        average_gaps_of_files([path], [1, 3], read_provenance)


def test_only_the_needed_columns_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    write_trace(trace_with_objective([1.0] * 3), path, {})
    assert list(rates.read_gap_columns(path).columns) == list(rates.TRACE_GAP_COLUMNS)
    broken = tmp_path / "broken.parquet"
    trace_with_objective([1.0] * 3).drop(columns=["expected_loss"]).to_parquet(broken)
    with pytest.raises(TraceValidationError, match="expected_loss"):
        rates.read_gap_columns(broken)
    shuffled = tmp_path / "shuffled.parquet"
    trace_with_objective([1.0] * 3).assign(evaluation=[1, 2, 3, 3, 5, 6]).to_parquet(shuffled)
    with pytest.raises(TraceValidationError, match="duplicate evaluation"):
        rates.read_gap_columns(shuffled)


def test_average_gap_counts_a_truncated_last_batch_as_an_iteration() -> None:
    trace = trace_with_objective([3.0, 2.0, 1.0], batch=3)
    trace = validate_trace(trace.iloc[:-2].assign(budget=7), source="test")  # 3 + 3 + 1
    gaps = average_gaps(trace, [1, 3])
    np.testing.assert_allclose(gaps["gap"], [3.0, 2.0])


def test_average_gaps_leave_out_failed_runs() -> None:
    complete = trace_with_objective([3.0, 2.0, 1.0])
    failed = trace_with_objective([5.0], seed=1).assign(status="failed")
    gaps = average_gaps(pd.concat([complete, failed], ignore_index=True), [1, 3])
    assert gaps["seed"].tolist() == [0, 0]
    assert average_gaps(failed, [1, 3]).empty


def test_average_gaps_refuse_runs_without_the_exact_objective() -> None:
    trace = trace_with_objective([1.0] * 5).assign(expected_loss=np.nan)
    with pytest.raises(RateCheckError, match="--record-expected-loss"):
        average_gaps(trace, [1, 5])


def test_average_gaps_refuse_runs_shorter_than_the_largest_t() -> None:
    with pytest.raises(RateCheckError, match=r"has 5 iterations, fewer than the largest T = 6"):
        average_gaps(trace_with_objective([1.0] * 5), [1, 6])


def test_average_gaps_refuse_an_objective_below_the_optimum() -> None:
    with pytest.raises(RateCheckError, match="below J\\*"):
        average_gaps(trace_with_objective([1.0, 0.5]), [1, 2], {RUN: RunReference(0.75)})


def test_average_gaps_refuse_a_grid_of_one_t() -> None:
    with pytest.raises(RateCheckError, match="at least two distinct"):
        average_gaps(trace_with_objective([1.0] * 5), [5])


# --- the fit ------------------------------------------------------------------------


def test_fit_is_exact_on_noiseless_power_laws() -> None:
    t, d = np.meshgrid(np.array(ITERATIONS, float), np.array(DIMS, float))
    fit = fit_power_law(t.ravel(), d.ravel(), 0.7 * t.ravel() ** -0.8 * d.ravel() ** 1.3)
    assert fit.t_exponent == pytest.approx(-0.8, abs=1e-12)
    assert fit.d_exponent == pytest.approx(1.3, abs=1e-12)
    assert fit.intercept == pytest.approx(np.log(0.7), abs=1e-12)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("a", "b"), [(-0.5, 2.0), (-1.0, 0.5), (-0.2, 3.0)])
def test_fit_recovers_known_exponents_from_noisy_data(a: float, b: float) -> None:
    gaps = synthetic_gaps(a, b, noise=0.3, seeds=10, seed=7)
    verdict = rate_verdicts(gaps, [RateCheck("casbo-decay", "sphere", "claim")], RULE).iloc[0]
    assert verdict["a_hat"] == pytest.approx(a, abs=0.05)
    assert verdict["b_hat"] == pytest.approx(b, abs=0.05)
    # The upper limits sit above the estimates, by about the noise's standard error.
    assert verdict["a_hat"] < verdict["a_ucl"] < verdict["a_hat"] + 0.1
    assert verdict["b_hat"] < verdict["b_ucl"] < verdict["b_hat"] + 0.1


def test_bootstrap_is_seeded_and_widens_with_the_noise() -> None:
    quiet, loud = synthetic_gaps(-0.5, 2.0, noise=0.05), synthetic_gaps(-0.5, 2.0, noise=0.5)
    rng = np.random.default_rng
    first = rates.bootstrap_exponents(loud, rng(3), 400)
    np.testing.assert_array_equal(first, rates.bootstrap_exponents(loud, rng(3), 400))
    spread_quiet = rates.bootstrap_exponents(quiet, rng(3), 400)[:, 1].std()
    assert first[:, 1].std() > 3.0 * spread_quiet


# --- the verdict --------------------------------------------------------------------


def _verdict(gaps: pd.DataFrame, rule: RateRule = RULE) -> pd.Series:
    return rate_verdicts(gaps, [RateCheck("casbo-decay", "sphere", "claim")], rule).iloc[0]


def test_verdict_passes_a_gap_that_decays_faster_and_grows_slower_than_the_bound() -> None:
    verdict = _verdict(synthetic_gaps(-0.7, 1.5))
    assert verdict["verdict"] == "pass", verdict["reason"]
    assert min(verdict["slack_t"], verdict["slack_d"], verdict["slack_bound"]) >= 0
    assert verdict["reason"].startswith("all three hold")


def test_verdict_fails_a_gap_that_decays_like_t_to_the_minus_one_fifth() -> None:
    verdict = _verdict(synthetic_gaps(-0.2, 1.0))
    assert verdict["verdict"] == "fail"
    assert verdict["slack_t"] < 0
    assert "T-exponent" in verdict["reason"]


def test_verdict_fails_a_gap_that_grows_like_d_cubed() -> None:
    verdict = _verdict(synthetic_gaps(-0.6, 3.0))
    assert verdict["verdict"] == "fail"
    assert verdict["slack_t"] >= 0 > verdict["slack_d"]
    assert "d-exponent" in verdict["reason"]
    assert verdict["control_ok"]  # a claim is no control


def test_verdict_fails_when_the_constant_fitted_at_the_smallest_cell_is_exceeded() -> None:
    # a = -0.45 and b = 2.1 pass the slope conditions within their tolerances, but then
    # R(d_max, T_max) / (C d_max^2 / sqrt(T_max)) = 10^0.1 * 100^0.05 = 1.58: above a factor 1.
    gaps = synthetic_gaps(-0.45, 2.1, noise=0.02)
    verdict = _verdict(gaps, RateRule(0.1, 0.25, bound_factor=1.0, n_resamples=500))
    assert verdict["slack_t"] >= 0 and verdict["slack_d"] >= 0
    assert verdict["bound_ratio"] == pytest.approx(10**0.1 * 100**0.05, rel=0.05)
    assert verdict["slack_bound"] < 0
    assert verdict["verdict"] == "fail"
    assert "bound C d^2/sqrt(T)" in verdict["reason"]
    assert _verdict(gaps, RateRule(0.1, 0.25, bound_factor=2.0, n_resamples=500))["verdict"] == (
        "pass"
    )


def test_the_tolerance_is_what_the_limit_is_compared_with() -> None:
    gaps = synthetic_gaps(-0.45, 1.0, noise=0.05)
    assert _verdict(gaps, RateRule(0.0, 0.25, 2.0, n_resamples=500))["verdict"] == "fail"
    assert _verdict(gaps, RateRule(0.1, 0.25, 2.0, n_resamples=500))["verdict"] == "pass"


def test_the_non_adaptive_control_fails_on_a_real_short_run() -> None:
    # The random sampler's law is N(0, I) forever: J(theta_t) never moves, so R_T is constant
    # in T and the control fails by construction (slope 0 at every d, flat, never steepening).
    traces = pd.concat(
        [
            run_job(
                Job(
                    optimizer="random",
                    problem="sphere",
                    dim=d,
                    seeds=(0, 1, 2),
                    budget=80,
                    n_steps=2,
                    scoring="cumulative",
                    options={"batch_size": 4},
                    fresh_samples=4,
                    record_expected_loss=True,
                )
            )
            for d in (2, 4, 8)
        ],
        ignore_index=True,
    )
    gaps = average_gaps(traces, [2, 5, 10, 20])
    check = RateCheck("random", "sphere", "control")
    verdict = rate_verdicts(gaps, [check], RULE).iloc[0]
    assert verdict["expectation"] == "must-fail"
    assert verdict["verdict"] == "fail"
    assert verdict["a_hat"] == pytest.approx(0.0, abs=1e-9)
    assert verdict["flat_dims"] == "2,4,8"
    assert verdict["control_ok"]


def test_the_mean_only_control_fails_above_its_floor_on_a_real_short_run(tmp_path: Path) -> None:
    # CASBO with its covariance frozen: J(theta_t) >= the frozen-law floor, which the runner
    # records per repetition; so R_T >= floor at every T, and R_T flattens toward it.
    paths = []
    for d in (2, 4):
        records: dict[str, dict[str, object]] = {}
        job = Job(
            optimizer="casbo-mean-only",
            problem="sphere",
            dim=d,
            seeds=(0, 1),
            budget=480,
            n_steps=2,
            scoring="cumulative",
            options={"step_schedule": "inverse_sqrt"},
            fresh_samples=4,
            record_expected_loss=True,
        )
        trace = run_job(job, records)
        # What the rate check reads of the runner's per-repetition records.
        kept = {"optimal_loss", "frozen_law_floor"}
        repetitions = {
            seed: {k: v for k, v in r.items() if k in kept} for seed, r in records.items()
        }
        paths.append(write_trace(trace, tmp_path / f"d{d}.parquet", {"repetitions": repetitions}))
    gaps = average_gaps_of_files(paths, [3, 10, 30, 60], read_provenance)
    assert (gaps["floor"] > 0).all()
    assert (gaps["gap"] >= gaps["floor"] * (1 - 1e-9)).all()
    results = _judge(gaps, RateCheck("casbo-mean-only", "sphere", "control"))
    verdict = results.verdicts.iloc[0]
    assert verdict["verdict"] == "fail"
    assert verdict["floor_ratio"] >= 1.0
    assert (results.local_slopes["floor_ratio"] >= 1.0).all()


# --- local slopes and the three verdicts --------------------------------------------

CLAIM = RateCheck("casbo-decay", "sphere", "claim")


def test_local_slopes_are_least_squares_slopes_over_the_last_two_decades() -> None:
    # log R = log 3 + log d - 0.02 (log T)^2: the local slope -0.04 log T keeps steepening.
    gaps = synthetic_gaps(0.0, 1.0, noise=0.0, iterations=LONG, curvature=-0.02)
    slopes = _judge(gaps, CLAIM).local_slopes
    x = np.log(np.asarray(LONG, dtype=np.float64))
    last = np.polyfit(x[-3:], -0.02 * x[-3:] ** 2, 1)[0]  # T = 3000, 10000, 30000
    previous = np.polyfit(x[-5:-2], -0.02 * x[-5:-2] ** 2, 1)[0]  # T = 300, 1000, 3000
    assert slopes["last_T"].unique().tolist() == ["3000,10000,30000"]
    assert slopes["prev_T"].unique().tolist() == ["300,1000,3000"]
    np.testing.assert_allclose(slopes["slope_last"], last, atol=1e-9)
    np.testing.assert_allclose(slopes["slope_prev"], previous, atol=1e-9)
    np.testing.assert_allclose(slopes["change"], last - previous, atol=1e-9)
    assert slopes["steepening"].all() and not slopes["settled"].any()
    # The same curvature upside down flattens: the slope rises from decade to decade.
    flattening = _judge(
        synthetic_gaps(-0.6, 1.0, noise=0.0, iterations=LONG, curvature=0.02), CLAIM
    ).local_slopes
    assert (flattening["change"] > 0).all() and not flattening["steepening"].any()


def test_steepening_needs_the_whole_interval_of_the_change_below_zero() -> None:
    gaps = synthetic_gaps(0.0, 1.0, noise=0.03, iterations=LONG, curvature=-0.02)
    slopes = _judge(gaps, CLAIM).local_slopes
    assert (slopes["change_high"] < 0).all() and slopes["steepening"].all()
    loud = synthetic_gaps(0.0, 1.0, noise=1.5, seeds=4, iterations=LONG, curvature=-0.002)
    noisy = _judge(loud, CLAIM).local_slopes
    assert (noisy["steepening"] == ((noisy["change"] < 0) & (noisy["change_high"] < 0))).all()
    assert (noisy["change_low"] < 0).any() and not noisy["steepening"].all()


def test_a_decade_with_fewer_than_two_grid_points_has_no_slope() -> None:
    results = _judge(synthetic_gaps(-0.2, 1.0, iterations=(10, 300)), CLAIM)
    slopes, verdict = results.local_slopes, results.verdicts.iloc[0]
    assert slopes["last_T"].eq("").all() and slopes["slope_last"].isna().all()
    assert not slopes["steepening"].any()
    assert verdict["verdict"] == "fail"  # steepening cannot be shown
    assert verdict["flat_dims"] == "2,5,10,20"


def test_no_positive_evidence_while_every_unsettled_slope_still_steepens() -> None:
    # Global T-exponent about -0.23 (fails), bound within its factor (b = 1 leaves room),
    # last-decade slope about -0.37 (misses -0.4) and still steepening at every d.
    gaps = synthetic_gaps(0.0, 1.0, noise=0.03, iterations=LONG, curvature=-0.02)
    verdict = _judge(gaps, CLAIM).verdicts.iloc[0]
    assert verdict["verdict"] == RATE_NO_EVIDENCE, verdict["reason"]
    assert verdict["slack_t"] < 0 <= verdict["slack_bound"]
    assert verdict["steepening_dims"] == "2,5,10,20" and verdict["flat_dims"] == ""
    assert "still steepening" in verdict["reason"]


def test_fail_when_the_slope_has_flattened_above_the_limit() -> None:
    gaps = synthetic_gaps(-0.6, 1.0, noise=0.03, iterations=LONG, curvature=0.02)
    verdict = _judge(gaps, CLAIM).verdicts.iloc[0]
    assert verdict["verdict"] == "fail"
    assert verdict["slack_t"] < 0 <= verdict["slack_bound"]
    assert verdict["flat_dims"] == "2,5,10,20"
    assert "not shown to steepen at d = 2,5,10,20" in verdict["reason"]


def test_a_floor_control_that_converged_fails_and_behaved() -> None:
    results = _judge(floor_gaps(excess=0.5), RateCheck("casbo-mean-only", "sphere", "control"))
    verdict = results.verdicts.iloc[0]
    assert verdict["expectation"] == "must-fail" and verdict["verdict"] == "fail"
    assert 1.0 <= verdict["floor_ratio"] <= 1.1
    assert verdict["control_ok"]
    assert results.local_slopes["floor"].tolist() == [2.0, 5.0, 10.0, 20.0]
    assert verdict["floor_dim"] in DIMS and verdict["floor"] == verdict["floor_dim"]
    assert "frozen-law floor" in verdict["reason"]


def test_a_floor_control_still_above_its_floor_fails_and_is_reported_as_not_there() -> None:
    # The current gap at T = 300 is about 1.3 x the floor: the control has not converged.
    verdict = _judge(
        floor_gaps(excess=10.0), RateCheck("casbo-mean-only", "sphere", "control")
    ).verdicts.iloc[0]
    assert verdict["verdict"] == "fail"
    assert verdict["floor_ratio"] > 1.1
    assert verdict["control_ok"] and not verdict["floor_reached"]


def test_a_floor_control_below_its_floor_is_flagged() -> None:
    gaps = floor_gaps(excess=0.5)
    gaps["current_gap"] *= 0.5  # below any law with the frozen covariance: a wrong floor
    verdict = _judge(gaps, RateCheck("casbo-mean-only", "sphere", "control")).verdicts.iloc[0]
    assert verdict["floor_ratio"] < 1.0
    assert not verdict["control_ok"]


def test_a_must_fail_control_that_passes_is_flagged() -> None:
    gaps = synthetic_gaps(-0.7, 1.5, method="random")
    verdict = _judge(gaps, RateCheck("random", "sphere", "control")).verdicts.iloc[0]
    assert verdict["verdict"] == "pass"
    assert not verdict["control_ok"]


# --- calibration -------------------------------------------------------------------


def test_calibration_passes_steeper_true_laws_more_often() -> None:
    rule = RateRule(0.1, 0.25, 2.0, n_resamples=200, calibration_replicates=40)
    gaps = synthetic_gaps(-0.5, 2.0, noise=0.5, seeds=5)
    calibration = _judge(gaps, CLAIM, rule).calibration
    assert len(calibration) == 9 and (calibration["replicates"] == 40).all()
    table = calibration.set_index(["t_exponent", "d_exponent"])
    for b in (1.5, 2.0, 3.0):
        assert table.loc[(-0.7, b), "share_pass"] >= table.loc[(-0.3, b), "share_pass"]
    assert table.loc[(-0.7, 2.0), "share_pass"] > table.loc[(-0.3, 2.0), "share_pass"]
    assert table.loc[(-0.7, 2.0), "share_pass"] > 0.8
    pd.testing.assert_frame_equal(calibration, _judge(gaps, CLAIM, rule).calibration)


def test_calibration_covers_claims_only_and_can_be_switched_off() -> None:
    rule = RateRule(0.1, 0.25, 2.0, n_resamples=200, calibration_replicates=10)
    gaps = synthetic_gaps(-0.5, 2.0, method="random")
    assert _judge(gaps, RateCheck("random", "sphere", "control"), rule).calibration.empty
    claim = RateCheck("random", "sphere", "claim")
    assert len(_judge(gaps, claim, rule).calibration) == 9
    assert _judge(gaps, claim, RULE).calibration.empty


def test_roles_and_expectations() -> None:
    assert RateCheck("m", "p", "claim").expectation == "pass"
    assert RateCheck("m", "p", "control").expectation == "must-fail"
    assert RateCheck("m", "p", "control", "may-fail").expectation == "may-fail"
    assert RateCheck("m", "p", "observation").expectation == "none"
    with pytest.raises(RateCheckError, match="unknown role 'baseline'"):
        RateCheck("m", "p", "baseline")
    with pytest.raises(RateCheckError, match="unknown expectation 'fail'"):
        RateCheck("m", "p", "control", "fail")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"t_tolerance": -0.1}, "t_tolerance must be"),
        ({"bound_factor": 0.5}, "bound_factor must be"),
        ({"confidence": 1.0}, "confidence must lie"),
        ({"n_resamples": 10}, "n_resamples must be"),
        ({"steepening_confidence": 0.3}, "steepening_confidence must lie"),
        ({"floor_tolerance": -0.1}, "floor_tolerance must be"),
        ({"calibration_replicates": -1}, "calibration_replicates must be"),
        ({"calibration_t_exponents": ()}, "calibration_t_exponents must list"),
        ({"calibration_d_exponents": (2.0, 2.0)}, "must not repeat"),
    ],
)
def test_rule_rejects_impossible_settings(arguments: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"t_tolerance": 0.1, "d_tolerance": 0.25, "bound_factor": 2.0}
    settings.update(arguments)
    with pytest.raises(RateCheckError, match=message):
        RateRule(**settings)


def test_verdicts_need_checks_with_traces_each_given_once() -> None:
    gaps = synthetic_gaps(-0.5, 2.0)
    with pytest.raises(RateCheckError, match="at least one rate check"):
        rate_verdicts(gaps, [], RULE)
    check = RateCheck("casbo-decay", "sphere", "claim")
    with pytest.raises(RateCheckError, match="given twice"):
        rate_verdicts(gaps, [check, check], RULE)
    with pytest.raises(RateCheckError, match="no traces of that method"):
        rate_verdicts(gaps, [RateCheck("casbo-decay", "ellipsoid", "claim")], RULE)


def test_a_seed_missing_at_one_d_is_refused() -> None:
    gaps = synthetic_gaps(-0.5, 2.0)
    gaps = gaps[~((gaps["d"] == 5) & (gaps["seed"] == 0) & (gaps["T"] == 300))]
    with pytest.raises(RateCheckError, match="at d=5 some seeds lack some T"):
        _verdict(gaps)


# --- schemas ------------------------------------------------------------------------


def test_verdict_schema_rejects_inconsistent_rows() -> None:
    verdicts = rate_verdicts(
        synthetic_gaps(-0.2, 1.0), [RateCheck("casbo-decay", "sphere", "claim")], RULE
    )
    with pytest.raises(ClaimsValidationError, match="verdict must follow the rule"):
        validate_verdicts(verdicts.assign(verdict="pass"))
    with pytest.raises(ClaimsValidationError, match="verdict must follow the rule"):
        validate_verdicts(verdicts.assign(verdict=RATE_NO_EVIDENCE))  # flat_dims is not ""
    with pytest.raises(ClaimsValidationError, match="control_ok must be false exactly"):
        validate_verdicts(verdicts.assign(control_ok=False))
    with pytest.raises(ClaimsValidationError, match="given together"):
        validate_verdicts(verdicts.assign(floor=1.0))
    with pytest.raises(ClaimsValidationError, match="slack_t must equal a_limit - a_ucl"):
        validate_verdicts(verdicts.assign(slack_t=1.0))
    with pytest.raises(ClaimsValidationError, match="column 'role'"):
        validate_verdicts(verdicts.assign(role="baseline"))
    with pytest.raises(ClaimsValidationError, match="missing column"):
        validate_verdicts(verdicts.drop(columns=["reason"]))


def test_local_slope_and_calibration_schemas_reject_inconsistent_rows() -> None:
    rule = RateRule(0.1, 0.25, 2.0, n_resamples=200, calibration_replicates=10)
    results = _judge(synthetic_gaps(-0.5, 2.0), CLAIM, rule)
    slopes = results.local_slopes
    with pytest.raises(ClaimsValidationError, match="steepening must be true exactly"):
        validate_local_slopes(slopes.assign(steepening=~slopes["steepening"]))
    with pytest.raises(ClaimsValidationError, match="change must equal"):
        validate_local_slopes(slopes.assign(change=slopes["change"] + 0.1))
    with pytest.raises(ClaimsValidationError, match="slope_prev must be given exactly when"):
        validate_local_slopes(slopes.assign(slope_prev=np.nan))
    with pytest.raises(ClaimsValidationError, match="must sum to 1"):
        validate_calibration(results.calibration.assign(share_pass=1.0))


def test_gap_schema_rejects_non_positive_gaps_and_duplicates() -> None:
    gaps = synthetic_gaps(-0.5, 2.0)
    with pytest.raises(ClaimsValidationError, match="column 'gap' must be > 0"):
        validate_gaps(gaps.assign(gap=0.0))
    with pytest.raises(ClaimsValidationError, match="must appear on one row only"):
        validate_gaps(pd.concat([gaps, gaps.iloc[:1]], ignore_index=True))


# --- outputs and the command line ----------------------------------------------------


def test_outputs_round_trip_and_figures_are_written(tmp_path: Path) -> None:
    gaps = pd.concat(
        [synthetic_gaps(-0.7, 1.5), synthetic_gaps(0.0, 1.0, method="random"), floor_gaps(0.5)],
        ignore_index=True,
    )
    checks = [
        RateCheck("casbo-decay", "sphere", "claim"),
        RateCheck("random", "sphere", "control"),
        RateCheck("casbo-mean-only", "sphere", "control"),
    ]
    rule = RateRule(0.1, 0.25, 2.0, n_resamples=200, calibration_replicates=10)
    results = judge_rate_checks(gaps, checks, rule)
    written = rates.write_rate_outputs(results, gaps, tmp_path / "rc", tmp_path / "tables")
    assert {path.name for path in written} == {
        "verdicts.csv",
        "local_slopes.csv",
        "calibration.csv",
        "gaps.csv",
        "rate_checks.csv",
        "rate_checks.md",
        "rate_checks.tex",
        "rate_checks.html",
    }
    verdicts = results.verdicts
    pd.testing.assert_frame_equal(rates.read_verdicts(tmp_path / "rc" / "verdicts.csv"), verdicts)
    markdown = (tmp_path / "tables" / "rate_checks.md").read_text()
    assert "does not depend on score normalization" in markdown
    assert "random on sphere (control): fail" in markdown
    assert "## Local slopes" in markdown and "## Calibration" in markdown
    assert (tmp_path / "tables" / "rate_checks.tex").read_text().count(r"\begin{tabular}") == 3
    page = (tmp_path / "tables" / "rate_checks.html").read_text()
    assert page.count("<table>") == 3 and "random on sphere (control): fail" in page
    assert verdicts["floor_dim"].notna().tolist() == [False, False, True]
    figures = rate_figures.make_rate_figures(
        gaps, verdicts.iloc[1:2], results.local_slopes, tmp_path / "figures"
    )
    assert [path.name for path in figures] == [
        "rate_random_sphere_K3_cumulative.pdf",
        "rate_random_sphere_K3_cumulative.png",
    ]
    assert all(path.stat().st_size > 1000 for path in figures)


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Trace files of a decaying method and a flat one at d = 2 and 4, three seeds each."""
    folder = tmp_path_factory.mktemp("rate_traces")
    paths = []
    for d in (2, 4):
        for method, decay in (("casbo-decay", 0.9), ("random", 0.0)):
            runs = [
                trace_with_objective(
                    (1.0 + 0.1 * seed) * d**2 * np.arange(1, 31) ** -decay,
                    method=method,
                    d=d,
                    seed=seed,
                )
                for seed in range(3)
            ]
            path = folder / f"{method}_d{d}.parquet"
            write_trace(pd.concat(runs, ignore_index=True), path, {"test": True})
            paths.append(path)
    return paths


def test_command_writes_verdicts_tables_and_figures(
    tmp_path: Path, trace_files: list[Path]
) -> None:
    arguments = [
        "rates",
        "--out-dir",
        str(tmp_path / "rc"),
        "--table-dir",
        str(tmp_path / "tables"),
        "--figure-dir",
        str(tmp_path / "figures"),
        "--iterations",
        "3,10,30",
        "--check",
        "casbo-decay:sphere:claim",
        "--check",
        "random:sphere:control",
        "--t-tolerance",
        "0.1",
        "--d-tolerance",
        "0.25",
        "--bound-factor",
        "2",
        "--resamples",
        "200",
        "--steepening-confidence",
        "0.9",
        "--floor-tolerance",
        "0.2",
        "--calibration-replicates",
        "10",
        "--calibration-t-exponents=-0.3,-0.7",
        "--calibration-d-exponents=2",
    ]
    assert main([*arguments, *map(str, trace_files)]) == 0
    verdicts = rates.read_verdicts(tmp_path / "rc" / "verdicts.csv")
    assert verdicts.set_index("method")["verdict"].to_dict() == {
        "casbo-decay": "pass",
        "random": "fail",
    }
    assert verdicts["steepening_confidence"].eq(0.9).all()
    assert verdicts["floor_tolerance"].eq(0.2).all()
    calibration = pd.read_csv(tmp_path / "rc" / "calibration.csv")
    assert sorted(calibration["t_exponent"]) == [-0.7, -0.3]
    assert calibration["replicates"].eq(10).all()
    assert (tmp_path / "rc" / "local_slopes.csv").is_file()
    assert (tmp_path / "tables" / "rate_checks.tex").is_file()
    assert len(list((tmp_path / "figures").glob("*.pdf"))) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--check", "casbo-decay:sphere"], "malformed --check"),
        (["--check", "casbo-decay:sphere:boss"], "unknown role 'boss'"),
        (["--variant", "casbo-decay"], "malformed --variant"),
        (["--check", "casbo-decay:ellipsoid:claim"], "no traces of that method"),
        (["--calibration-t-exponents=-0.3,x"], "comma-separated numbers"),
        (["--floor-tolerance", "-1"], "--floor-tolerance"),
    ],
)
def test_command_reports_bad_checks_in_one_line(
    tmp_path: Path,
    trace_files: list[Path],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    arguments = [
        "rates",
        "--out-dir",
        str(tmp_path / "rc"),
        "--iterations",
        "3,30",
        "--t-tolerance",
        "0.1",
        "--d-tolerance",
        "0.25",
        "--bound-factor",
        "2",
        *extra,
    ]
    assert main([*arguments, *map(str, trace_files)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert message in error[0]


def test_command_refuses_a_grid_longer_than_the_runs(
    tmp_path: Path, trace_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["rates", "--out-dir", str(tmp_path), "--iterations", "3,100"]
    rule = ["--t-tolerance", "0.1", "--d-tolerance", "0.25", "--bound-factor", "2"]
    assert main([*arguments, *rule, *map(str, trace_files)]) == 2
    assert "fewer than the largest T = 100" in capsys.readouterr().err


def test_command_refuses_a_run_given_twice(
    tmp_path: Path, trace_files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["rates", "--out-dir", str(tmp_path), "--iterations", "3,30"]
    rule = ["--t-tolerance", "0.1", "--d-tolerance", "0.25", "--bound-factor", "2"]
    files = [*map(str, trace_files), str(trace_files[0])]
    assert main([*arguments, *rule, *files]) == 2
    assert "must appear on one row only" in capsys.readouterr().err
