"""The ``casbo-bench`` command line: wiring from arguments to the layers below.

Subcommands: ``run`` (one job, one Parquet trace), ``aggregate`` (tables), ``figures``,
``validate``, ``rates`` (the d^2/sqrt(T) rate check) and ``claims`` (the claims ledger).
Every user error prints exactly one line ``casbo-bench: error: ...`` on stderr and exits
with status 2; ``--debug`` shows the traceback instead. Each subcommand's
``--help`` ends with examples, e.g.::

    casbo-bench run --method casbo --problem sphere --dim 10 --seeds 0 1 --budget 500 --out s.pq
    casbo-bench validate s.pq
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from casbo_bench import __version__, optimizers, problems, provenance
from casbo_bench.optimizers.base import NonFiniteLossError, OptimizerError
from casbo_bench.problems.base import ProblemError
from casbo_bench.runner import (
    Job,
    JobError,
    TraceFileError,
    read_provenance,
    read_trace,
    run_job,
    write_trace,
)
from casbo_bench.schemas.trace import RUN_KEYS, SCORINGS, TraceValidationError

PROG = "casbo-bench"
EXIT_USER_ERROR = 2

logger = logging.getLogger(__name__)


class UsageError(Exception):
    """A command-line mistake; the message says what is wrong and how to fix it."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become :class:`UsageError` (one line, status 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _integer_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}; got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1; got {value}")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number; got {text!r}")
    return value


def _non_negative_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text!r}")
    return value


