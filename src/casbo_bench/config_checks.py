"""The workflow's config, checked before any job starts.

The Snakefile hands the config it was given to :func:`resolve_config` (the default config
when none was named, ``extends:`` expanded one level) and then to :func:`check_config`, which
runs every check in one pass order, and stops at the first failure with one line naming the
field and the fix:

1. the JSON schema (``workflow/schemas/config.schema.yaml``), its defaults filled in; an
   ``integer`` is an int (``budget: 40.0`` is refused, where JSON Schema would accept it);
2. cross-field rules: unique labels, the reference, benchmark groups naming defined methods;
3. the registries: every optimizer and problem name exists (read from the plugin sources,
   nothing imported), each problem admits each d of its group;
4. each method's options: names the optimizer's constructor takes, values it accepts (the
   optimizer is built once on a small space, so its own checks judge the values);
5. the rate check: every checked problem has a closed-form expected loss, and each budget
   gives every method at least max(iterations) batches at its d.

6. memory: no run would need more than ``max_job_mem_mb`` by the memory model
   (:mod:`casbo_bench.memory`).

What the Snakefile does with the error (one line, exit 2) is its business; here it is a
:class:`ConfigError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from casbo_bench.errors import UserFacingError


class ConfigError(UserFacingError, ValueError):
    """The workflow config is unreadable or breaks a rule; the message names the field."""


def read_config(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (read with the safe loader)."""
    try:
        with open(path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream)
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror}); name an existing file") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path} is not valid YAML{line}; fix its syntax") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} holds no mapping of keys; write a config there")
    return loaded


