"""Config checks and input functions of claims.smk (included by it)."""

import os
from types import SimpleNamespace

CLAIMS = config.get("claims") or None
if CLAIMS is not None and not CLAIMS.get("enabled", True):
    CLAIMS = None  # turned off, e.g. a block inherited from config/config.yaml
VARIANTS = {variant["label"]: variant for variant in (CLAIMS or {}).get("variants", [])}
CLAIMS_RULE_KEYS = ["alpha", "min_seeds", "min_effect", "min_fraction", "rate_min_seeds"]


def _check_claims_config():
    """Cross-field checks of ``claims`` the JSON schema cannot express, each with its fix."""
    if CLAIMS is None:
        return
    missing = [key for key in CLAIMS_RULE_KEYS if key not in CLAIMS]
    if missing:
        raise ValueError(
            f"config: claims lacks {missing} (the pre-registered decision rule); give them, "
            f"or write claims: {{enabled: false}} "
            f"for no ledger"
        )
    if len(VARIANTS) != len(CLAIMS.get("variants", [])):
        raise ValueError("config: two claims variants share a label; give each a unique label")
    clash = sorted(set(VARIANTS) & set(METHODS))
    if clash:
        raise ValueError(
            f"config: claims variant label(s) {clash} are also method labels; a variant "
            f"needs its own label"
        )
    for label, variant in VARIANTS.items():
        if variant["variant_of"] != config["reference"]:
            raise ValueError(
                f"config: claims variant {label!r} is a variant of {variant['variant_of']!r}; "
                f"the ledger re-derives the reference's verdicts, so use variant_of: "
                f"{config['reference']}"
            )
    named = [*CLAIMS.get("variant_benchmarks", [])]
    named += [name for variant in VARIANTS.values() for name in variant.get("benchmarks", [])]
    unknown = sorted(set(named) - set(BENCHMARKS))
    if unknown:
        raise ValueError(
            f"config: claims names unknown benchmark group(s) {unknown}; use one of "
            f"{sorted(BENCHMARKS)}"
        )


_check_claims_config()


def variant_trace_path(benchmark, method, problem, d, K, scoring, chunk):
    return (
        f"{RESULTS}/robustness/raw/{benchmark}/{method}/"
        f"{problem}_d{d}_K{K}_{scoring}_s{chunk}.parquet"
    )


def variant_groups(variant):
    """The benchmark groups a variant runs on: its own list, else variant_benchmarks."""
    return variant.get("benchmarks", CLAIMS.get("variant_benchmarks", []))


def variant_traces(name):
    """Every variant trace of one benchmark group (none where variants do not run)."""
    benchmark = BENCHMARKS[name]
    labels = [label for label, variant in VARIANTS.items() if name in variant_groups(variant)]
    return [
        variant_trace_path(name, label, problem, d, K, scoring, chunk)
        for label, problem, d, K, scoring, chunk in product(
            labels,
            benchmark["problems"],
            benchmark["dims"],
            benchmark["steps"],
            benchmark["scoring"],
            range(len(seed_chunks())),
        )
    ]


def group_traces(name):
    """The benchmark's own traces of group ``name``, then its variants'."""
    return benchmark_traces(SimpleNamespace(benchmark=name)) + variant_traces(name)


def variant_run_arguments(wildcards):
    """The `casbo-bench run` arguments of one variant job: the reference's, other options."""
    benchmark = BENCHMARKS[wildcards.benchmark]
    variant = VARIANTS[wildcards.method]
    caps = benchmark["budget_caps"]
    budget = caps.get(variant["label"], caps.get(variant["variant_of"], benchmark["budget"]))
    seeds = " ".join(str(seed) for seed in seed_chunks()[int(wildcards.chunk)])
    options = " ".join(
        f"--option {key}={json.dumps(value)}"
        for key, value in sorted(variant.get("options", {}).items())
    )
    return (
        f"--method {variant['optimizer']} --label {variant['label']} {options} "
        f"--problem {wildcards.problem} --dim {wildcards.d} --steps {wildcards.K} "
        f"--scoring {wildcards.scoring} --seeds {seeds} --budget {budget} "
        f"--fresh-samples {config['fresh_samples']} --device {config['device']} "
        f"--config-hash {CONFIG_HASH}"
    )


def claims_inputs(wildcards):
    inputs = [path for name in BENCHMARKS for path in group_traces(name)]
    inputs += molecule_traces()
    if RATE is not None:
        inputs.append(f"{RATE_DIR}/verdicts.csv")
    return inputs


def claims_arguments():
    """The `casbo-bench claims` arguments: groups with their files, variants, the rule."""
    # --configfile files are merged over the Snakefile's config/config.yaml; the last one
    # given on the command line names the config.
    given = list(workflow.overwrite_configfiles or [])
    config_path = given[-1] if given else "config/config.yaml"
    groups = " ".join(f"--benchmark {name} " + " ".join(group_traces(name)) for name in BENCHMARKS)
    variants = " ".join(f"--variant {label}" for label in VARIANTS)
    # The molecule claim is judged on the molecule benchmark (molecules.smk) when the config
    # runs one; without it the ledger calls the claim inconclusive.
    molecules = molecule_traces()
    return (
        f"--config-label '{config['name']} ({os.path.relpath(config_path)})' "
        f"--reference {config['reference']} {groups} {variants} "
        + (
            f"--benchmark molecules {' '.join(molecules)} --molecule-benchmark molecules "
            if molecules
            else ""
        )
        + (f"--rate-verdicts {RATE_DIR}/verdicts.csv " if RATE is not None else "")
        + f"--alpha {CLAIMS['alpha']} --min-seeds {CLAIMS['min_seeds']} "
        f"--min-effect {CLAIMS['min_effect']} --min-fraction {CLAIMS['min_fraction']} "
        f"--rate-min-seeds {CLAIMS['rate_min_seeds']} "
        f"--results-dir {RESULTS} --figures-dir {FIGURES}"
    )


def claims_outputs():
    """The ledger for `rule all` (none without a ``claims`` block)."""
    if CLAIMS is None:
        return []
    return [f"{RESULTS}/claims.md", f"{RESULTS}/claims.csv"]