def _iteration_grid(text: str) -> list[int]:
    """``"3,10,30"`` -> ``[3, 10, 30]``: at least two distinct integers >= 1."""
    try:
        grid = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 3,10,30; got {text!r}"
        ) from None
    if len(grid) < 2 or min(grid) < 1 or len(set(grid)) != len(grid):
        raise argparse.ArgumentTypeError(
            f"needs at least two distinct iteration counts >= 1; got {text!r}"
        )
    return sorted(grid)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _TargetsAction(argparse.Action):
    """``--targets T [T ...] FILE ...``: leading numbers are targets, the rest trace files.

    argparse's ``nargs="+"`` would take the files too, and the workflow writes the targets
    right before the files; the files found here are put in front of the positional ones.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        texts = [str(value) for value in values or []]
        count = next((i for i, text in enumerate(texts) if not _is_number(text)), len(texts))
        if count == 0:
            raise argparse.ArgumentError(self, "expected at least one number")
        try:
            targets = [_positive_number(text) for text in texts[:count]]
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentError(self, str(error)) from None
        setattr(namespace, self.dest, targets)
        namespace.files_after_targets = [Path(text) for text in texts[count:]]


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


def _epilog(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


def build_parser() -> argparse.ArgumentParser:
    """The ``casbo-bench`` argument parser with its six subcommands."""
    parser = _Parser(
        prog=PROG,
        description="Reproducibility benchmark of covariance-adaptive sequential black-box "
        "optimization (CASBO): run jobs, validate traces, build tables and figures.",
        epilog=_epilog(
            f"{PROG} run --method casbo --problem sphere --dim 10 --seeds 0 1 2 "
            "--budget 500 --out sphere.parquet",
            f"{PROG} validate sphere.parquet",
            f"{PROG} aggregate --out-dir tables sphere.parquet",
            f"{PROG} figures --out-dir figures sphere.parquet",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of any error",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[debug],
            epilog=_epilog(*examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = command(
        "run",
        "Run one optimizer on one problem for a batch of seeds; write one Parquet trace.",
        f"{PROG} run --method casbo --problem ellipsoid --dim 10 --seeds 0 1 2 "
        "--budget 2000 --out ellipsoid.parquet",
        f"{PROG} run --method casbo --label casbo-decay --option step_schedule=inverse_sqrt "
        "--problem sphere --dim 8 --steps 5 --scoring cumulative --seeds 0 --budget 400 "
        "--record-expected-loss --out decay.parquet",
        f"{PROG} run --method cmaes --problem rastrigin --dim 4 --steps 5 --seeds 0 1 "
        "--budget 400 --fresh-samples 128 --device cpu --out rastrigin.parquet",
    )
    run.add_argument("--method", required=True, help="registry name of the optimizer")
    run.add_argument("--label", help="method label in the trace (default: the --method name)")
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="optimizer option, value read as a YAML scalar (repeatable)",
    )
    run.add_argument("--problem", required=True, help="registry name of the problem")
    run.add_argument("--dim", required=True, type=_integer_at_least(1), help="d, noise size")
    run.add_argument(
        "--steps",
        type=_integer_at_least(1),
        default=1,
        help="K, the number of noise injections (default 1: a plain problem)",
    )
    run.add_argument("--scoring", choices=SCORINGS, default="final", help="default: final")
    run.add_argument(
        "--seeds",
        required=True,
        nargs="+",
        type=_integer_at_least(0),
        metavar="S",
        help="repetition seeds (integers >= 0)",
    )
    run.add_argument(
        "--budget",
        required=True,
        type=_integer_at_least(1),
        help="evaluations per seed (one rollout is one evaluation)",
    )
    run.add_argument(
        "--fresh-samples",
        type=_integer_at_least(1),
        default=64,
        metavar="M",
        help="fresh rollouts after the budget for the fresh-sample measure (default 64)",
    )
    run.add_argument(
        "--record-expected-loss",
        action="store_true",
        help="record the exact J(theta) per batch where the problem has a closed form",
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="device of optimizers that use torch (default: cpu)",
    )
    run.add_argument("--config-hash", help="hash of the workflow config (for provenance)")
    run.add_argument(
        "--rule-hash",
        help="registration hash of the claims ledger (its rule, claim records, variants and "
        "the rate check's rule; for provenance: the ledger judges only traces that carry its "
        "own)",
    )
    run.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    run.set_defaults(handler=_run)

    aggregate = command(
        "aggregate",
        "Build the tables (final loss, significance against the reference, ERT) from traces.",
        f"{PROG} aggregate --out-dir results/default/tables/plain results/default/raw/plain/"
        "*/*.parquet",
        f"{PROG} aggregate --out-dir tables --reference casbo --alpha 0.05 "
        "--targets 1 0.01 1e-6 traces/*.parquet",
    )
    aggregate.add_argument("--out-dir", required=True, type=Path, help="folder of the tables")
    aggregate.add_argument(
        "--reference", default="casbo", help="method every other is tested against"
    )
    aggregate.add_argument(
        "--alpha", type=_probability, help="significance level of the Holm-corrected tests"
    )
    aggregate.add_argument(
        "--targets",
        nargs="+",
        action=_TargetsAction,
        metavar="T",
        help="fixed loss targets of the expected-running-time table",
    )
    aggregate.add_argument("files", nargs="*", type=Path, metavar="FILE.parquet")
    aggregate.set_defaults(handler=_aggregate)

    figures = command(
        "figures",
        "Draw convergence curves and the win matrix from traces (PDF and PNG).",
        f"{PROG} figures --out-dir paper_figures/default/plain results/default/raw/plain/"
        "*/*.parquet",
    )
    figures.add_argument("--out-dir", required=True, type=Path, help="folder of the figures")
    figures.add_argument(
        "--confidence",
        type=_probability,
        default=0.95,
        help="level of the bootstrap band around the median curve (default 0.95)",
    )
    figures.add_argument(
        "--seed",
        type=_integer_at_least(0),
        default=0,
        help="seed of the bootstrap resampling (default 0)",
    )
    figures.add_argument("files", nargs="+", type=Path, metavar="FILE.parquet")
    figures.set_defaults(handler=_figures)

    validate = command(
        "validate",
        "Check trace files against the trace schema and their provenance; one line per file.",
        f"{PROG} validate results/default/raw/plain/casbo/*.parquet",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE.parquet")
    validate.set_defaults(handler=_validate)

    rates = command(
        "rates",
        "Judge the O(d^2/sqrt(T)) rate on traces with the exact expected loss: average gaps "
        "R_T, a log-log fit in T and d with seed-bootstrap upper limits, local slopes over the "
        "last two decades of T per d, a verdict per check (pass, no positive evidence at this "
        "horizon, fail) and the rule's calibration on synthetic power laws (docs/method.md "
        "section 6).",
        f"{PROG} rates --out-dir results/default/rate_checks --iterations 3,10,30,100,300 "
        "--t-tolerance 0.1 --d-tolerance 0.25 --bound-factor 2 "
        "results/default/rate_checks/raw/*/*.parquet",
        f"{PROG} rates --out-dir rc --table-dir tables --figure-dir figures "
        "--iterations 3,30,300 --check casbo-decay:sphere:claim --check random:sphere:control "
        "--check casbo-mean-only:sphere:control --check casbo-decay:rastrigin:control:may-fail "
        "--t-tolerance 0.1 --d-tolerance 0.25 --bound-factor 2 --resamples 2000 --seed 0 "
        "--steepening-confidence 0.95 --floor-tolerance 0.1 --calibration-replicates 200 "
        "--calibration-t-exponents=-0.3,-0.5,-0.7 --calibration-d-exponents=1.5,2,3 "
        "traces/*.parquet",
    )
    rates.add_argument(
        "--out-dir", required=True, type=Path, help="folder of verdicts.csv and gaps.csv"
    )
    rates.add_argument(
        "--table-dir", type=Path, help="folder of rate_checks.csv, .md and .tex (optional)"
    )
    rates.add_argument("--figure-dir", type=Path, help="folder of the rate figures (optional)")
    rates.add_argument(
        "--iterations",
        required=True,
        type=_iteration_grid,
        metavar="T,T,...",
        help="the T grid, comma-separated iteration counts (at least two), e.g. 3,10,30,100,300",
    )
    rates.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="METHOD:PROBLEM:ROLE[:EXPECTATION]",
        help="a check and its role (claim, control, observation) and optionally what a sound "
        "check gives (pass, must-fail, may-fail, none); repeatable (default: every method "
        "and problem of the traces as a claim)",
    )
    rates.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=OF",
        help="mark method LABEL as a robustness variant of method OF (repeatable)",
    )
    rates.add_argument(
        "--t-tolerance",
        required=True,
        type=_non_negative_number,
        help="pre-registered: how far above -1/2 the T-exponent's upper limit may lie",
    )
    rates.add_argument(
        "--d-tolerance",
        required=True,
        type=_non_negative_number,
        help="pre-registered: how far above 2 the d-exponent's upper limit may lie",
    )
    rates.add_argument(
        "--bound-factor",
        required=True,
        type=_positive_number,
        help="pre-registered: how far R_T at the largest d and T may exceed the bound with C "
        "fitted at the smallest (>= 1)",
    )
    rates.add_argument(
        "--confidence",
        type=_probability,
        default=0.95,
        help="level of the one-sided upper limits (default 0.95)",
    )
    rates.add_argument(
        "--resamples", type=_integer_at_least(100), default=2000, help="bootstrap resamples"
    )
    rates.add_argument(
        "--seed",
        type=_integer_at_least(0),
        default=0,
        help="seed of the bootstrap and the calibration (default 0)",
    )
    rates.add_argument(
        "--steepening-confidence",
        type=_probability,
        default=0.95,
        help="pre-registered: level of the two-sided intervals of the local slopes; a slope "
        "is still steepening when its change's whole interval lies below 0 (default 0.95)",
    )
    rates.add_argument(
        "--floor-tolerance",
        type=_non_negative_number,
        default=0.1,
        help="pre-registered: a mean-only control behaves when J(theta_T) - J* at the largest T "
        "is within [1, 1 + tolerance] times its frozen-law floor (default 0.1)",
    )
    rates.add_argument(
        "--calibration-replicates",
        type=_integer_at_least(0),
        default=200,
        help="synthetic gap tables per pair of true exponents (0: no calibration; default 200)",
    )
    rates.add_argument(
        "--calibration-t-exponents",
        type=_number_list,
        default=[-0.3, -0.5, -0.7],
        metavar="A,A,...",
        help="true T-exponents of the calibration; write --calibration-t-exponents=-0.3,-0.5 "
        "(with '=': the values start with '-'; default -0.3,-0.5,-0.7)",
    )
    rates.add_argument(
        "--calibration-d-exponents",
        type=_number_list,
        default=[1.5, 2.0, 3.0],
        metavar="B,B,...",
        help="true d-exponents of the calibration (default 1.5,2,3)",
    )
    rates.add_argument("files", nargs="+", type=Path, metavar="FILE.parquet")
    rates.set_defaults(handler=_rates)

    claims = command(
        "claims",
        "Write the claims ledger (claims.csv, claims.md): a verdict for every claim record of "
        "the spec (the config's claims block, resolved by the workflow), by its pre-registered "
        "rule; traces run under another rule are refused.",
        f"{PROG} claims --spec results/default/claims_spec.json --out-dir results/default "
        "--benchmark plain results/default/raw/plain/*/*.parquet --benchmark sequential "
        "results/default/raw/sequential/*/*.parquet --rate-verdicts "
        "results/default/rate_checks/verdicts.csv",
        f"{PROG} claims --spec spec.json --out-dir out --benchmark sequential seq/*.parquet "
        "robust/*.parquet --benchmark molecules molecules/raw/*/*.parquet",
    )
    claims.add_argument(
        "--spec",
        required=True,
        type=Path,
        help="claims_spec.json: the rule, the claim records, variants, stand-ins, config label",
    )
    claims.add_argument(
        "--out-dir", required=True, type=Path, help="folder of claims.csv and claims.md"
    )
    claims.add_argument(
        "--benchmark",
        action="append",
        nargs="+",
        default=[],
        metavar="GROUP FILE.parquet",
        help="a benchmark group: its name, then its trace files (variants' included); repeatable",
    )
    claims.add_argument(
        "--rate-verdicts", type=Path, help="verdicts.csv of 'casbo-bench rates' (optional)"
    )
    claims.set_defaults(handler=_claims)
    return parser


def _writable_folder(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and check it can be written, before any work is done."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot create the {what} folder {folder}: {error.strerror or error}; "
            f"choose a writable location"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"the {what} folder {folder} is not writable; choose another location")
    return folder


def _run(arguments: argparse.Namespace) -> int:
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
    _writable_folder(arguments.out.parent, "output")
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
    write_trace(trace, arguments.out, record)
    logger.info("wrote %d rows to %s", len(trace), arguments.out)
    return 0


def _analysis_module(name: str) -> Any:
    """``casbo_bench.analysis.<name>``, imported only by the subcommands that need it."""
    try:
        return importlib.import_module(f"casbo_bench.analysis.{name}")
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.startswith("casbo_bench"):
            raise UsageError(
                f"the analysis module casbo_bench.analysis.{name} is not installed; "
                f"reinstall casbo-bench"
            ) from None
        raise


def _aggregate(arguments: argparse.Namespace) -> int:
    files = [*getattr(arguments, "files_after_targets", []), *arguments.files]
    if not files:
        raise UsageError("give at least one trace file; see 'casbo-bench aggregate --help'")
    io, tables = _analysis_module("io"), _analysis_module("tables")
    settings: dict[str, Any] = {"reference": arguments.reference}
    if arguments.alpha is not None:
        settings["alpha"] = arguments.alpha
    if arguments.targets is not None:
        if len(set(arguments.targets)) != len(arguments.targets):
            raise UsageError(f"--targets must be distinct; got {arguments.targets}")
        settings["targets"] = tuple(arguments.targets)
    _writable_folder(arguments.out_dir, "table")
    traces = io.load_traces(files)
    try:
        built = tables.build_tables(traces, **settings)
    except tables.MissingReferenceError as error:
        raise UsageError(f"{error} (set it with --reference)") from None
    written = tables.write_tables(built, arguments.out_dir)
    logger.info("wrote %d table files to %s", len(written), arguments.out_dir)
    return 0


def _figures(arguments: argparse.Namespace) -> int:
    io, figures = _analysis_module("io"), _analysis_module("figures")
    _writable_folder(arguments.out_dir, "figure")
    written = figures.make_figures(
        io.load_traces(arguments.files),
        arguments.out_dir,
        seed=arguments.seed,
        confidence=arguments.confidence,
    )
    logger.info("wrote %d figure files to %s", len(written), arguments.out_dir)
    return 0


def _validate(arguments: argparse.Namespace) -> int:
    failed = 0
    for path in arguments.files:
        try:
            trace = read_trace(path)
            record = read_provenance(path)
        except (TraceFileError, TraceValidationError) as error:
            failed += 1
            detail = "; ".join(line.strip(" -") for line in str(error).splitlines()[1:])
            print(f"{path}: invalid: {detail or error}")
            continue
        runs = len(trace.drop_duplicates(list(RUN_KEYS)))
        print(
            f"{path}: ok ({len(trace)} rows, {runs} run(s), commit "
            f"{str(record.get('git_commit', 'unknown'))[:12]})"
        )
    if failed:
        raise UsageError(
            f"{failed} of {len(arguments.files)} trace file(s) failed validation (see above)"
        )
    return 0


def _number_list(text: str) -> list[float]:
    """``"-0.3,-0.5"`` -> ``[-0.3, -0.5]``: at least one finite number."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as -0.3,-0.5,-0.7; got {text!r}"
        ) from None
    if not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"every number must be finite; got {text!r}")
    return values


