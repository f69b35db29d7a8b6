"""``casbo-bench run``: one optimizer on one problem for a batch of seeds, one Parquet trace."""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from casbo_bench.cli.common import (
    UsageError,
    finite_number,
    integer_at_least,
    writable_file,
    writable_folder,
)
from casbo_bench.names import DEFAULT_FAILURE_PENALTY, DEVICE_NAMES, FAILURE_POLICIES, SCORINGS

NAME = "run"
HELP = "Run one optimizer on one problem for a batch of seeds; write one Parquet trace."
EXAMPLES = (
    "casbo-bench run --method casbo --problem ellipsoid --dim 10 --seeds 0 1 2 --budget 2000 "
    "--out ellipsoid.parquet",
    "casbo-bench run --method casbo --label casbo-decay --option step_schedule=inverse_sqrt "
    "--problem sphere --dim 8 --steps 5 --scoring cumulative --seeds 0 --budget 400 "
    "--record-expected-loss --out decay.parquet",
    "casbo-bench run --method cmaes --problem rastrigin --dim 4 --steps 5 --seeds 0 1 "
    "--budget 400 --fresh-samples 128 --device cpu --on-failure stop --out rastrigin.parquet",
    "casbo-bench run --method cmaes --problem bbob-f08 --dim 5 --seeds 0 1 2 3 4 --budget 5000 "
    "--coco-folder coco/cmaes/bbob-f08_d5 --out f08.parquet   # seeds 0-4: COCO instances 1-5",
    "casbo-bench run --method smc --option particles=8 --problem mol-qed --dim 63 --steps 22 "
    "--seeds 0 --budget 200 --denoiser-budget 4200 --out smc.parquet   # until both are spent",
    "casbo-bench list   # the optimizers and problems --method and --problem accept",
)

logger = logging.getLogger(__name__)

