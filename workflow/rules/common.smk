"""Config validation, derived paths and every input function of the workflow."""

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from itertools import product

import yaml

# The workflow reads the package's torch-free registries, config checks and claim records
# from this checkout's src/ (the same code its rules run).
sys.path.insert(0, f"{workflow.basedir}/src")
from casbo_bench.config_checks import (
    ConfigError,
    check_config,
    enabled_block,
    read_config,
    resolve_config,
    trained_models_dir,
    trains_own_models,
    validate_schema,
)
from casbo_bench.errors import UserFacingError
from casbo_bench.memory import job_memory_mb, job_uses_torch
from casbo_bench.names import JOB_FOLDERS
from casbo_bench.optimizers import steering_methods
from casbo_bench.problems import available_problems, writes_coco_data
from casbo_bench.traces import (
    SIDECAR_SUFFIX,
    failed_seeds,
    mark_for_rebuild,
    quarantine_trace,
    sidecar_path,
    trace_fault,
)

DEFAULT_CONFIG = "config/config.yaml"
# Snakemake fills `config` from --configfile (and --config) before this file runs; the last
# file given names the run. A config stands alone: blocks it leaves out are off, unless it
# names a config to extend.
CONFIG_PATH = os.path.relpath((workflow.overwrite_configfiles or [DEFAULT_CONFIG])[-1])


def refuse(message):
    """Stop before any job with one line naming the config, the field and the fix."""
    print(f"casbo-bench: config {CONFIG_PATH}: error: {message}", file=sys.stderr)
    sys.exit(2)


