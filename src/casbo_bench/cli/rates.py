"""``casbo-bench rates``: the O(d^2/sqrt(T)) rate check on traces with the exact J(theta_t)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from casbo_bench.cli.common import (
    UsageError,
    add_title_prefix,
    integer_at_least,
    iteration_grid,
    non_negative_number,
    number_list,
    positive_number,
    probability,
    writable_folder,
)

NAME = "rates"
HELP = "Judge the O(d^2/sqrt(T)) rate on traces that record the exact expected loss."
DESCRIPTION = (
    "Judge the O(d^2/sqrt(T)) rate on traces with the exact expected loss: average gaps R_T, a "
    "log-log fit in T and d with seed-bootstrap upper limits, local slopes over the last two "
    "decades of T per d, a verdict per check (pass, no positive evidence at this horizon, fail) "
    "and the rule's calibration on synthetic power laws (docs/method.md section 6)."
)
EXAMPLES = (
    "casbo-bench rates --out-dir results/default/rate_checks --iterations 3,10,30,100,300 "
    "--t-tolerance 0.1 --d-tolerance 0.25 --bound-factor 2 "
    "results/default/rate_checks/raw/*/*.parquet",
    "casbo-bench rates --out-dir rc --table-dir tables --figure-dir figures --iterations 3,30,300 "
    "--check casbo-decay:sphere:claim --check random:sphere:control --check "
    "casbo-mean-only:sphere:control --check casbo-decay:rastrigin:control:may-fail --t-tolerance "
    "0.1 --d-tolerance 0.25 --bound-factor 2 --resamples 2000 --seed 0 --steepening-confidence "
    "0.95 --floor-tolerance 0.1 --calibration-replicates 200 "
    "--calibration-t-exponents=-0.3,-0.5,-0.7 --calibration-d-exponents=1.5,2,3 traces/*.parquet",
)

logger = logging.getLogger(__name__)


def _rate_checks(texts: Sequence[str], variants: Sequence[str], rates: Any) -> list[Any]:
    """``--check`` and ``--variant`` texts as :class:`~casbo_bench.analysis.rates.RateCheck`."""
    variant_of: dict[str, str] = {}
    for text in variants:
        label, separator, of = text.partition("=")
        if not separator or not label or not of:
            raise UsageError(f"malformed --variant {text!r}; write LABEL=OF, e.g. casbo-rank=casbo")
        variant_of[label] = of
    checks = []
    for text in texts:
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise UsageError(
                f"malformed --check {text!r}; write METHOD:PROBLEM:ROLE[:EXPECTATION], e.g. "
                f"random:sphere:control"
            )
        method, problem, role = parts[:3]
        expectation = parts[3] if len(parts) == 4 else ""
        checks.append(
            rates.RateCheck(method, problem, role, expectation, variant_of.get(method, ""))
        )
    return checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir",
        required=True,
        type=writable_folder("rate-check"),
        help="folder of verdicts.csv and gaps.csv",
    )
    parser.add_argument(
        "--table-dir",
        type=writable_folder("table"),
        help="folder of rate_checks.csv, .md and .tex (optional)",
    )
    parser.add_argument(
        "--figure-dir", type=writable_folder("figure"), help="folder of the rate figures (optional)"
    )
    add_title_prefix(parser)
    parser.add_argument(
        "--iterations",
        required=True,
        type=iteration_grid,
        metavar="T,T,...",
        help="the T grid, comma-separated iteration counts (at least two), e.g. 3,10,30,100,300",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="METHOD:PROBLEM:ROLE[:EXPECTATION]",
        help="a check and its role (claim, control, observation) and optionally what a sound "
        "check gives (pass, must-fail, may-fail, none); repeatable (default: every method "
        "and problem of the traces as a claim)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=OF",
        help="mark method LABEL as a robustness variant of method OF (repeatable)",
    )
    parser.add_argument(
        "--t-tolerance",
        required=True,
        type=non_negative_number,
        help="pre-registered: how far above -1/2 the T-exponent's upper limit may lie",
    )
    parser.add_argument(
        "--d-tolerance",
        required=True,
        type=non_negative_number,
        help="pre-registered: how far above 2 the d-exponent's upper limit may lie",
    )
    parser.add_argument(
        "--bound-factor",
        required=True,
        type=positive_number,
        help="pre-registered: how far R_T at the largest d and T may exceed the bound with C "
        "fitted at the smallest (>= 1)",
    )
    parser.add_argument(
        "--confidence",
        type=probability,
        default=0.95,
        help="level of the one-sided upper limits (default 0.95)",
    )
    parser.add_argument(
        "--resamples", type=integer_at_least(100), default=2000, help="bootstrap resamples"
    )
    parser.add_argument(
        "--seed",
        type=integer_at_least(0),
        default=0,
        help="seed of the bootstrap and the calibration (default 0)",
    )
    parser.add_argument(
        "--steepening-confidence",
        type=probability,
        default=0.95,
        help="pre-registered: level of the two-sided intervals of the local slopes; a slope "
        "is still steepening when its change's whole interval lies below 0 (default 0.95)",
    )
    parser.add_argument(
        "--floor-tolerance",
        type=non_negative_number,
        default=0.1,
        help="pre-registered: a mean-only control behaves when J(theta_T) - J* at the largest T "
        "is within [1, 1 + tolerance] times its frozen-law floor (default 0.1)",
    )
    parser.add_argument(
        "--calibration-replicates",
        type=integer_at_least(0),
        default=200,
        help="synthetic gap tables per pair of true exponents (0: no calibration; default 200)",
    )
    parser.add_argument(
        "--calibration-t-exponents",
        type=number_list,
        default=[-0.3, -0.5, -0.7],
        metavar="A,A,...",
        help="true T-exponents of the calibration; write --calibration-t-exponents=-0.3,-0.5 "
        "(with '=': the values start with '-'; default -0.3,-0.5,-0.7)",
    )
    parser.add_argument(
        "--calibration-d-exponents",
        type=number_list,
        default=[1.5, 2.0, 3.0],
        metavar="B,B,...",
        help="true d-exponents of the calibration (default 1.5,2,3)",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.parquet")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench.analysis import rate_figures, rates
    from casbo_bench.schemas.claims import ClaimsValidationError
    from casbo_bench.traces import read_provenance

    try:
        rule = rates.RateRule(
            t_tolerance=arguments.t_tolerance,
            d_tolerance=arguments.d_tolerance,
            bound_factor=arguments.bound_factor,
            confidence=arguments.confidence,
            n_resamples=arguments.resamples,
            seed=arguments.seed,
            steepening_confidence=arguments.steepening_confidence,
            floor_tolerance=arguments.floor_tolerance,
            calibration_replicates=arguments.calibration_replicates,
            calibration_t_exponents=tuple(arguments.calibration_t_exponents),
            calibration_d_exponents=tuple(arguments.calibration_d_exponents),
        )
        checks = _rate_checks(arguments.check, arguments.variant, rates)
        # J* and the frozen-law floor come from each trace's provenance (older traces: J* = 0).
        gaps = rates.average_gaps_of_files(arguments.files, arguments.iterations, read_provenance)
        if not checks:
            pairs = gaps[["method", "problem"]].drop_duplicates().itertuples(index=False)
            checks = [rates.RateCheck(str(m), str(p), "claim") for m, p in pairs]
        results = rates.judge_rate_checks(gaps, checks, rule)
    except (rates.RateCheckError, ClaimsValidationError) as error:
        raise UsageError(str(error)) from None
    written = rates.write_rate_outputs(results, gaps, arguments.out_dir, arguments.table_dir)
    if arguments.figure_dir is not None:
        written += rate_figures.make_rate_figures(
            gaps,
            results.verdicts,
            results.local_slopes,
            arguments.figure_dir,
            title_prefix=arguments.title_prefix,
        )
    for row in results.verdicts.itertuples(index=False):
        logger.info(
            "%s on %s (%s): %s, a = %.3g (UCL %.3g), b = %.3g (UCL %.3g), control_ok %s",
            row.method,
            row.problem,
            row.role,
            row.verdict,
            row.a_hat,
            row.a_ucl,
            row.b_hat,
            row.b_ucl,
            row.control_ok,
        )
    logger.info("wrote %d files", len(written))
    return 0
