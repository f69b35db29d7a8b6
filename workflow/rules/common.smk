"""Config validation, derived paths and every input function of the workflow."""

import hashlib
import json
import os
import re
from itertools import product

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = f"results/{config['name']}"
FIGURES = f"paper_figures/{config['name']}"
LOGS = f"{RESULTS}/logs"
CONFIG_HASH = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
    :16
]
METHODS = {method["label"]: method for method in config["methods"]}
BENCHMARKS = {benchmark["name"]: benchmark for benchmark in config["benchmarks"]}
TABLE_NAMES = ["final_loss", "significance", "significance_fresh", "ert"]
# Rules run `python -m casbo_bench` from this checkout's src/, so a rule's conda env (which
# holds the dependencies) and the plain virtual environment run the same code. Jobs inherit
# this environment, and on a cluster each job re-reads this file and sets it again.
os.environ.update(PYTHONPATH=f"{workflow.basedir}/src")
CLI = "python -m casbo_bench"
TABLE_FORMATS = ["csv", "md", "tex"]
# The registered optimizers whose constructor takes `device`: their torch parts run on the
# config's device (tests/test_envs.py checks this set against the registry).
TORCH_OPTIMIZERS = {"casbo", "casbo-diag", "casbo-latent", "turbo"}


def gpus_for(uses_torch):
    """The GPUs a job asks the cluster for: 1 for torch code when the config says cuda.

    ``device: auto`` takes a GPU only where the node has one, so it asks for none: a request
    would keep the job waiting forever on a cluster without GPUs. ``cpu`` never uses one.
    """
    return int(uses_torch and config["device"] == "cuda")


def _check_config():
    """Cross-field checks the JSON schema cannot express, each with its fix."""
    if len(METHODS) != len(config["methods"]):
        raise ValueError("config: two methods share a label; give each method a unique label")
    if config["reference"] not in METHODS:
        raise ValueError(
            f"config: reference {config['reference']!r} is not a method label; "
            f"use one of {sorted(METHODS)}"
        )
    for benchmark in config["benchmarks"]:
        unknown = set(benchmark.get("methods", [])) - set(METHODS)
        unknown |= set(benchmark["budget_caps"]) - set(METHODS)
        if unknown:
            raise ValueError(
                f"config: benchmark {benchmark['name']!r} names unknown methods "
                f"{sorted(unknown)}; define them under 'methods' first"
            )


_check_config()


# Only the config's benchmark groups: other folders beside them (rate_checks, molecules)
# must not match the tables and figures rules.
wildcard_constraints:
    benchmark="|".join(re.escape(name) for name in BENCHMARKS),
    method="[a-z0-9][a-z0-9_-]*",
    problem="[a-z0-9][a-z0-9_-]*",
    d=r"\d+",
    K=r"\d+",
    scoring="final|cumulative",
    chunk=r"\d+",


def seed_chunks():
    """The repetition seeds split into jobs of at most ``seeds_per_job``."""
    seeds, size = config["seeds"], config["seeds_per_job"]
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def benchmark_methods(benchmark):
    return benchmark.get("methods") or list(METHODS)


def trace_path(benchmark, method, problem, d, K, scoring, chunk):
    return f"{RESULTS}/raw/{benchmark}/{method}/" f"{problem}_d{d}_K{K}_{scoring}_s{chunk}.parquet"


def benchmark_traces(wildcards):
    """Every trace file of one benchmark group: methods x problems x d x K x scoring x seed jobs."""
    benchmark = BENCHMARKS[wildcards.benchmark]
    return [
        trace_path(benchmark["name"], method, problem, d, K, scoring, chunk)
        for method, problem, d, K, scoring, chunk in product(
            benchmark_methods(benchmark),
            benchmark["problems"],
            benchmark["dims"],
            benchmark["steps"],
            benchmark["scoring"],
            range(len(seed_chunks())),
        )
    ]


def run_arguments(wildcards):
    """The `casbo-bench run` arguments of one job, from config."""
    benchmark = BENCHMARKS[wildcards.benchmark]
    method = METHODS[wildcards.method]
    budget = benchmark["budget_caps"].get(wildcards.method, benchmark["budget"])
    seeds = " ".join(str(seed) for seed in seed_chunks()[int(wildcards.chunk)])
    options = " ".join(
        f"--option {key}={json.dumps(value)}"
        for key, value in sorted(method.get("options", {}).items())
    )
    return (
        f"--method {method['optimizer']} --label {method['label']} {options} "
        f"--problem {wildcards.problem} --dim {wildcards.d} --steps {wildcards.K} "
        f"--scoring {wildcards.scoring} --seeds {seeds} --budget {budget} "
        f"--fresh-samples {config['fresh_samples']} --device {config['device']} "
        f"--config-hash {CONFIG_HASH}"
    )


def table_output(path, name, fmt, category="Numerical benchmark"):
    """``path``, marked for the Snakemake report when it is a CSV table (the Markdown and
    LaTeX files beside it hold the same rows); the caption is workflow/report/<name>.rst."""
    if fmt != "csv":
        return path
    return report(
        path,
        caption=f"{workflow.basedir}/workflow/report/{name}.rst",
        category=category,
        subcategory="{benchmark}" if category == "Numerical benchmark" else None,
        labels={"table": name},
    )


def table_paths(benchmark):
    return [
        f"{RESULTS}/tables/{benchmark}/{name}.{fmt}"
        for name, fmt in product(TABLE_NAMES, TABLE_FORMATS)
    ]


def all_outputs():
    outputs = []
    for name in BENCHMARKS:
        outputs += table_paths(name)
        outputs.append(f"{FIGURES}/{name}")
    return outputs