def _checked_config():
    """``config`` as run (:func:`casbo_bench.config_checks.resolve_config`), every check of
    :func:`casbo_bench.config_checks.check_config` passed and the schema's defaults filled.
    Only the main Snakemake process checks: a cluster job re-reads this file with the same
    config."""
    default = None if workflow.overwrite_configfiles else DEFAULT_CONFIG
    try:
        resolved = resolve_config(dict(config), default, read_config)
        schema = read_config(f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
        if workflow.is_main_process:
            check_config(resolved, schema)
        else:
            validate_schema(resolved, schema)
    except UserFacingError as error:
        refuse(error)
    config.clear()
    config.update(resolved)


_checked_config()

RESULTS = f"results/{config['name']}"
FIGURES = f"paper_figures/{config['name']}"
LOGS = f"{RESULTS}/logs"
# Snakemake's measurements of each job (wall and CPU seconds, peak memory), which
# `casbo-bench plan --compare` sets beside the cost model's estimate.
BENCHMARKS_DIR = f"{RESULTS}/benchmarks"
CONFIG_HASH = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[
    :16
]
METHODS = {method["label"]: method for method in config["methods"]}
BENCHMARKS = {benchmark["name"]: benchmark for benchmark in config["benchmarks"]}
TABLE_NAMES = [
    "final_loss",
    "significance",
    "significance_fresh",
    "ert",
    "ert_inf_share",
    "fixed_budget",
    "ranks",
    "ecdf",
]
# Rules run `python -m casbo_bench` from this checkout's src/, so a rule's conda env (which
# holds the dependencies) and the plain virtual environment run the same code. Jobs inherit
# this environment, and on a cluster each job re-reads this file and sets it again.
os.environ.update(PYTHONPATH=f"{workflow.basedir}/src")
TABLE_FORMATS = ["csv", "md", "tex", "html"]


def gpus_for(uses_torch):
    """The GPUs a job asks the cluster for: 1 for torch code when the config says cuda.

    ``device: auto`` takes a GPU only where the node has one, so it asks for none: a request
    would keep the job waiting forever on a cluster without GPUs. ``cpu`` never uses one.
    """
    return int(uses_torch and config["device"] == "cuda")


# A pattern no folder name matches (the wildcard of a config without benchmark groups).
NO_MATCH = "(?!)"


# Only the config's benchmark groups: other folders beside them (rate_checks, molecules)
# must not match the tables and figures rules.
wildcard_constraints:
    benchmark="|".join(re.escape(name) for name in BENCHMARKS) or NO_MATCH,
    method="[a-z0-9][a-z0-9_-]*",
    problem="[a-z0-9][a-z0-9_-]*",
    d=r"\d+",
    K=r"\d+",
    scoring="final|cumulative",
    chunk=r"\d+",


# The problems whose runs also write COCO data (COCO's bbob functions, through cocoex).
COCO_PROBLEMS = [name for name in available_problems() if writes_coco_data(name)]
COCO_TRACE = (
    f"{RESULTS}/raw/{{benchmark}}/{{method}}/{{problem}}_d{{d}}_K1_final_s{{chunk}}.parquet"
)
"""The trace of a benchmark job on a COCO problem (always K = 1, final scoring): rule
run_coco's pattern, the path add_jobs gives such a job."""
COCO_FOLDER = f"{RESULTS}/coco/{{method}}/{{benchmark}}/{{problem}}_d{{d}}_s{{chunk}}"
"""The COCO observer folder of that job: one per job (method, group, problem, d, seed chunk;
all its seeds' instances), under coco/<method>/ so that a method's folder holds all its runs
(cocopp takes one folder per algorithm)."""


RESOLVED_CONFIG = f"{RESULTS}/config.yaml"


def write_resolved_config(resolved, path, log):
    """Write the config as run (``resolved``) to ``path`` as YAML, one line to ``log``."""
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(f"# The config {CONFIG_PATH} as run (config hash {CONFIG_HASH}).\n")
        yaml.safe_dump(dict(resolved), stream, sort_keys=False)
    with open(log, "w", encoding="utf-8") as stream:
        stream.write(f"wrote {path} from {CONFIG_PATH}\n")


def config_block(name):
    """The config's block ``name``, or None when it is left out or says ``enabled: false``."""
    return enabled_block(config, name)


def seed_chunks(seeds):
    """``seeds`` split into jobs of at most ``seeds_per_job`` (the one chunker)."""
    size = config["seeds_per_job"]
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


STEERING_OPTIMIZERS = set(steering_methods())


def benchmark_methods(benchmark):
    """A group's method labels: its own list, else every method but the steering ones
    (they need a stepwise sampler: molecule tasks only; check_config refuses them here)."""
    return benchmark.get("methods") or [
        label for label, method in METHODS.items() if method["optimizer"] not in STEERING_OPTIMIZERS
    ]


def runs_here(method, d, K):
    """Whether the method record ``method`` runs on a cell of noise size ``d`` and ``K``
    injections.

    Not where K = 1 for a method with ``on_plain`` (it equals that method there), nor above
    its ``max_joint_dim`` searched numbers K x d (a ledger variant has neither: it runs on
    every cell of its groups).
    """
    if "on_plain" in method and int(K) == 1:
        return False
    return int(K) * int(d) <= method.get("max_joint_dim", int(K) * int(d))


@dataclass(frozen=True)
class RunJob:
    """One `casbo-bench run`: a method record (label, optimizer, options) on one problem
    (d, K, scoring) for a group of seeds, with its budget, fresh samples, extra flags, the
    files it reads (model checkpoints) and what it asks the scheduler for."""

    method: dict
    seeds: tuple
    budget: int
    fresh_samples: int
    problem: str
    d: int
    K: int
    scoring: str
    extra: tuple = ()
    inputs: tuple = ()
    mem_mb: int = 2000
    runtime: int = 60
    uses_torch: bool = False
    coco_folder: str | None = None

    def arguments(self):
        """The run's arguments, one list item per shell word (each quoted by the run rule);
        the method's optimizer, label and options, the seeds, budget, fresh samples, device
        and hashes, the problem, size and scoring, the extra flags, then the COCO observer
        folder where the job writes one."""
        options = [
            part
            for key, value in sorted(self.method.get("options", {}).items())
            for part in ("--option", f"{key}={json.dumps(value)}")
        ]
        hashes = ["--config-hash", CONFIG_HASH]
        if RULE_HASH is not None:
            hashes += ["--rule-hash", RULE_HASH]
        return [
            *("--method", self.method["optimizer"], "--label", self.method["label"], *options),
            *("--seeds", *self.seeds, "--budget", self.budget),
            *("--fresh-samples", self.fresh_samples, "--device", config["device"], *hashes),
            *("--on-failure", config["on_failure"], "--failure-penalty", config["failure_penalty"]),
            *("--problem", self.problem, "--dim", self.d, "--steps", self.K),
            *("--scoring", self.scoring, *self.extra),
            *(("--coco-folder", self.coco_folder) if self.coco_folder else ()),
        ]


JOBS = {}
"""The job table: trace path -> :class:`RunJob`, for every run of the config (the benchmark
groups here; the rate check, the molecule benchmark and the ledger's variants add theirs).
Rule ``run`` (run.smk) runs any of them; rule ``run_coco``, the same rule with the COCO folder
declared too, those that write one."""

COCO_FOLDERS = {}
"""COCO observer folder -> the trace of the job that writes it (rule cocopp reads them all)."""


def add_jobs(folder, method, seeds, problem, d, K, scoring, coco_group=None, **settings):
    """Register one run per seed chunk of ``method`` on (problem, d, K, scoring) under
    results/<name>/<folder>/; the trace paths, in chunk order. ``settings`` are the rest of
    :class:`RunJob` (budget and fresh_samples required). ``coco_group``: the benchmark group
    (``folder`` is raw/<group>) of a problem that writes COCO data; each job then writes its
    :data:`COCO_FOLDER` too."""
    paths = []
    # Read from the optimizer's and the problem family's declarations (nothing imported).
    uses_torch = job_uses_torch(method["optimizer"], problem)
    # The memory model (casbo_bench.memory); check_config refused any cell above the limit.
    chunks = seed_chunks(seeds)
    need = job_memory_mb(
        int(d),
        int(K),
        settings["budget"],
        settings["fresh_samples"],
        uses_torch,
        max(map(len, chunks), default=1),
    )
    settings["mem_mb"] = max(settings.get("mem_mb", RunJob.mem_mb), need)
    for chunk, part in enumerate(chunks):
        path = (
            f"{RESULTS}/{folder}/{method['label']}/{problem}_d{d}_K{K}_{scoring}_s{chunk}.parquet"
        )
        coco_folder = None
        if coco_group is not None:
            cell = dict(method=method["label"], benchmark=coco_group, problem=problem, d=d)
            coco_folder = COCO_FOLDER.format(**cell, chunk=chunk)
            if path != COCO_TRACE.format(**cell, chunk=chunk):
                refuse(f"{problem} runs only at K = 1 with final scoring; got {path}")
            COCO_FOLDERS[coco_folder] = path
        job = RunJob(
            method,
            tuple(part),
            problem=problem,
            d=int(d),
            K=int(K),
            scoring=scoring,
            uses_torch=uses_torch,
            coco_folder=coco_folder,
            **settings,
        )
        if JOBS.setdefault(path, job) != job:
            refuse(f"two runs would write {path}; give them distinct labels")
        paths.append(path)
    return paths


def sidecars(paths):
    """The sha256 sidecars of trace ``paths`` (rule run writes each with its trace)."""
    return [str(sidecar_path(path)) for path in paths]


# Snakemake's flags after which it runs no job (so nothing may be moved), and --nolock (a run
# that another could be running beside).
_NO_JOB_FLAGS = (
    "dryrun",
    "unlock",
    "lint",
    "list_rules",
    "list_target_rules",
    "list_changes",
    "list_input_changes",
    "list_params_changes",
    "list_untracked",
    "list_conda_envs",
    "summary",
    "detailed_summary",
    "report",
    "touch",
    "cleanup_metadata",
    "cleanup_shadow",
    "delete_all_output",
    "delete_temp_output",
    "print_compilation",
    "dag",
    "d3dag",
    "rulegraph",
    "filegraph",
    "containerize",
    "conda_create_envs_only",
    "archive",
    "export_cwl",
    "generate_unit_tests",
    "draft_notebook",
    "edit_notebook",
    "nolock",
)


def _runs_jobs():
    """Whether this invocation runs jobs and no other Snakemake run holds this folder: none
    of :data:`_NO_JOB_FLAGS` and no dry-run or touch executor on its command line, and no
    lock in .snakemake/locks (a live run's, or a killed run's that `make reproduce`
    releases)."""
    locks = ".snakemake/locks"
    if os.path.isdir(locks) and any(os.scandir(locks)):
        return False
    from contextlib import redirect_stderr
    from io import StringIO

    from snakemake.cli import get_argument_parser

    try:
        with redirect_stderr(StringIO()):
            arguments, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:
        return False
    if getattr(arguments, "executor", None) in ("dryrun", "touch"):
        return False
    return not any(getattr(arguments, flag, False) for flag in _NO_JOB_FLAGS)


MAX_REPORTED_FAULTS = 10
"""Faulty traces named one line each; the rest are counted in one line."""
RERUN_FAILED = "CASBO_RERUN_FAILED"
"""Set to 1 (`make rerun-failed`): traces with a failed seed are quarantined and run again."""


def protect_traces():
    """Check every trace of the job table before the DAG is built (casbo_bench.traces).

    A damaged trace (changed bytes, no sidecar) is moved to results/<name>/quarantine/ with
    its reason; a trace that is gone although its job ran before (its sidecar or its log is
    still there) is noted. Either way its sidecar becomes a note newer than every table made
    from the old trace, so Snakemake reruns the trace's job and then those tables in this
    invocation: no job reads a damaged trace, and the rebuilt tables are the clean run's. A
    dry run, or a folder another run has locked, only reports. With CASBO_RERUN_FAILED=1, a
    trace with a failed seed (its provenance says so) is quarantined and run again too.
    """
    if not workflow.is_main_process:
        return  # a cluster job re-reading this file: the main process has checked
    acting = _runs_jobs()
    rerun_failed = os.environ.get(RERUN_FAILED) == "1"
    found = 0
    for path in JOBS:
        fault = trace_fault(path, CONFIG_HASH, RULE_HASH)
        failed = failed_seeds(path) if fault is None and rerun_failed else {}
        if failed:
            seeds = ", ".join(f"{seed} ({error})" for seed, error in failed.items())
            fault = f"seed(s) {seeds} failed, and {RERUN_FAILED}=1 asks to run them again"
        if fault is None:
            continue
        ran_before = os.path.exists(sidecar_path(path)) or os.path.exists(
            f"{LOGS}/{os.path.relpath(path, RESULTS)[: -len('.parquet')]}.log"
        )
        if not (os.path.exists(path) or ran_before):
            continue
        found += 1
        if not acting:
            action = (
                "a run quarantines and rebuilds it (not a dry run; a lock in .snakemake/locks "
                "left by a stopped run is released by `make reproduce` or `snakemake --unlock`)"
            )
        elif os.path.exists(path):
            action = f"moved to {quarantine_trace(path, fault, RESULTS)}, rebuilding it"
        else:
            mark_for_rebuild(path, fault)
            action = "rebuilding it"
        if found <= MAX_REPORTED_FAULTS:
            print(f"casbo-bench: {path}: {fault}; {action}", file=sys.stderr)
    if found > MAX_REPORTED_FAULTS:
        print(
            f"casbo-bench: and {found - MAX_REPORTED_FAULTS} more traces like these",
            file=sys.stderr,
        )


def job_of(wildcards):
    """The :class:`RunJob` of rule run's ``{job}`` wildcard, or of rule run_coco's wildcards
    (:data:`COCO_TRACE`)."""
    job = getattr(wildcards, "job", None)
    path = COCO_TRACE.format(**wildcards) if job is None else f"{RESULTS}/{job}.parquet"
    if path not in JOBS:
        raise ValueError(f"{path} is no run of this config; ask for a file the config runs")
    return JOBS[path]


def benchmark_jobs(benchmark, methods, folder):
    """Register ``methods`` (records) on every cell of a benchmark group; their traces."""
    return [
        path
        for method, problem, d, K, scoring in product(
            methods,
            benchmark["problems"],
            benchmark["dims"],
            benchmark["steps"],
            benchmark["scoring"],
        )
        if runs_here(method, d, K)
        for path in add_jobs(
            folder,
            method,
            config["seeds"],
            problem,
            d,
            K,
            scoring,
            budget=budget_of(benchmark, method),
            fresh_samples=config["fresh_samples"],
            coco_group=benchmark["name"] if writes_coco_data(problem) else None,
        )
    ]


def budget_of(benchmark, method):
    """A method's budget in a benchmark group: its cap, a variant's reference's cap, else the
    group's budget."""
    caps = benchmark["budget_caps"]
    label, of = method["label"], method.get("variant_of")
    return caps.get(label, caps.get(of, benchmark["budget"]))


BENCHMARK_TRACES = {
    name: benchmark_jobs(
        benchmark, [METHODS[label] for label in benchmark_methods(benchmark)], f"raw/{name}"
    )
    for name, benchmark in BENCHMARKS.items()
}
"""Benchmark group -> its own traces (methods x problems x d x K x scoring x seed jobs)."""


def benchmark_traces(wildcards):
    return BENCHMARK_TRACES[wildcards.benchmark]


# The formats of a table the report attaches: HTML, which it shows inline, and CSV (full
# precision) to download. Markdown and LaTeX hold the same rows as the HTML page.
REPORT_TABLE_FORMATS = {"html": "HTML (shown inline)", "csv": "CSV (full precision)"}


def table_output(path, name, fmt, category="Numerical benchmark"):
    """``path``, marked for the Snakemake report when it is the table's HTML page or CSV
    (:data:`REPORT_TABLE_FORMATS`); the caption is workflow/report/<name>.rst."""
    if fmt not in REPORT_TABLE_FORMATS:
        return path
    return report(
        path,
        caption=f"{workflow.basedir}/workflow/report/{name}.rst",
        category=category,
        subcategory="{benchmark}" if category == "Numerical benchmark" else None,
        labels={"table": name, "format": REPORT_TABLE_FORMATS[fmt]},
    )


def target_arguments(wildcards=None):
    """The pre-registered targets of the ERT and the runtime ECDF as command-line words: the
    config's absolute ``targets`` when it gives them, else its ``target_fractions`` (filled
    in by the schema)."""
    if "targets" in config:
        return ["--targets", *config["targets"]]
    return ["--target-fractions", *config["target_fractions"]]


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


COCOPP_OUTPUT = f"{RESULTS}/cocopp"
"""cocopp's output folder (index.html) over every COCO folder of the config."""


def coco_outputs():
    """cocopp's output folder when some job writes COCO data, else nothing."""
    return [COCOPP_OUTPUT] if COCO_FOLDERS else []