def _rate_checks(texts: Sequence[str], variants: Sequence[str], rates: Any) -> list[Any]:
    """``--check`` and ``--variant`` texts as :class:`~casbo_bench.analysis.rates.RateCheck`."""
    variant_of: dict[str, str] = {}
    for text in variants:
        label, separator, of = text.partition("=")
        if not separator or not label or not of:
            raise UsageError(f"malformed --variant {text!r}; write LABEL=OF, e.g. casbo-rank=casbo")
        variant_of[label] = of
    checks = []
    for text in texts:
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise UsageError(
                f"malformed --check {text!r}; write METHOD:PROBLEM:ROLE[:EXPECTATION], e.g. "
                f"random:sphere:control"
            )
        method, problem, role = parts[:3]
        expectation = parts[3] if len(parts) == 4 else ""
        checks.append(
            rates.RateCheck(method, problem, role, expectation, variant_of.get(method, ""))
        )
    return checks


def _rates(arguments: argparse.Namespace) -> int:
    rates = _analysis_module("rates")
    from casbo_bench.schemas.claims import ClaimsValidationError

    for folder, what in (
        (arguments.out_dir, "rate-check"),
        (arguments.table_dir, "table"),
        (arguments.figure_dir, "figure"),
    ):
        if folder is not None:
            _writable_folder(folder, what)
    try:
        rule = rates.RateRule(
            t_tolerance=arguments.t_tolerance,
            d_tolerance=arguments.d_tolerance,
            bound_factor=arguments.bound_factor,
            confidence=arguments.confidence,
            n_resamples=arguments.resamples,
            seed=arguments.seed,
            steepening_confidence=arguments.steepening_confidence,
            floor_tolerance=arguments.floor_tolerance,
            calibration_replicates=arguments.calibration_replicates,
            calibration_t_exponents=tuple(arguments.calibration_t_exponents),
            calibration_d_exponents=tuple(arguments.calibration_d_exponents),
        )
        checks = _rate_checks(arguments.check, arguments.variant, rates)
        # J* and the frozen-law floor come from each trace's provenance (older traces: J* = 0).
        gaps = rates.average_gaps_of_files(arguments.files, arguments.iterations, read_provenance)
        if not checks:
            pairs = gaps[["method", "problem"]].drop_duplicates().itertuples(index=False)
            checks = [rates.RateCheck(str(m), str(p), "claim") for m, p in pairs]
        results = rates.judge_rate_checks(gaps, checks, rule)
    except (rates.RateCheckError, ClaimsValidationError) as error:
        raise UsageError(str(error)) from None
    written = rates.write_rate_outputs(results, gaps, arguments.out_dir, arguments.table_dir)
    if arguments.figure_dir is not None:
        written += _analysis_module("rate_figures").make_rate_figures(
            gaps, results.verdicts, results.local_slopes, arguments.figure_dir
        )
    for row in results.verdicts.itertuples(index=False):
        logger.info(
            "%s on %s (%s): %s, a = %.3g (UCL %.3g), b = %.3g (UCL %.3g), control_ok %s",
            row.method,
            row.problem,
            row.role,
            row.verdict,
            row.a_hat,
            row.a_ucl,
            row.b_hat,
            row.b_ucl,
            row.control_ok,
        )
    logger.info("wrote %d files", len(written))
    return 0