# PyYAML follows YAML 1.1, where "1e-5" is a string and "yes"/"off" are booleans; option
# values follow YAML 1.2's core schema instead, which is also what json.dumps writes.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_BOOLEANS = {"true": True, "false": False}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_option(text: str) -> tuple[str, bool | int | float | str]:
    """``KEY=VALUE`` -> ``(key, value)`` with VALUE read as a YAML scalar, never evaluated.

    Integers and decimal numbers (``1e-5`` included) become int and float, ``true`` and
    ``false`` (any case) become bool, quoted or other text stays a string.

    >>> parse_option("beta0=1e-3")
    ('beta0', 0.001)
    >>> parse_option("step_schedule=inverse_sqrt")
    ('step_schedule', 'inverse_sqrt')

    Raises:
        UsageError: no ``=``, a key that is not an identifier, or a value that is not a
            scalar (a list, a mapping, null).
    """
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not _KEY.fullmatch(key):
        raise UsageError(
            f"malformed --option {text!r}; write KEY=VALUE with KEY a Python identifier, "
            f"e.g. --option beta0=0.01"
        )
    import yaml

    raw = raw.strip()
    if _NUMBER.fullmatch(raw):
        number = float(raw)
        return key, int(raw) if re.fullmatch(r"[-+]?\d+", raw) else number
    if raw.lower() in _BOOLEANS:
        return key, _BOOLEANS[raw.lower()]
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        raise UsageError(
            f"--option {key}: cannot read {raw!r} as a YAML scalar; quote it if it is text"
        ) from None
    if isinstance(value, bool):
        return key, raw  # YAML 1.1's yes/no/on/off: plain text under YAML 1.2
    if not isinstance(value, int | float | str):
        raise UsageError(
            f"--option {key}: {raw!r} is not a scalar; give a number, true/false or text "
            f"(one value per --option)"
        )
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True, help="registry name of the optimizer")
    parser.add_argument("--label", help="method label in the trace (default: the --method name)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="optimizer option, value read as a YAML scalar (repeatable)",
    )
    parser.add_argument("--problem", required=True, help="registry name of the problem")
    parser.add_argument("--dim", required=True, type=integer_at_least(1), help="d, noise size")
    parser.add_argument(
        "--steps",
        type=integer_at_least(1),
        default=1,
        help="K, the number of noise injections (default 1: a plain problem)",
    )
    parser.add_argument("--scoring", choices=SCORINGS, default="final", help="default: final")
    parser.add_argument(
        "--seeds",
        required=True,
        nargs="+",
        type=integer_at_least(0),
        metavar="S",
        help="repetition seeds (integers >= 0)",
    )
    parser.add_argument(
        "--budget",
        required=True,
        type=integer_at_least(1),
        help="evaluations per seed (one rollout is one evaluation); on a molecule task the "
        "black-box call budget (a steering method's scores of x0_hat count too)",
    )
    parser.add_argument(
        "--denoiser-budget",
        type=integer_at_least(1),
        metavar="N",
        help="molecule tasks: denoiser evaluations every run spends as well; an ask/tell "
        "method then runs max(budget, ceil(N / (S + 1))) rollouts, a steering method until "
        "both budgets are spent (default: the call budget alone)",
    )
    parser.add_argument(
        "--fresh-samples",
        type=integer_at_least(1),
        default=64,
        metavar="M",
        help="fresh rollouts after the budget for the fresh-sample measure (default 64)",
    )
    parser.add_argument(
        "--record-expected-loss",
        action="store_true",
        help="record the exact J(theta) per batch where the problem has a closed form",
    )
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="cpu",
        help="device of optimizers that use torch, and of the molecule tasks' models "
        "(default: cpu)",
    )
    parser.add_argument(
        "--models-dir",
        help="folder of the stored models the molecule tasks read (default: models in the "
        "current folder)",
    )
    parser.add_argument(
        "--checkpoint-sha256",
        metavar="SHA256",
        help="molecule tasks: the sha256 of the EDM checkpoint's sampling.pt the job is "
        "planned for; refused when the models folder holds another (the workflow gives it, "
        "so that a replaced model reruns its jobs)",
    )
    parser.add_argument(
        "--on-failure",
        choices=FAILURE_POLICIES,
        default="penalty",
        help="what an evaluation whose loss is NaN or infinite, or that raises, does: "
        "penalty records it as failed and tells the optimizer a penalty (the worst finite "
        "loss so far), stop ends the job with an error (default: penalty)",
    )
    parser.add_argument(
        "--failure-penalty",
        type=finite_number,
        default=DEFAULT_FAILURE_PENALTY,
        metavar="X",
        help="the loss told for a failed evaluation before any evaluation of the seed "
        f"succeeded (default: {DEFAULT_FAILURE_PENALTY:g})",
    )
    parser.add_argument(
        "--coco-folder",
        type=writable_folder("COCO observer"),
        help="bbob problems only: a new or empty folder where COCO's observer writes every "
        "seed's search in COCO's data format, for cocopp (casbo-bench cocopp)",
    )
    parser.add_argument("--config-hash", help="hash of the workflow config (for provenance)")
    parser.add_argument(
        "--rule-hash",
        help="registration hash of the claims ledger (its rule, claim records, variants and "
        "the rate check's rule; for provenance: the ledger judges only traces that carry its "
        "own)",
    )
    parser.add_argument(
        "--out", required=True, type=writable_file(".parquet"), help="the Parquet file to write"
    )


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import optimizers, problems, provenance
    from casbo_bench.memory import job_memory_mb, job_uses_torch, machine_memory_mb
    from casbo_bench.runner import Job, JobError, run_job

    options = dict(parse_option(text) for text in arguments.option)
    if len(options) != len(arguments.option):
        raise UsageError("an --option key is given twice; give each key once")
    if arguments.method not in optimizers.available_optimizers():
        raise UsageError(
            f"unknown method {arguments.method!r}; choose one of "
            f"{', '.join(optimizers.available_optimizers())}"
        )
    if arguments.problem not in problems.available_problems():
        raise UsageError(
            f"unknown problem {arguments.problem!r}; choose one of "
            f"{', '.join(problems.available_problems())}"
        )
    if arguments.coco_folder is not None:
        from casbo_bench.problems.bbob import check_coco_folder

        check_coco_folder(arguments.coco_folder)
    need = job_memory_mb(
        arguments.dim,
        arguments.steps,
        arguments.budget,
        arguments.fresh_samples,
        job_uses_torch(arguments.method, arguments.problem),
        len(arguments.seeds),
    )
    if need > machine_memory_mb():
        raise UsageError(
            f"--dim {arguments.dim} --steps {arguments.steps} --budget {arguments.budget} with "
            f"{len(arguments.seeds)} seeds needs about {need} MB by the memory model "
            f"(casbo_bench.memory), more than this machine's {machine_memory_mb()} MB; use a "
            f"smaller --dim, --steps or --budget, or fewer --seeds"
        )
    try:
        job = Job(
            optimizer=arguments.method,
            problem=arguments.problem,
            dim=arguments.dim,
            seeds=tuple(arguments.seeds),
            budget=arguments.budget,
            n_steps=arguments.steps,
            scoring=arguments.scoring,
            label=arguments.label,
            options=options,
            fresh_samples=arguments.fresh_samples,
            record_expected_loss=arguments.record_expected_loss,
            device=arguments.device,
            models_dir=arguments.models_dir,
            on_failure=arguments.on_failure,
            failure_penalty=arguments.failure_penalty,
            coco_folder=None if arguments.coco_folder is None else str(arguments.coco_folder),
            denoiser_budget=arguments.denoiser_budget,
            checkpoint_sha256=arguments.checkpoint_sha256,
        )
    except JobError as error:
        raise UsageError(str(error)) from None
    repetitions: dict[str, Any] = {}
    trace = run_job(job, repetitions)
    record = provenance.collect(
        arguments.config_hash,
        {**job.arguments(), "out": str(arguments.out)},
        claims_rule_hash=arguments.rule_hash,
        repetitions=repetitions,
    )
    from casbo_bench.traces import write_trace  # pandas and pandera: only to write

    write_trace(trace, arguments.out, record)
    logger.info("wrote %d rows to %s", len(trace), arguments.out)
    return 0
