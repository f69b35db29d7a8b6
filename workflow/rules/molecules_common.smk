"""Config checks and input functions of molecules.smk (included by it)."""

MOLECULES = config.get("molecules") or None
if MOLECULES is not None and not MOLECULES.get("enabled", True):
    MOLECULES = None  # turned off, e.g. a block inherited from config/config.yaml
MOLECULE_DIR = f"{RESULTS}/molecules"
MOLECULE_TABLES = ["molecule_scores", "molecule_best"]
# The stored models, read from this checkout (the problem's defaults are the same folders).
MOLECULE_CHECKPOINT = f"{workflow.basedir}/models/edm_qm9_heavy"
MOLECULE_PREDICTOR = f"{workflow.basedir}/models/property_predictor"
QM9_DATA = "results/data/qm9_heavy.npz"
# Noise entries per atom (3 coordinates, 4 type logits) and injections besides the S steps
# (initial latent, final draw): d = 7 n, K = S + 2 (casbo_bench.problems.molecule).
ATOM_FEATURES = 7
EXTRA_INJECTIONS = 2


def _check_molecule_config():
    """Cross-field checks of ``molecules`` the JSON schema cannot express, each with its fix."""
    if MOLECULES is None:
        return
    unknown = sorted(set(MOLECULES.get("methods", [])) - set(METHODS))
    unknown += sorted(set(MOLECULES.get("budget_caps", {})) - set(METHODS))
    if unknown:
        raise ValueError(
            f"config: molecules names unknown methods {sorted(set(unknown))}; define them "
            f"under 'methods' first"
        )
    if config["reference"] not in molecule_methods():
        raise ValueError(
            f"config: molecules.methods leaves out the reference {config['reference']!r}; "
            f"every method is compared against it, so list it"
        )
    if "molecules" in BENCHMARKS:
        raise ValueError(
            "config: the benchmark name 'molecules' is reserved for the molecule benchmark's "
            "tables and figures; rename that benchmark group"
        )


def molecule_methods():
    return MOLECULES.get("methods") or list(METHODS)


def molecule_seed_chunks():
    """The molecule seeds (default: the config's) split into jobs of ``seeds_per_job``."""
    seeds, size = MOLECULES.get("seeds", config["seeds"]), config["seeds_per_job"]
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def molecule_task_size(task):
    """``(d, K) = (7 n, S + 2)`` of a task entry of the config."""
    return (
        ATOM_FEATURES * task.get("n_atoms", 9),
        task.get("sampler_steps", 20) + EXTRA_INJECTIONS,
    )


def molecule_trace_path(method, problem, d, K, chunk):
    return f"{MOLECULE_DIR}/raw/{method}/{problem}_d{d}_K{K}_s{chunk}.parquet"


def molecule_traces(wildcards=None):
    """Every molecule trace: methods x tasks x seed jobs (none without a ``molecules`` block)."""
    if MOLECULES is None:
        return []
    return [
        molecule_trace_path(method, task["name"], *molecule_task_size(task), chunk)
        for method in molecule_methods()
        for task in MOLECULES["tasks"]
        if runs_here(method, *molecule_task_size(task))
        for chunk in range(len(molecule_seed_chunks()))
    ]


def molecule_run_arguments(wildcards):
    """The `casbo-bench run` arguments of one molecule job, from config."""
    method = METHODS[wildcards.method]
    budget = MOLECULES.get("budget_caps", {}).get(wildcards.method, MOLECULES["budget"])
    return job_arguments(
        method,
        molecule_seed_chunks()[int(wildcards.chunk)],
        budget,
        MOLECULES.get("fresh_samples", 16),
        wildcards.problem,
        wildcards.d,
        wildcards.K,
        "final",
    )


def molecule_report_arguments():
    return (
        f"--reference {config['reference']} --alpha {config['alpha']} "
        f"--optimized-fraction {MOLECULES.get('optimized_fraction', 0.25)} "
        f"--predictor {MOLECULE_PREDICTOR} --device {config['device']}"
    )


def molecule_outputs():
    """The molecule tables, figures and structures for `rule all` (none when not configured)."""
    if MOLECULES is None:
        return []
    return [
        *(
            f"{RESULTS}/tables/molecules/{name}.{fmt}"
            for name in MOLECULE_TABLES
            for fmt in ("csv", "md")
        ),
        f"{FIGURES}/molecules",
        f"{MOLECULE_DIR}/best_molecules.sdf",
    ]


def training_device(block):
    """The device of a training block (``training``, ``predictor_training``): its own
    ``device``, else the config's."""
    return (MOLECULES or {}).get(block, {}).get("device", config["device"])


def edm_training_arguments():
    training = (MOLECULES or {}).get("training", {})
    return (
        f"--hidden {training.get('hidden', 128)} --blocks {training.get('blocks', 6)} "
        f"--batch {training.get('batch', 64)} --hours {training.get('hours', 24)} "
        f"--device {training_device('training')}"
    )


def predictor_training_arguments():
    training = (MOLECULES or {}).get("predictor_training", {})
    cap = training.get("max_minutes")
    return (
        f"--epochs {training.get('epochs', 9)} --device {training_device('predictor_training')}"
        + (f" --max-minutes {cap}" if cap else "")
    )


_check_molecule_config()