def _claims(arguments: argparse.Namespace) -> int:
    io, rates, claims = (_analysis_module(n) for n in ("io", "rates", "claims"))
    from casbo_bench.schemas.claims import ClaimsValidationError

    if not arguments.benchmark:
        raise UsageError(
            "give at least one --benchmark GROUP FILE...; see 'casbo-bench claims --help'"
        )
    groups: dict[str, list[Path]] = {}
    for name, *files in arguments.benchmark:
        if not files:
            raise UsageError(f"--benchmark {name} lists no trace files; give GROUP FILE...")
        if name in groups:
            raise UsageError(f"--benchmark {name} is given twice; give each group once")
        groups[name] = [Path(file) for file in files]
    _writable_folder(arguments.out_dir, "claims")
    try:
        spec = claims.read_spec(arguments.spec)
        benchmarks = {name: io.load_traces(files) for name, files in groups.items()}
        claims.check_registration(
            {str(path): read_provenance(path) for files in groups.values() for path in files},
            spec.registration_hash,
        )
        verdicts = rates.read_verdicts(arguments.rate_verdicts) if arguments.rate_verdicts else None
        ledger = claims.build_ledger(spec, benchmarks, rate_verdicts=verdicts)
    except (claims.ClaimsError, ClaimsValidationError) as error:
        raise UsageError(str(error)) from None
    written = claims.write_ledger(ledger, arguments.out_dir, spec)
    overall = ledger[(ledger["row"] == "overall") & (ledger["variant_of"] == "")]
    for row in overall.itertuples(index=False):
        logger.info(
            "%s (%s, %s): %s: %s", row.claim_id, row.scope, row.source, row.verdict, row.reason
        )
    logger.info("wrote %s", ", ".join(map(str, written)))
    return 0


USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    JobError,
    TraceFileError,
    TraceValidationError,
    ProblemError,
    OptimizerError,
    NonFiniteLossError,
    OSError,
)
"""Exceptions reported as one error line (status 2); anything else is a bug: traceback."""


def _one_line(error: BaseException) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``casbo-bench``; returns the exit status (0 or 2).

    Progress goes to stderr through the ``casbo_bench`` loggers, at INFO level, for the
    duration of the call.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    package_logger = logging.getLogger("casbo_bench")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        arguments = build_parser().parse_args(argv)
        status: int = arguments.handler(arguments)
        return status
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
