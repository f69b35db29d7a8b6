"""Input functions of ladder.smk (included by it); its config is checked by casbo_bench.config_checks."""

LADDER = (MOLECULES or {}).get("ladder", {})
LADDER_DIR = f"{MOLECULE_DIR}/ladder"
LADDER_CALIBRATION = LADDER.get("calibration") or f"{MODELS_DIR}/xtb_calibration"
LADDER_DATA = LADDER.get("data") or QM9_DATA
LADDER_FORMATS = ["csv", "md", "html"]


def ladder_tasks():
    """The config's predictor tasks by name (the ladder's tasks)."""
    if MOLECULES is None:
        return {}
    return {
        task["name"]: task
        for task in MOLECULES["tasks"]
        if get_task(task["name"]).kind == "predictor"
    }


def ladder_traces(wildcards):
    """The molecule traces of one task (every method's runs of it)."""
    prefix = f"{wildcards.task}_d"
    return [path for path in MOLECULE_TRACES if os.path.basename(path).startswith(prefix)]


def ladder_arguments(wildcards):
    """The ladder-molecules options of one task, one list item per shell word."""
    task = ladder_tasks()[wildcards.task]
    return [
        *("--task", wildcards.task, "--target-percentile", task["target_percentile"]),
        *("--n-atoms", task.get("n_atoms", DEFAULT_ATOMS)),
        *("--sampler-steps", task.get("sampler_steps", DEFAULT_SAMPLER_STEPS)),
        *("--molecules", LADDER.get("molecules", 100), "--seed", LADDER.get("seed", 0)),
        *("--models-dir", MODELS_DIR, "--calibration", LADDER_CALIBRATION),
        *("--device", config["device"]),
    ]


def ladder_outputs():
    """The error-ladder table for `rule all` (none without a predictor task)."""
    if not ladder_tasks():
        return []
    return [f"{RESULTS}/tables/molecules/error_ladder.{fmt}" for fmt in LADDER_FORMATS]