def resolve_config(
    given: Mapping[str, Any], default_path: str | None, read: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """The config as run.

    Args:
        given: what Snakemake loaded (the --configfile files and --config entries).
        default_path: the default config, read under ``given`` when no config file was
            named (None when one was).
        read: reads a config file (:func:`read_config`).

    ``extends: <file>`` is expanded one level deep: the named file's top-level entries, where
    the extending config overrides a mapping block key by key and any other entry whole.
    """
    config = dict(given) if default_path is None else {**read(default_path), **given}
    base_path = config.pop("extends", None)
    if base_path is None:
        return config
    if not isinstance(base_path, str):
        raise ConfigError(f"extends: {base_path!r} is not a file name; name a config file")
    base = read(base_path)
    if "extends" in base:
        raise ConfigError(
            f"extends: {base_path} itself extends {base['extends']}; extends is one level "
            f"deep, so extend {base['extends']} directly"
        )
    merged = dict(base)
    for key, value in config.items():
        inherited = base.get(key)
        if isinstance(value, dict) and isinstance(inherited, dict):
            merged[key] = {**inherited, **value}
        else:
            merged[key] = value
    return merged


def _field(path: Iterable[Any]) -> str:
    """``methods[2].options`` for the JSON path ``["methods", 2, "options"]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "the config"


def validate_schema(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Check ``config`` against the JSON ``schema`` and fill in its defaults, in place.

    Raises:
        ConfigError: the first failure by jsonschema's relevance order, as
            ``<field>: <what is wrong>; <the fix>``.
    """
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import best_match

    def fill_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, dict):
            for name, rule in properties.items():
                if "default" in rule and name not in instance:
                    instance[name] = json.loads(json.dumps(rule["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](
            validator, properties, instance, schema
        )

    # JSON Schema counts 40.0 as an integer; a budget or a seed must be a whole int.
    types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    checker = validators.extend(
        Draft202012Validator, {"properties": fill_defaults}, type_checker=types
    )(schema)
    error = best_match(checker.iter_errors(config))
    if error is None:
        return
    fix = "see workflow/schemas/config.schema.yaml"
    if error.validator == "type" and error.validator_value == "integer":
        fix = "write a whole number without a decimal point (e.g. 40, not 40.0)"
    elif error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        fix = f"allowed keys here: {', '.join(allowed)}" if allowed else fix
    elif error.validator == "required":
        fix = "add it (workflow/schemas/config.schema.yaml describes it)"
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    raise ConfigError(f"{_field(error.absolute_path)}: {message}; {fix}")


def _check_labels(config: Mapping[str, Any]) -> None:
    """Unique method labels, a reference among them, groups naming defined methods."""
    methods = {method["label"]: method for method in config["methods"]}
    if len(methods) != len(config["methods"]):
        raise ConfigError("methods: two methods share a label; give each method a unique label")
    if methods and config["reference"] not in methods:
        raise ConfigError(
            f"reference: {config['reference']!r} is not a method label; use one of "
            f"{sorted(methods)}"
        )
    for label, method in methods.items():
        twin = method.get("on_plain")
        if twin is not None and (twin not in methods or "on_plain" in methods[twin]):
            raise ConfigError(
                f"methods: {label!r} has on_plain: {twin!r}, which is not a method run on "
                f"plain problems; name a label of 'methods' without on_plain"
            )
    for benchmark in config["benchmarks"]:
        unknown = set(benchmark.get("methods", [])) | set(benchmark["budget_caps"])
        unknown -= set(methods)
        if unknown:
            raise ConfigError(
                f"benchmarks: group {benchmark['name']!r} names unknown methods "
                f"{sorted(unknown)}; define them under 'methods' first"
            )


def _method_records(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every method record of the config with the field it sits in."""
    records = [(f"methods[{i}]", method) for i, method in enumerate(config["methods"])]
    rate = enabled_block(config, "rate_check") or {}
    records += [(f"rate_check.methods[{i}]", m) for i, m in enumerate(rate.get("methods", []))]
    claims = enabled_block(config, "claims") or {}
    records += [(f"claims.variants[{i}]", m) for i, m in enumerate(claims.get("variants", []))]
    return records


def _check_names(config: Mapping[str, Any]) -> None:
    """Every optimizer and problem name is registered, every d admitted by its problem."""
    from casbo_bench import optimizers, problems

    known = optimizers.available_optimizers()
    for field, method in _method_records(config):
        if method["optimizer"] not in known:
            raise ConfigError(
                f"{field}.optimizer: unknown optimizer {method['optimizer']!r}; use one of "
                f"{', '.join(known)} (casbo-bench list)"
            )
    names = problems.available_problems()
    cells = [
        (f"benchmarks[{i}] ({group['name']})", problem, group["dims"])
        for i, group in enumerate(config["benchmarks"])
        for problem in group["problems"]
    ]
    rate = enabled_block(config, "rate_check") or {}
    cells += [
        (f"rate_check.checks[{i}]", problem, rate.get("dims", []))
        for i, check in enumerate(rate.get("checks", []))
        for problem in check["problems"]
    ]
    for field, problem, dims in cells:
        if problem not in names:
            raise ConfigError(
                f"{field}.problems: unknown problem {problem!r}; use one of {', '.join(names)}"
            )
        least = problems.smallest_dim(problem)
        if least is not None and min(dims, default=least) < least:
            raise ConfigError(
                f"{field}.dims: {problem} needs d >= {least}; got d = {min(dims)}; drop the "
                f"smaller d or the problem"
            )
    for i, group in enumerate(config["benchmarks"]):
        for problem, d, steps, scoring in product(
            group["problems"], group["dims"], group["steps"], group["scoring"]
        ):
            try:
                problems.check_problem(problem, d, steps, scoring)
            except problems.ProblemError as error:
                raise ConfigError(f"benchmarks[{i}] ({group['name']}): {error}") from None


def _build_optimizer(field: str, method: Mapping[str, Any], n_blocks: int, dim: int) -> Any:
    """The method's optimizer built on ``n_blocks`` blocks of ``dim`` numbers (on the CPU)."""
    from casbo_bench.optimizers import (
        OptimizerError,
        SearchSpace,
        get_optimizer,
        get_steering,
        is_steering,
    )
    from casbo_bench.runner import accepted_options

    steers = is_steering(method["optimizer"])
    optimizer_class: Any = (get_steering if steers else get_optimizer)(method["optimizer"])
    options = dict(method.get("options") or {})
    known = accepted_options(optimizer_class)
    unknown = sorted(set(options) - set(known))
    if unknown or "device" in options:
        raise ConfigError(
            f"{field}.options: {method['optimizer']} has no option(s) "
            f"{unknown or ['device']}; its options are {', '.join(known) or 'none'} (the "
            f"device is the config's top-level device)"
        )
    device = {"device": "cpu"} if "device" in known else {}
    try:
        if steers:
            return optimizer_class(0, **options)
        blocks = n_blocks if optimizer_class.scope == "per_step" else 1
        return optimizer_class(SearchSpace(blocks, dim), 0, **options, **device)
    except (OptimizerError, ValueError, TypeError, MemoryError) as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"{field}.options: {method['optimizer']} refuses {json.dumps(options)}: {text}; "
            f"fix the option"
        ) from None


def _check_steering(config: Mapping[str, Any]) -> None:
    """Steering methods run on molecule tasks only (they need a stepwise sampler): a
    benchmark group, the rate check or a ledger variant naming one is refused."""
    from casbo_bench.optimizers import steering_methods

    steering = set(steering_methods())
    labels = {m["label"] for m in config["methods"] if m["optimizer"] in steering}
    for i, group in enumerate(config["benchmarks"]):
        named = sorted(labels & set(group.get("methods", [])))
        if named:
            raise ConfigError(
                f"benchmarks[{i}] ({group['name']}).methods: {named} steer a stepwise sampler, "
                f"which only the molecule tasks have; run them in the molecules block"
            )
    for field, method in _method_records(config):
        if field.startswith("methods["):
            continue
        if method["optimizer"] in steering:
            raise ConfigError(
                f"{field}.optimizer: {method['optimizer']} steers a stepwise sampler, which "
                f"only the molecule tasks have; run it in the molecules block"
            )


def _check_options(config: Mapping[str, Any]) -> None:
    """Every method with options is built once, so the optimizer judges its own options."""
    dims = [d for group in config["benchmarks"] for d in group["dims"]]
    dims += (enabled_block(config, "rate_check") or {}).get("dims", [])
    dim = max(2, min(dims, default=2))
    for field, method in _method_records(config):
        if method.get("options"):
            _build_optimizer(field, method, 1, dim)


RATE_KEYS = ("steps", "scoring", "dims", "budgets", "iterations", "seeds", "methods", "checks")
"""The keys of ``rate_check`` without a default (its ``rule`` too)."""

RESERVED_GROUPS = {
    "rate_checks": "the rate check's figures",
    "molecules": "the molecule benchmark's tables and figures",
}
"""Folder names no benchmark group may take, and what uses them."""


def _check_rate_block(rate: Mapping[str, Any]) -> None:
    """The rate check is complete: its keys, unique labels, one budget per d, known methods."""
    missing = [key for key in [*RATE_KEYS, "rule"] if key not in rate]
    if missing:
        raise ConfigError(
            f"rate_check: lacks {missing}; give them, or write rate_check: {{enabled: false}} "
            f"for no rate check"
        )
    labels = [method["label"] for method in rate["methods"]]
    if len(set(labels)) != len(labels):
        raise ConfigError("rate_check.methods: two share a label; give each a unique label")
    if len(rate["budgets"]) != len(rate["dims"]):
        raise ConfigError(
            f"rate_check.budgets: needs one budget per d of rate_check.dims "
            f"({len(rate['dims'])}); got {len(rate['budgets'])}"
        )
    for i, method in enumerate(rate["methods"]):
        of = method.get("variant_of")
        if of is not None and of not in labels:
            raise ConfigError(
                f"rate_check.methods[{i}].variant_of: unknown method {of!r}; define it under "
                f"rate_check.methods"
            )
    for i, check in enumerate(rate["checks"]):
        if check["method"] not in labels:
            raise ConfigError(
                f"rate_check.checks[{i}].method: unknown method {check['method']!r}; define it "
                f"under rate_check.methods"
            )


def _check_target_percentile(i: int, task: Mapping[str, Any]) -> None:
    """A predictor task states its target percentile, the task table's; no other task has one."""
    from casbo_bench.molecules.tasks import get_task

    table = get_task(task["name"]).target_percentile
    stated = task.get("target_percentile")
    if table is None and stated is not None:
        raise ConfigError(
            f"molecules.tasks[{i}] ({task['name']}): target_percentile is for predictor tasks; "
            f"this task has no target, so remove it"
        )
    if table is not None and stated != table:
        raise ConfigError(
            f"molecules.tasks[{i}] ({task['name']}): state target_percentile: {table} (the "
            f"task optimizes toward the p{table} value of QM9's property split); got {stated}"
        )


def _check_molecules(config: Mapping[str, Any]) -> None:
    """Molecule tasks exist with sizes the task table admits; methods known, reference run."""
    from casbo_bench.molecules.tasks import (
        DEFAULT_ATOMS,
        DEFAULT_SAMPLER_STEPS,
        task_names,
        task_size,
    )

    block = config["molecules"]
    for i, task in enumerate(block["tasks"]):
        if task["name"] not in task_names():
            raise ConfigError(
                f"molecules.tasks[{i}].name: unknown task {task['name']!r}; use one of "
                f"{', '.join(task_names())}"
            )
        try:
            task_size(
                task.get("n_atoms", DEFAULT_ATOMS),
                task.get("sampler_steps", DEFAULT_SAMPLER_STEPS),
            )
        except UserFacingError as error:
            raise ConfigError(f"molecules.tasks[{i}] ({task['name']}): {error}") from None
        _check_target_percentile(i, task)
    folder = block.get("models_dir")
    if folder is not None and not trains_own_models(folder, config["name"]):
        sampler = Path(folder) / "edm_qm9_heavy" / "sampling.pt"
        if not sampler.is_file():
            raise ConfigError(
                f"molecules.models_dir: {folder} holds no edm_qm9_heavy/sampling.pt; name a "
                f"folder of trained models, or {trained_models_dir(config['name'])} to train "
                f"them first"
            )
    labels = {method["label"] for method in config["methods"]}
    unknown = (set(block.get("methods", [])) | set(block.get("budget_caps", {}))) - labels
    if unknown:
        raise ConfigError(
            f"molecules: names unknown methods {sorted(unknown)}; define them under 'methods' first"
        )
    if config["reference"] not in (block.get("methods") or labels):
        raise ConfigError(
            f"molecules.methods: leaves out the reference {config['reference']!r}; every method "
            f"is compared against it, so list it"
        )
    _check_steering_samples(config, block)


def trained_models_dir(name: str) -> Path:
    """Where the training rules of config ``name`` write its models (workflow/rules/
    molecules.smk), relative to the current folder (where Snakemake runs)."""
    return Path("results") / name / "models"


def trains_own_models(models_dir: str | os.PathLike[str], name: str) -> bool:
    """Whether ``molecules.models_dir`` names the folder config ``name`` trains its models
    into: its runs then wait for its own training rules instead of reading stored models."""
    return os.path.abspath(models_dir) == os.path.abspath(trained_models_dir(name))


MIN_STEERED_SAMPLES = 10
"""The completed samples every steering run must reach within its budgets."""


def _check_steering_samples(config: Mapping[str, Any], block: Mapping[str, Any]) -> None:
    """Every steering method of the block completes at least :data:`MIN_STEERED_SAMPLES`
    samples per run: ``max(budget / calls, denoiser_budget / evaluations)`` per sample
    (SVDD costs about ``K M`` calls per sample, so M must fit)."""
    from casbo_bench.molecules.tasks import DEFAULT_SAMPLER_STEPS
    from casbo_bench.optimizers import is_steering

    chosen = set(block.get("methods") or [m["label"] for m in config["methods"]])
    for i, method in enumerate(config["methods"]):
        if method["label"] not in chosen or not is_steering(method["optimizer"]):
            continue
        built = _build_optimizer(f"methods[{i}]", method, 1, 1)
        for task in block["tasks"]:
            steps = task.get("sampler_steps", DEFAULT_SAMPLER_STEPS)
            calls, evaluations = built.cost_per_sample(steps)
            budget = block["budget_caps"].get(method["label"], block["budget"])
            samples = max(budget / calls, block.get("denoiser_budget", 0) / evaluations)
            if samples < MIN_STEERED_SAMPLES:
                raise ConfigError(
                    f"methods[{i}] ({method['label']}): on {task['name']} (S = {steps}) a "
                    f"sample costs {calls:g} calls and {evaluations:g} denoiser evaluations, so "
                    f"the molecule budgets give {samples:.1f} < {MIN_STEERED_SAMPLES} samples; "
                    f"raise molecules.budget or denoiser_budget, or lower its cost (svdd: "
                    f"candidates)"
                )


def _check_rate_check(rate: Mapping[str, Any]) -> None:
    """Checked problems have a closed-form J; each budget covers max(iterations) batches."""
    from casbo_bench import problems

    for i, check in enumerate(rate["checks"]):
        for problem in check["problems"]:
            if problem not in problems.available_functions():
                raise ConfigError(
                    f"rate_check.checks[{i}].problems: {problem} is no test function, so it has "
                    f"no closed-form expected loss; use sphere, ellipsoid or another function"
                )
            instance = problems.make_problem(
                problem, max(rate["dims"][0], problems.smallest_dim(problem) or 1), rate["steps"]
            )
            if not instance.has_expected_loss:
                raise ConfigError(
                    f"rate_check.checks[{i}].problems: {problem} has no closed-form expected "
                    f"loss, which the rate check measures; use a convex test function such as "
                    f"sphere or ellipsoid"
                )
    methods = {method["label"]: method for method in rate["methods"]}
    needed = max(rate["iterations"])
    for i, method in enumerate(rate["methods"]):
        for d, budget in zip(rate["dims"], rate["budgets"], strict=False):
            field = f"rate_check.methods[{i}] ({method['label']})"
            optimizer = _build_optimizer(field, methods[method["label"]], rate["steps"], d)
            batch = len(optimizer.ask())
            if budget < needed * batch:
                raise ConfigError(
                    f"rate_check.budgets: {budget} evaluations at d = {d} give "
                    f"{method['label']} (batches of {batch}) {budget // batch} iterations, "
                    f"fewer than max(iterations) = {needed}; raise that budget to at least "
                    f"{needed * batch}"
                )


def _check_memory(config: Mapping[str, Any]) -> None:
    """No run of the config needs more than ``max_job_mem_mb`` by the memory model."""
    from casbo_bench.memory import job_memory_mb

    per_job = config["seeds_per_job"]
    group_seeds = min(per_job, len(config["seeds"]))
    cells = [
        (f"benchmarks[{i}] ({group['name']})", d, K, group["budget"], group_seeds)
        for i, group in enumerate(config["benchmarks"])
        for d in group["dims"]
        for K in group["steps"]
    ]
    rate = enabled_block(config, "rate_check")
    if rate is not None:
        rate_seeds = min(per_job, len(rate["seeds"]))
        cells += [
            ("rate_check", d, rate["steps"], budget, rate_seeds)
            for d, budget in zip(rate["dims"], rate["budgets"], strict=True)
        ]
    limit = config["max_job_mem_mb"]
    for field, d, K, budget, seeds in cells:
        # Checked for the larger, torch-running process, whatever the group's methods.
        need = job_memory_mb(d, K, budget, config["fresh_samples"], True, seeds)
        if need > limit:
            raise ConfigError(
                f"{field}: a run at d = {d}, K = {K} ({budget} evaluations, {seeds} seeds a "
                f"job) needs about {need} MB by the memory model (casbo_bench.memory), above "
                f"max_job_mem_mb = {limit}; use a smaller d, K or budget, fewer seeds_per_job, "
                f"or raise max_job_mem_mb to what one node of yours has"
            )


def check_config(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Every check of the module docstring, in that order; fills the schema's defaults.

    Raises:
        ConfigError: the first failed check, naming the field and the fix.
    """
    validate_schema(config, schema)
    for group in config["benchmarks"]:
        if group["name"] in RESERVED_GROUPS:
            raise ConfigError(
                f"benchmarks: the name {group['name']!r} is reserved for "
                f"{RESERVED_GROUPS[group['name']]}; rename that benchmark group"
            )
    _check_labels(config)
    rate = enabled_block(config, "rate_check")
    if rate is not None:
        _check_rate_block(rate)
    _check_steering(config)
    if enabled_block(config, "molecules") is not None:
        _check_molecules(config)
    _check_names(config)
    _check_memory(config)
    _check_options(config)
    if rate is not None:
        _check_rate_check(rate)


def enabled_block(config: Mapping[str, Any], name: str) -> Any:
    """The config's block ``name``, or None when it is left out or says ``enabled: false``."""
    block = config.get(name) or None
    return block if block is not None and block.get("enabled", True) else None
