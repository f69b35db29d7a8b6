"""The cost model of a config: what each job of its workflow will take, before it runs.

Read :func:`plan` first. The jobs are the workflow's own: a forced dry run of Snakemake
(``snakemake -n -p --forceall --configfile X``) lists every job with its rule, its shell
command and its resources, so the plan never re-implements the job table of common.smk.

**Run jobs** (rule ``run``, one ``casbo-bench run`` each) are timed by calibration: every
distinct setting ``(method and options, problem kind, d, K)`` runs once, for one seed, at
two budgets ``b1 < b2`` (a tenth and a fifth of the budget of the setting's largest job, at
least :data:`MIN_CALIBRATION_BUDGET`), in a scratch folder. Where the work between them takes
less than :data:`MIN_CALIBRATION_SPREAD_SECONDS`, start-up jitter would set the slope, so
``b2`` is doubled (up to the job's budget) and run again until it does not. With
``t1, t2`` their wall times the job's estimate is

    t_job = c + s B' n_seeds,    s = max(0, (t2 - t1) / (b2 - b1)),
    c = (t1 + t2 - s (b1 + b2)) / 2

with n_seeds the job's seeds and B' its budget, plus its fresh samples on the molecule tasks
(:attr:`RunJob.priced_rollouts`): a start-up cost ``c`` (imports, models, and the
calibration's few fresh samples) and a cost ``s`` per rollout, the optimizer's step
included. On the test functions a fresh sample is a rollout without a step and nearly free:
priced at ``s``, TuRBO's jobs came out 2.4-fold in the default run. A molecule job's
denoiser budget is scaled with B, so that a calibration run spends both budgets in the job's
ratio and ``s`` is the cost per unit of B.
The optimizers whose step grows with the evaluations seen
(TuRBO's GP: ``O(n^3)`` fits) are underestimated by a linear fit; the plan says so by
marking them. The peak memory of a job is the larger of the calibration's peak (at ``b2``)
and the memory model of :mod:`casbo_bench.memory`.

**Other rules** (tables, figures, rate check, claims, reports) cost
:data:`ANALYSIS_SECONDS_PER_INPUT` seconds per input file plus
:data:`ANALYSIS_START_SECONDS`: measured on this project's machine from the Snakemake
benchmark files of the default run (``results/default/benchmarks/``), and small beside the
runs in every config; the rate check, whose bootstrap costs more than its reading, has its
own price per input (:data:`RULE_SECONDS_PER_INPUT`).

CPU-hours are wall seconds of single-threaded jobs (every run job asks for one thread);
the time on ``c`` cores is at least ``total / c`` and at least the longest job.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_text_atomically
from casbo_bench.memory import job_memory_mb, job_uses_torch

MIN_CALIBRATION_BUDGET = 8
"""The smallest calibration budget ``b1`` (``b2`` starts at ``2 b1``): below it the fit is
all noise."""

MIN_CALIBRATION_SPREAD_SECONDS = 2.0
"""The least ``t2 - t1`` a slope is read from. In the claims config's calibration of
2026-11-30 (docs/plans/calibration-2026-11-30.json: fixed budgets, each setting at a tenth
and a fifth of the budget of the first job that had it, often the default config's smaller
one) 170 of 178 settings had ``t2 - t1`` under 2 s, 66 of them below 0: start-up jitter,
not work, set those slopes (docs/plans/claims-partial-2026-11-30.md: estimates 0.7 to 6.5
times the measured job-hours)."""

CALIBRATION_FRESH_SAMPLES = 4
"""Fresh samples of a calibration run (``f`` above)."""

CALIBRATION_TIMEOUT_SECONDS = 900
"""A calibration run still going after this long is stopped and the plan refused (its budgets
are small: on this project's machine the longest takes about a minute)."""

ANALYSIS_START_SECONDS = 6.0
"""Start-up of an analysis rule's process (imports of pandas, pandera, matplotlib)."""

ANALYSIS_SECONDS_PER_INPUT = 0.05
"""Seconds per input file of an analysis rule (reading and validating one trace)."""

RULE_SECONDS_PER_INPUT = {"rate_check": 0.8}
"""Rules whose work per input is far above reading it. The rate check bootstraps the rate
fit and calibrates its rule on synthetic tables (2,000 resamples and 200 replicates in every
config here) over its traces: 162 s for config/claims.yaml's 200 input files
(docs/plans/claims-partial-2026-11-30.md), 0.8 s per file."""

GROWING_STEP = frozenset({"turbo"})
"""Optimizers whose step cost grows with the evaluations seen (estimate is a lower bound)."""


class PlanError(UserFacingError, RuntimeError):
    """The workflow's dry run or a calibration run failed."""


@dataclass(frozen=True)
class PlannedJob:
    """One job of a forced dry run.

    Attributes:
        rule: the rule's name.
        arguments: a ``run`` job's ``casbo-bench run`` arguments (without ``--out``), else ().
        n_inputs: files the job reads.
        mem_mb: the memory the workflow asks the scheduler for (0 where none).
    """

    rule: str
    arguments: tuple[str, ...] = ()
    n_inputs: int = 0
    mem_mb: int = 0


@dataclass(frozen=True)
class RunSetting:
    """What a run job's cost depends on: the method with its options, the problem's kind,
    d and K (the seeds, budget and fresh samples scale it).

    The problem's kind is the molecule task itself (each scorer costs differently), the
    family for bbob, and ``test`` for the closed-form test functions (all cost the same).
    """

    method: tuple[str, ...]
    kind: str
    dim: int
    steps: int


@dataclass
class Calibration:
    """Measured costs of run settings on one machine.

    Attributes:
        machine: where it was measured (processor, cores, Python).
        settings: ``setting key -> {"budgets": [b1, b2], "seconds": [t1, t2], "peak_mb"}``,
            the raw measurements (:func:`fitted_costs` reads the model off them).
    """

    machine: dict[str, Any] = field(default_factory=lambda: machine_record())
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Calibration:
        """The calibration stored at ``path`` (an empty one where there is none)."""
        if not path.is_file():
            return cls(machine=machine_record())
        try:
            data = json.loads(path.read_text())
            stored = cls(machine=data["machine"], settings=data["settings"])
        except (ValueError, KeyError, TypeError) as error:
            raise PlanError(
                f"{path} is not a calibration file ({error}); delete it to calibrate again"
            ) from None
        here = machine_record()
        if any(stored.machine.get(key) != here[key] for key in ("cpu", "logical_cores")):
            raise PlanError(
                f"{path} was calibrated on another machine ({stored.machine.get('cpu')}, "
                f"{stored.machine.get('logical_cores')} cores); name a new --calibration file"
            )
        return stored

    def write(self, path: Path) -> None:
        """Store at ``path``, atomically: a plan stopped while writing keeps the old file."""
        write_text_atomically(path, json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")


def machine_record() -> dict[str, Any]:
    """This machine (a calibration holds only here): the hardware record, Python, node."""
    import platform

    from casbo_bench.provenance import hardware_description

    return {**hardware_description(), "python": platform.python_version(), "node": platform.node()}


# --- the workflow's jobs ---------------------------------------------------------------------

_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_MEM = re.compile(r"\bmem_mb=(\d+)")


def dry_run_jobs(
    configfile: Path, snakemake: Sequence[str] = ("snakemake",), *extra: str
) -> list[PlannedJob]:
    """Every job of ``configfile``'s workflow, finished or not, from a forced dry run
    (``snakemake``: the command; ``extra``: further Snakemake arguments)."""
    command = [*snakemake, "-n", "-p", "--forceall", "--configfile", str(configfile), *extra]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PlanError(f"the workflow's dry run of {configfile} failed: {last}")
    return parse_dry_run(result.stdout + "\n" + result.stderr)


def parse_dry_run(text: str) -> list[PlannedJob]:
    """The jobs of a ``snakemake -n -p`` listing (rule blocks separated by blank lines)."""
    jobs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.splitlines()]
        rules = [m.group(1) for line in lines if (m := _RULE.match(line))]
        if not rules or rules[0] == "all":
            continue
        inputs = next((line[len("input:") :] for line in lines if line.startswith("input:")), "")
        mem = next((int(m.group(1)) for line in lines if (m := _MEM.search(line))), 0)
        shell = next((line for line in lines if line.startswith("Shell command:")), "")
        jobs.append(
            PlannedJob(
                rule=rules[0],
                arguments=_run_arguments(shell[len("Shell command:") :]),
                n_inputs=len([item for item in inputs.split(",") if item.strip()]),
                mem_mb=mem,
            )
        )
    return jobs


def _run_arguments(shell: str) -> tuple[str, ...]:
    """The words after ``casbo_bench run`` up to ``--out`` (empty for other commands)."""
    try:
        words = shlex.split(shell)
    except ValueError:
        return ()
    for i in range(len(words) - 1):
        if words[i] == "casbo_bench" and words[i + 1] == "run":
            rest = words[i + 2 :]
            end = rest.index("--out") if "--out" in rest else len(rest)
            return tuple(rest[:end])
    return ()


# --- run jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunJob:
    """The parts of a run job's arguments the model uses."""

    arguments: tuple[str, ...]
    label: str
    setting: RunSetting
    n_seeds: int
    budget: int
    fresh: int
    denoiser_budget: int | None = None
    uses_torch: bool = False

    @property
    def priced_rollouts(self) -> int:
        """Rollouts per seed priced at the calibrated cost: the budget, plus the fresh samples
        where a rollout costs what a step does (the molecule tasks: a sampler pass, or a
        whole steered sweep); on the test functions a fresh sample is a rollout without an
        optimizer step, nearly free (priced at a step, TuRBO's jobs came out 2.4-fold)."""
        molecule = self.setting.kind.startswith("mol-")
        return self.budget + (self.fresh if molecule else 0)

    def scaled_budgets(self, budget: int) -> dict[str, list[str]]:
        """The run arguments of a calibration run of ``budget`` rollouts: a molecule job's
        denoiser budget shrinks in proportion, so the run spends both in the job's ratio."""
        replace = {"--budget": [str(budget)]}
        if self.denoiser_budget is not None:
            scaled = math.ceil(self.denoiser_budget * budget / self.budget)
            replace["--denoiser-budget"] = [str(scaled)]
        return replace

    @classmethod
    def parse(cls, arguments: Sequence[str]) -> RunJob:
        from casbo_bench.cli.common import Parser
        from casbo_bench.cli.run import add_arguments

        parser = Parser(prog="casbo-bench run")
        add_arguments(parser)
        parsed = parser.parse_args([*arguments, "--out", "plan.parquet"])
        options = tuple(sorted(parsed.option))
        return cls(
            arguments=tuple(arguments),
            label=parsed.label or parsed.method,
            setting=RunSetting(
                method=(parsed.method, *options),
                kind=problem_kind(parsed.problem),
                dim=parsed.dim,
                steps=parsed.steps,
            ),
            n_seeds=len(parsed.seeds),
            budget=parsed.budget,
            fresh=parsed.fresh_samples,
            denoiser_budget=parsed.denoiser_budget,
            uses_torch=job_uses_torch(parsed.method, parsed.problem),
        )


def problem_kind(problem: str) -> str:
    """A problem's cost class: the molecule task, ``bbob``, or ``test``."""
    if problem.startswith("mol-"):
        return problem
    if problem.startswith("bbob-"):
        return "bbob"
    return "test"


def setting_key(setting: RunSetting) -> str:
    return json.dumps(asdict(setting), sort_keys=True)


def calibration_budgets(budget: int) -> tuple[int, int]:
    """``(b1, b2)``: a tenth and a fifth of ``budget``, at least 8 and 16, at most ``budget``."""
    first = min(budget, max(MIN_CALIBRATION_BUDGET, budget // 10))
    return first, min(budget, max(2 * first, budget // 5))


def _with(arguments: Sequence[str], replace: dict[str, list[str]]) -> list[str]:
    """``arguments`` with each ``--flag``'s values replaced (flags take values up to the next
    ``--``)."""
    out: list[str] = []
    skipping = False
    for word in arguments:
        if word.startswith("--"):
            skipping = word in replace
            if skipping:
                out += [word, *replace[word]]
                continue
        if not skipping:
            out.append(word)
    return out


def timed_run(job: RunJob, budget: int, scratch: Path) -> tuple[float, float]:
    """Wall seconds and peak MB of one calibration run of ``job`` (one seed, ``budget``)."""
    trace = scratch / f"calibration_{time.monotonic_ns()}.parquet"
    command = [
        sys.executable,
        "-m",
        "casbo_bench",
        "run",
        *_with(
            job.arguments,
            {
                **job.scaled_budgets(budget),
                "--seeds": ["0"],
                "--fresh-samples": [str(CALIBRATION_FRESH_SAMPLES)],
                # A bbob job's COCO data go to the scratch folder, never beside the results.
                "--coco-folder": [str(trace.with_suffix(".coco"))],
            },
        ),
        "--out",
        str(trace),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        process.kill()

    watchdog = threading.Timer(CALIBRATION_TIMEOUT_SECONDS, stop)
    watchdog.start()
    try:
        stderr = process.stderr.read()
        # wait4, not communicate(): it gives this child's own peak (Linux: KiB).
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        watchdog.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    peak_mb = usage.ru_maxrss / 1024
    if stopped.is_set():
        raise PlanError(
            f"calibration run {shlex.join(command)} was stopped after "
            f"{CALIBRATION_TIMEOUT_SECONDS} s; run it by hand to see where it hangs"
        )
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PlanError(f"calibration run {shlex.join(command)} failed: {last}")
    return seconds, peak_mb


def calibrate(
    jobs: Iterable[RunJob],
    calibration: Calibration,
    log: Any = print,
    keep: Callable[[Calibration], None] | None = None,
) -> int:
    """Measure every setting of ``jobs`` that ``calibration`` lacks or measured too briefly
    (in place); the count. ``keep(calibration)`` is called after each setting (the plan
    writes its file there), so a stopped calibration resumes where it stopped.

    A setting is measured with its largest-budget job, whose budget caps ``b2``. A stored
    record is measured again when its spread is under :data:`MIN_CALIBRATION_SPREAD_SECONDS`
    although its ``b2`` is below that budget: a record made for a smaller config (the
    default's rate check at a tenth of the claims config's budget) must not price a larger one
    by a slope that jitter set.
    """
    largest: dict[str, RunJob] = {}
    for job in jobs:
        key = setting_key(job.setting)
        if key not in largest or job.budget > largest[key].budget:
            largest[key] = job
    todo = {
        key: job
        for key, job in largest.items()
        if key not in calibration.settings or too_brief(calibration.settings[key], job.budget)
    }
    with tempfile.TemporaryDirectory(prefix="casbo-plan-") as folder:
        for i, (key, job) in enumerate(sorted(todo.items()), 1):
            calibration.settings[key] = measured = measure_setting(job, Path(folder))
            (b1, b2), (t1, t2) = measured["budgets"], measured["seconds"]
            log(f"calibrated {i}/{len(todo)}: {job.setting} ({b1}: {t1:.1f} s, {b2}: {t2:.1f} s)")
            if keep is not None:
                keep(calibration)
    return len(todo)


def too_brief(measured: dict[str, Any], budget: int) -> bool:
    """Whether a calibration record's spread ``t2 - t1`` is under the least a slope is read
    from while a longer run (up to ``budget``) could have widened it."""
    (_, b2), (t1, t2) = measured["budgets"], measured["seconds"]
    return t2 - t1 < MIN_CALIBRATION_SPREAD_SECONDS and b2 < budget


def measure_setting(job: RunJob, scratch: Path) -> dict[str, Any]:
    """The calibration record of ``job``'s setting: runs at ``b1`` and ``b2``, with ``b2``
    doubled while ``t2 - t1 < MIN_CALIBRATION_SPREAD_SECONDS`` and ``b2`` is below the job's
    budget (so a calibration costs at most about two seeds of the job)."""
    b1, b2 = calibration_budgets(job.budget)
    t1, _ = timed_run(job, b1, scratch)
    t2, peak = timed_run(job, b2, scratch)
    while too_brief({"budgets": [b1, b2], "seconds": [t1, t2]}, job.budget):
        b2 = min(job.budget, 2 * b2)
        t2, peak = timed_run(job, b2, scratch)
    return {"budgets": [b1, b2], "seconds": [t1, t2], "peak_mb": peak}


def fitted_costs(measured: dict[str, Any]) -> tuple[float, float]:
    """``(c, s)``: the start-up and per-rollout seconds of two calibration runs (module
    docstring). Where the work is small beside the start-up's noise the slope is 0 and both
    runs measure the start-up: their mean is then the estimate."""
    (b1, b2), (t1, t2) = measured["budgets"], measured["seconds"]
    per_rollout = max(0.0, (t2 - t1) / (b2 - b1)) if b2 > b1 else 0.0
    return max(0.0, (t1 + t2 - per_rollout * (b1 + b2)) / 2), per_rollout


@dataclass(frozen=True)
class Estimate:
    """The model's estimate of one job."""

    rule: str
    label: str
    seconds: float
    peak_mb: float
    lower_bound: bool = False


def estimate_run(job: RunJob, calibration: Calibration) -> Estimate:
    measured = calibration.settings[setting_key(job.setting)]
    start, per_rollout = fitted_costs(measured)
    seconds = start + per_rollout * job.n_seeds * job.priced_rollouts
    model_mb = job_memory_mb(
        job.setting.dim, job.setting.steps, job.budget, job.fresh, job.uses_torch, job.n_seeds
    )
    return Estimate(
        rule="run",
        label=job.label,
        seconds=seconds,
        peak_mb=max(float(measured["peak_mb"]), float(model_mb)),
        lower_bound=job.setting.method[0] in GROWING_STEP,
    )


def estimate_analysis(job: PlannedJob) -> Estimate:
    return Estimate(
        rule=job.rule,
        label="",
        seconds=ANALYSIS_START_SECONDS
        + RULE_SECONDS_PER_INPUT.get(job.rule, ANALYSIS_SECONDS_PER_INPUT) * job.n_inputs,
        peak_mb=float(job.mem_mb),
    )


def plan(
    jobs: Sequence[PlannedJob],
    calibration: Calibration,
    log: Any = print,
    keep: Callable[[Calibration], None] | None = None,
) -> list[Estimate]:
    """Every job's estimate, calibrating the run settings ``calibration`` lacks first
    (``keep``: as in :func:`calibrate`)."""
    runs = [RunJob.parse(job.arguments) for job in jobs if job.arguments]
    calibrate(runs, calibration, log, keep)
    estimates = [estimate_run(job, calibration) for job in runs]
    estimates += [estimate_analysis(job) for job in jobs if not job.arguments]
    return estimates


@dataclass(frozen=True)
class PlanRow:
    """The plan of one (rule, method), or of everything (rule ``total``).

    Attributes:
        cpu_hours: the jobs' summed estimate.
        longest_job_s: the longest job's estimate.
        peak_mb: the largest job's peak memory.
        lower_bound: some job's step grows with its evaluations (:data:`GROWING_STEP`).
    """

    rule: str
    method: str
    jobs: int
    cpu_hours: float
    longest_job_s: float
    peak_mb: int
    lower_bound: bool

    @classmethod
    def of(cls, rule: str, method: str, members: Sequence[Estimate]) -> PlanRow:
        seconds = [member.seconds for member in members]
        return cls(
            rule=rule,
            method=method,
            jobs=len(members),
            cpu_hours=sum(seconds) / 3600,
            longest_job_s=max(seconds),
            peak_mb=math.ceil(max(member.peak_mb for member in members)),
            lower_bound=any(member.lower_bound for member in members),
        )

    def wall_hours(self, cores: int) -> float:
        """The least wall time on ``cores`` cores: the work shared out, or the longest job."""
        return max(self.cpu_hours / max(1, cores), self.longest_job_s / 3600)


def summary_rows(estimates: Sequence[Estimate]) -> list[PlanRow]:
    """One row per (rule, method), then the total."""
    groups: dict[tuple[str, str], list[Estimate]] = {}
    for estimate in estimates:
        groups.setdefault((estimate.rule, estimate.label), []).append(estimate)
    rows = [PlanRow.of(rule, label, members) for (rule, label), members in sorted(groups.items())]
    return [*rows, PlanRow.of("total", "", list(estimates))]


@dataclass(frozen=True)
class Measured:
    """What a run's finished jobs of one (rule, method) cost, from Snakemake's benchmark files.

    Attributes:
        jobs: benchmark rows read, one per finished job (a job that has not finished has none).
        wall_seconds: summed wall time of the jobs (column ``s``), what the plan estimates:
            a one-thread job's time on a core of its own. Snakemake's ``cpu_time`` column is
            not used: it samples the process tree every 30 s after the first 15 s, so it
            misses the tail of every job.
        peak_mb: the largest resident memory of a job (column ``max_rss``, MB), a lower
            bound: Snakemake samples it like ``cpu_time``. For a rule that runs inside
            Snakemake's own process (``run:``), both columns measure Snakemake's process.
    """

    jobs: int = 0
    wall_seconds: float = 0.0
    peak_mb: float = 0.0

    def plus(self, row: dict[str, str]) -> Measured:
        """This record with one more job, a benchmark file's row."""

        def number(column: str) -> float:
            value = row.get(column, "")
            return float(value) if value not in ("", "-", "NA") else 0.0

        return Measured(
            jobs=self.jobs + 1,
            wall_seconds=self.wall_seconds + number("s"),
            peak_mb=max(self.peak_mb, number("max_rss")),
        )

    @classmethod
    def total(cls, records: Iterable[Measured]) -> Measured:
        """All records together."""
        records = list(records)
        return cls(
            jobs=sum(record.jobs for record in records),
            wall_seconds=sum(record.wall_seconds for record in records),
            peak_mb=max((record.peak_mb for record in records), default=0.0),
        )


def measured_rows(benchmarks: Path) -> dict[tuple[str, str], Measured]:
    """What a run's jobs cost per (rule, method), from its Snakemake benchmark files.

    A run job's file lies in its method's folder below a ``raw`` folder
    (``raw/<group>/<method>/``, ``robustness/raw/<group>/<method>/``,
    ``rate_checks/raw/<method>/``, ``molecules/raw/<method>/``); any other file is an
    analysis rule's, at ``<rule>.tsv`` or ``<rule>/<wildcards>.tsv``.
    """
    import csv

    totals: dict[tuple[str, str], Measured] = {}
    for path in sorted(benchmarks.rglob("*.tsv")):
        parts = path.relative_to(benchmarks).parts
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        # A run job's file sits in its method's folder.
        key = ("run", parts[-2]) if "raw" in parts[:-1] else (Path(parts[0]).stem, "")
        for row in rows:
            totals[key] = totals.get(key, Measured()).plus(row)
    return totals
