"""Config checks and input functions of rates.smk (included by it)."""

import os

RATE = config.get("rate_check") or None
if RATE is not None and not RATE.get("enabled", True):
    RATE = None  # turned off, e.g. a block inherited from config/config.yaml
RATE_METHODS = {method["label"]: method for method in (RATE or {}).get("methods", [])}
RATE_DIR = f"{RESULTS}/rate_checks"
RATE_KEYS = ["steps", "scoring", "dims", "budgets", "iterations", "seeds", "methods", "checks"]


def _check_rate_config():
    """Cross-field checks of ``rate_check`` the JSON schema cannot express, each with its fix."""
    if RATE is None:
        return
    missing = [key for key in [*RATE_KEYS, "rule"] if key not in RATE]
    if missing:
        raise ValueError(
            f"config: rate_check lacks {missing}; give them, or write rate_check: {{enabled: "
            f"false}} for no rate check"
        )
    if len(RATE_METHODS) != len(RATE["methods"]):
        raise ValueError("config: two rate_check methods share a label; give each a unique label")
    if len(RATE["budgets"]) != len(RATE["dims"]):
        raise ValueError(
            f"config: rate_check.budgets needs one budget per d of rate_check.dims "
            f"({len(RATE['dims'])}); got {len(RATE['budgets'])}"
        )
    for method in RATE["methods"]:
        of = method.get("variant_of")
        if of is not None and of not in RATE_METHODS:
            raise ValueError(
                f"config: rate_check method {method['label']!r} is a variant of unknown "
                f"method {of!r}; define it under rate_check.methods"
            )
    for check in RATE["checks"]:
        if check["method"] not in RATE_METHODS:
            raise ValueError(
                f"config: rate_check.checks names unknown method {check['method']!r}; "
                f"define it under rate_check.methods"
            )
    if "rate_checks" in BENCHMARKS:
        raise ValueError(
            "config: the benchmark name 'rate_checks' is reserved for the rate check's "
            "figures; rename that benchmark group"
        )


_check_rate_config()


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


def rate_seed_chunks():
    seeds, size = RATE["seeds"], config["seeds_per_job"]
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def rate_trace_path(method, problem, d, chunk):
    return f"{RATE_DIR}/raw/{method}/{problem}_d{d}_s{chunk}.parquet"


def rate_traces(wildcards=None):
    """Every trace of the rate check: checks x d x seed jobs."""
    return [
        rate_trace_path(method, problem, d, chunk)
        for method, problem, *_ in rate_checks()
        for d in RATE["dims"]
        for chunk in range(len(rate_seed_chunks()))
    ]


def rate_run_arguments(wildcards):
    """The `casbo-bench run` arguments of one rate-check job, from config."""
    method = RATE_METHODS[wildcards.method]
    budget = RATE["budgets"][RATE["dims"].index(int(wildcards.d))]
    seeds = " ".join(str(seed) for seed in rate_seed_chunks()[int(wildcards.chunk)])
    options = " ".join(
        f"--option {key}={json.dumps(value)}"
        for key, value in sorted(method.get("options", {}).items())
    )
    return (
        f"--method {method['optimizer']} --label {method['label']} {options} "
        f"--problem {wildcards.problem} --dim {wildcards.d} --steps {RATE['steps']} "
        f"--scoring {RATE['scoring']} --seeds {seeds} --budget {budget} "
        f"--fresh-samples {config['fresh_samples']} --record-expected-loss "
        f"--device {config['device']} --config-hash {CONFIG_HASH}"
    )


def rate_check_arguments():
    """The `casbo-bench rates` arguments: the T grid, the checks and the pre-registered rule."""
    verdict_rule = RATE["rule"]
    checks = " ".join(
        f"--check {method}:{problem}:{role}" + (f":{expectation}" if expectation else "")
        for method, problem, role, expectation, _ in rate_checks()
    )
    variants = " ".join(
        f"--variant {label}={method['variant_of']}"
        for label, method in RATE_METHODS.items()
        if method.get("variant_of") is not None
    )
    return (
        f"--iterations {','.join(str(t) for t in RATE['iterations'])} {checks} {variants} "
        f"--t-tolerance {verdict_rule['t_tolerance']} "
        f"--d-tolerance {verdict_rule['d_tolerance']} "
        f"--bound-factor {verdict_rule['bound_factor']} "
        f"--confidence {verdict_rule.get('confidence', 0.95)} "
        f"--resamples {verdict_rule.get('resamples', 2000)} --seed {verdict_rule.get('seed', 0)}"
    )


def rate_check_outputs():
    """The rate check's outputs for `rule all` (none without a ``rate_check`` block)."""
    if RATE is None:
        return []
    return [
        f"{RATE_DIR}/verdicts.csv",
        f"{RATE_DIR}/gaps.csv",
        *[f"{RESULTS}/tables/rate_checks.{fmt}" for fmt in TABLE_FORMATS],
        f"{FIGURES}/rate_checks",
    ]
