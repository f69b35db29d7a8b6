"""The rate check: average gaps, the log-log fit, the one-sided verdict, outputs, command."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis import rate_figures, rates
from casbo_bench.analysis.rates import (
    RateCheck,
    RateCheckError,
    RateRule,
    average_gaps,
    fit_power_law,
    rate_verdicts,
)
from casbo_bench.cli import main
from casbo_bench.runner import Job, run_job, write_trace
from casbo_bench.schemas.claims import (
    GAP_COLUMNS,
    ClaimsValidationError,
    validate_gaps,
    validate_verdicts,
)
from casbo_bench.schemas.trace import TRACE_COLUMNS, validate_trace

DIMS = (2, 5, 10, 20)
ITERATIONS = (3, 10, 30, 100, 300)
RULE = RateRule(t_tolerance=0.1, d_tolerance=0.25, bound_factor=2.0, n_resamples=500)


def synthetic_gaps(
    t_exponent: float,
    d_exponent: float,
    noise: float = 0.2,
    seeds: int = 8,
    method: str = "casbo-decay",
    problem: str = "sphere",
    seed: int = 0,
) -> pd.DataFrame:
    """``R = 3 d^b T^a`` times a seeded log-normal factor per (seed, d, T), as gap rows."""
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
            "gap": 3.0 * d**d_exponent * t**t_exponent * rng.lognormal(0.0, noise),
            "optimal_loss": 0.0,
        }
        for s in range(seeds)
        for d in DIMS
        for t in ITERATIONS
    ]
    return validate_gaps(pd.DataFrame(rows).astype(GAP_COLUMNS))


def trace_with_objective(
    objective: Sequence[float], method: str = "m", d: int = 2, seed: int = 0, batch: int = 2
) -> pd.DataFrame:
    """A valid trace whose batches t = 1..n have ``expected_loss = objective[t - 1]``."""
    n = len(objective) * batch
    iteration = np.repeat(np.arange(len(objective)), batch)
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
            "expected_loss": np.repeat(np.asarray(objective, dtype=np.float64), batch),
            "fresh_sample_loss": 1.0,
            "safeguard_events": 0,
        }
    )
    return validate_trace(frame.astype(TRACE_COLUMNS), source="test")


# --- average gaps -------------------------------------------------------------------


def test_average_gap_is_the_prefix_mean_of_the_objective_minus_the_optimum() -> None:
    objective = 1.0 / np.arange(1, 21) + 0.5
    gaps = average_gaps(trace_with_objective(objective), [1, 4, 20], lambda *_: 0.5)
    harmonic = np.cumsum(1.0 / np.arange(1, 21))
    np.testing.assert_allclose(gaps["gap"], harmonic[[0, 3, 19]] / [1, 4, 20], rtol=1e-12)
    assert gaps["T"].tolist() == [1, 4, 20]
    assert (gaps["optimal_loss"] == 0.5).all()


def test_average_gap_counts_a_truncated_last_batch_as_an_iteration() -> None:
    trace = trace_with_objective([3.0, 2.0, 1.0], batch=3)
    trace = validate_trace(trace.iloc[:-2].assign(budget=7), source="test")  # 3 + 3 + 1
    gaps = average_gaps(trace, [1, 3])
    np.testing.assert_allclose(gaps["gap"], [3.0, 2.0])


def test_average_gaps_refuse_runs_without_the_exact_objective() -> None:
    trace = trace_with_objective([1.0] * 5).assign(expected_loss=np.nan)
    with pytest.raises(RateCheckError, match="--record-expected-loss"):
        average_gaps(trace, [1, 5])


def test_average_gaps_refuse_runs_shorter_than_the_largest_t() -> None:
    with pytest.raises(RateCheckError, match=r"has 5 iterations, fewer than the largest T = 6"):
        average_gaps(trace_with_objective([1.0] * 5), [1, 6])


def test_average_gaps_refuse_an_objective_below_the_optimum() -> None:
    with pytest.raises(RateCheckError, match="below J\\*"):
        average_gaps(trace_with_objective([1.0, 0.5]), [1, 2], lambda *_: 0.75)


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
    # The random sampler's law is N(0, I) forever: J(theta_t) never moves, R_T is flat.
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
    ],
)
def test_rule_rejects_impossible_settings(arguments: dict[str, float], message: str) -> None:
    settings = {"t_tolerance": 0.1, "d_tolerance": 0.25, "bound_factor": 2.0, **arguments}
    with pytest.raises(RateCheckError, match=message):
        RateRule(**settings)  # type: ignore[arg-type]


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
    with pytest.raises(ClaimsValidationError, match="verdict must be 'pass' exactly when"):
        validate_verdicts(verdicts.assign(verdict="pass"))
    with pytest.raises(ClaimsValidationError, match="slack_t must equal a_limit - a_ucl"):
        validate_verdicts(verdicts.assign(slack_t=1.0))
    with pytest.raises(ClaimsValidationError, match="column 'role'"):
        validate_verdicts(verdicts.assign(role="baseline"))
    with pytest.raises(ClaimsValidationError, match="missing column"):
        validate_verdicts(verdicts.drop(columns=["reason"]))


def test_gap_schema_rejects_non_positive_gaps_and_duplicates() -> None:
    gaps = synthetic_gaps(-0.5, 2.0)
    with pytest.raises(ClaimsValidationError, match="column 'gap' must be > 0"):
        validate_gaps(gaps.assign(gap=0.0))
    with pytest.raises(ClaimsValidationError, match="must appear on one row only"):
        validate_gaps(pd.concat([gaps, gaps.iloc[:1]], ignore_index=True))


# --- outputs and the command line ----------------------------------------------------


def test_outputs_round_trip_and_figures_are_written(tmp_path: Path) -> None:
    gaps = pd.concat(
        [synthetic_gaps(-0.7, 1.5), synthetic_gaps(0.0, 1.0, method="random")],
        ignore_index=True,
    )
    checks = [
        RateCheck("casbo-decay", "sphere", "claim"),
        RateCheck("random", "sphere", "control"),
    ]
    verdicts = rate_verdicts(gaps, checks, RULE)
    written = rates.write_rate_outputs(verdicts, gaps, tmp_path / "rc", tmp_path / "tables")
    assert {path.name for path in written} == {
        "verdicts.csv",
        "gaps.csv",
        "rate_checks.csv",
        "rate_checks.md",
        "rate_checks.tex",
    }
    pd.testing.assert_frame_equal(rates.read_verdicts(tmp_path / "rc" / "verdicts.csv"), verdicts)
    markdown = (tmp_path / "tables" / "rate_checks.md").read_text()
    assert "does not depend on score normalization" in markdown
    assert "random on sphere (control)" in markdown
    figures = rate_figures.make_rate_figures(gaps, verdicts.iloc[1:], tmp_path / "figures")
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
    ]
    assert main([*arguments, *map(str, trace_files)]) == 0
    verdicts = rates.read_verdicts(tmp_path / "rc" / "verdicts.csv")
    assert verdicts.set_index("method")["verdict"].to_dict() == {
        "casbo-decay": "pass",
        "random": "fail",
    }
    assert (tmp_path / "tables" / "rate_checks.tex").is_file()
    assert len(list((tmp_path / "figures").glob("*.pdf"))) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--check", "casbo-decay:sphere"], "malformed --check"),
        (["--check", "casbo-decay:sphere:boss"], "unknown role 'boss'"),
        (["--variant", "casbo-decay"], "malformed --variant"),
        (["--check", "casbo-decay:ellipsoid:claim"], "no traces of that method"),
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
