"""Input functions of rates.smk (included by it); the rate check's config is checked by casbo_bench.config_checks."""

import os

RATE = config_block("rate_check")
RATE_METHODS = {method["label"]: method for method in (RATE or {}).get("methods", [])}
RATE_DIR = f"{RESULTS}/rate_checks"


def rate_checks():
    """Every judged (method, problem, role, expectation, variant_of), variants' included.

    A variant (``variant_of: M``) is judged wherever M is judged as a claim, as a claim.
    """
    checks = [
        (check["method"], problem, check["role"], check.get("expectation", ""), "")
        for check in RATE["checks"]
        for problem in check["problems"]
    ]
    for label, method in RATE_METHODS.items():
        of = method.get("variant_of")
        if of is not None:
            checks += [
                (label, problem, "claim", "", of)
                for owner, problem, role, _, _ in list(checks)
                if owner == of and role == "claim"
            ]
    return checks


def _rate_jobs():
    """Register every run of the rate check (checks x d x seed jobs); their traces. Every
    method of the check gets the budget of its d, so a method with smaller batches (the
    random control's 6) runs at least as many iterations as CASBO's population allows."""
    if RATE is None:
        return []
    return [
        path
        for method, problem, *_ in rate_checks()
        for d, budget in zip(RATE["dims"], RATE["budgets"])
        for path in add_jobs(
            "rate_checks/raw",
            RATE_METHODS[method],
            RATE["seeds"],
            problem,
            d,
            RATE["steps"],
            RATE["scoring"],
            budget=budget,
            fresh_samples=config["fresh_samples"],
            extra=("--record-expected-loss",),
            runtime=30,
        )
    ]


RATE_TRACES = _rate_jobs()


def _numbers(values):
    return ",".join(str(value) for value in values)


def rate_check_arguments(wildcards=None):
    """The `casbo-bench rates` arguments, one list item per shell word (the rule quotes each
    with :q): the T grid, the checks and the pre-registered rule. Its defaults are filled in
    by the config schema, so every key is read as given."""
    verdict_rule = RATE["rule"]
    calibration = verdict_rule["calibration"]
    checks = [
        word
        for method, problem, role, expectation, _ in rate_checks()
        for word in ("--check", ":".join(filter(None, (method, problem, role, expectation))))
    ]
    variants = [
        word
        for label, method in RATE_METHODS.items()
        if method.get("variant_of") is not None
        for word in ("--variant", f"{label}={method['variant_of']}")
    ]
    return [
        *("--iterations", _numbers(RATE["iterations"]), *checks, *variants),
        *("--t-tolerance", verdict_rule["t_tolerance"]),
        *("--d-tolerance", verdict_rule["d_tolerance"]),
        *("--bound-factor", verdict_rule["bound_factor"]),
        *("--confidence", verdict_rule["confidence"]),
        *("--resamples", verdict_rule["resamples"], "--seed", verdict_rule["seed"]),
        *("--steepening-confidence", verdict_rule["steepening_confidence"]),
        *("--floor-tolerance", verdict_rule["floor_tolerance"]),
        *("--calibration-replicates", calibration["replicates"]),
        # With '=': the exponents may start with '-', which argparse would take for an option.
        f"--calibration-t-exponents={_numbers(calibration['t_exponents'])}",
        f"--calibration-d-exponents={_numbers(calibration['d_exponents'])}",
    ]


def rate_check_outputs():
    """The rate check's outputs for `rule all` (none without a ``rate_check`` block)."""
    if RATE is None:
        return []
    return [
        f"{RATE_DIR}/verdicts.csv",
        f"{RATE_DIR}/local_slopes.csv",
        f"{RATE_DIR}/calibration.csv",
        f"{RATE_DIR}/gaps.csv",
        *[f"{RESULTS}/tables/rate_checks.{fmt}" for fmt in TABLE_FORMATS],
        f"{FIGURES}/rate_checks",
    ]
