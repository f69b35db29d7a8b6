"""Input functions of molecules.smk (included by it); its config is checked by casbo_bench.config_checks."""

from casbo_bench.molecules.tasks import (
    DEFAULT_ATOMS,
    DEFAULT_SAMPLER_STEPS,
    claim_problems,
    get_task,
    problem_name,
    task_size,
)

MOLECULES = config_block("molecules")
MOLECULE_DIR = f"{RESULTS}/molecules"
MOLECULE_TABLES = ["molecule_scores", "molecule_best"]
MOLECULE_TABLE_FORMATS = ["csv", "md", "html"]
# Where the runs and the report read the models: this checkout's stored models/ unless the
# config names another folder (results/<name>/models, where the training rules write, chains
# training in).
MODELS_DIR = (MOLECULES or {}).get("models_dir") or f"{workflow.basedir}/models"
MOLECULE_CHECKPOINT = f"{MODELS_DIR}/edm_qm9_heavy"
MOLECULE_PREDICTOR = f"{MODELS_DIR}/property_predictor"
TRAINED_MODELS = str(trained_models_dir(config["name"]))
QM9_DATA = "results/data/qm9_heavy.npz"


def stored_checkpoint_sha256():
    """The sha256 of the EDM's sampling.pt as its manifest lists it when the DAG is built, or
    None where there is no manifest yet (a model this workflow trains itself).

    Every molecule run is given it (``--checkpoint-sha256``): the model files are inputs
    marked ancient(), so their date never reruns a job, and a replaced model changes the
    jobs' arguments instead, which reruns them (Snakemake's params trigger)."""
    manifest = os.path.join(MOLECULE_CHECKPOINT, "manifest.json")
    if not os.path.isfile(manifest):
        return None
    with open(manifest) as handle:
        return json.load(handle)["files"]["sampling.pt"]["sha256"]


def molecule_checkpoint_arguments():
    """``--checkpoint-sha256`` of every molecule run: nothing before the model exists, nor
    for a model this workflow trains (results/<name>/models: rule train_edm's outputs are the
    runs' inputs, so a retrained model reruns them already, and a hash read before training
    would go stale within the run)."""
    if trains_own_models(MODELS_DIR, config["name"]):
        return ()
    digest = stored_checkpoint_sha256()
    return () if digest is None else ("--checkpoint-sha256", digest)


def molecule_task_size(task):
    """``(d, K)`` of a task entry of the config, by the task table's rule and defaults."""
    n_atoms = task.get("n_atoms", DEFAULT_ATOMS)
    return task_size(n_atoms, task.get("sampler_steps", DEFAULT_SAMPLER_STEPS))


def molecule_problem(task):
    """The problem name of a task entry: the task's, with -qm9size for n_atoms: qm9."""
    return problem_name(task["name"], task.get("n_atoms", DEFAULT_ATOMS))


def molecule_job_inputs(task):
    """The model files a task's runs read: the sampler, and the predictor for predictor tasks."""
    inputs = [f"{MOLECULE_CHECKPOINT}/sampling.pt"]
    if get_task(task["name"]).kind == "predictor":
        inputs.append(f"{MOLECULE_PREDICTOR}/predictor.pt")
    return tuple(inputs)


def molecule_methods():
    return MOLECULES.get("methods") or list(METHODS)


def molecule_denoiser_budget(label):
    """``--denoiser-budget`` of a method's molecule runs: the block's denoiser_budget, none for
    a method with a budget cap (it spends its capped calls only)."""
    budget = MOLECULES.get("denoiser_budget")
    if budget is None or label in MOLECULES["budget_caps"]:
        return ()
    return ("--denoiser-budget", budget)


def _molecule_jobs():
    """Register every molecule run (methods x tasks x seed jobs); their traces. A task's
    size is (d, K) = (7 n, S + 2) for n heavy atoms (d = 63 for sizes drawn per rollout) and S
    sampler steps, by the task table's rule (casbo_bench.molecules.tasks, the one place it is
    written)."""
    if MOLECULES is None:
        return []
    planned_model = molecule_checkpoint_arguments()  # one manifest read for every job
    return [
        path
        for label in molecule_methods()
        for task in MOLECULES["tasks"]
        for d, K in [molecule_task_size(task)]
        if runs_here(METHODS[label], d, K)
        for path in add_jobs(
            "molecules/raw",
            METHODS[label],
            MOLECULES.get("seeds", config["seeds"]),
            molecule_problem(task),
            d,
            K,
            "final",
            budget=MOLECULES["budget_caps"].get(label, MOLECULES["budget"]),
            fresh_samples=MOLECULES["fresh_samples"],
            extra=(
                "--models-dir",
                MODELS_DIR,
                *planned_model,
                *molecule_denoiser_budget(label),
            ),
            inputs=molecule_job_inputs(task),
            mem_mb=3000,
        )
    ]


def molecule_report_arguments():
    """The molecule-report options from config, one list item per shell word."""
    return [
        *("--reference", config["reference"], "--alpha", config["alpha"]),
        *("--optimized-fraction", MOLECULES["optimized_fraction"]),
        *("--predictor", MOLECULE_PREDICTOR, "--device", config["device"]),
        *("--confidence", config["band_confidence"], "--seed", config["bootstrap_seed"]),
        *("--title-prefix", config["name"]),
        *("--call-budget", MOLECULES["budget"]),
        *(
            ("--denoiser-budget", MOLECULES["denoiser_budget"])
            if "denoiser_budget" in MOLECULES
            else ()
        ),
    ]


def molecule_outputs():
    """The molecule tables, figures and structures for `rule all` (none when not configured)."""
    if MOLECULES is None:
        return []
    return [
        *(
            f"{RESULTS}/tables/molecules/{name}.{fmt}"
            for name in MOLECULE_TABLES
            for fmt in MOLECULE_TABLE_FORMATS
        ),
        f"{FIGURES}/molecules",
        f"{MOLECULE_DIR}/best_molecules.sdf",
    ]


def training_device(block):
    """The device of a training block (``training``, ``predictor_training``): its own
    ``device``, else the config's."""
    return (MOLECULES or {}).get(block, {}).get("device", config["device"])


def edm_training_arguments():
    """The train-edm options from config. A stopped training continues from its state file
    (``--resume-if-present``; the arguments stay the same, so no rerun is triggered)."""
    training = MOLECULES["training"]
    return [
        *("--hidden", training["hidden"], "--blocks", training["blocks"]),
        *("--batch", training["batch"], "--hours", training["hours"]),
        *("--device", training_device("training"), "--resume-if-present"),
    ]


def predictor_training_arguments():
    training = MOLECULES["predictor_training"]
    cap = training.get("max_minutes")
    return [
        *("--epochs", training["epochs"], "--device", training_device("predictor_training")),
        *(("--max-minutes", cap) if cap else ()),
    ]


MOLECULE_TRACES = _molecule_jobs()
# A task marked count_in_claims: false (its score saturates for every method, e.g. QED) is
# reported in the molecule tables but is no cell of any claim: the ledger never reads it.
_CLAIM_PROBLEMS = claim_problems(MOLECULES["tasks"]) if MOLECULES else set()
MOLECULE_CLAIM_TRACES = [
    path
    for path in MOLECULE_TRACES
    if any(os.path.basename(path).startswith(f"{problem}_d") for problem in _CLAIM_PROBLEMS)
]
