"""``casbo-bench plan``: what a config will cost on this machine, before it runs."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from casbo_bench.cli.common import UsageError, integer_at_least

if TYPE_CHECKING:
    from casbo_bench.costs import Measured, PlanRow

NAME = "plan"
HELP = "Estimate the CPU-hours and peak memory of a config's jobs from calibration runs."
DESCRIPTION = (
    "Estimate what a config will take on this machine: every job of its workflow (a forced "
    "Snakemake dry run), each run setting calibrated by two short runs (kept in --calibration "
    "for the next plan), summed per rule and method into CPU-hours, the longest job, peak "
    "memory and the wall time on --cores cores (casbo_bench.costs states the model). With "
    "--compare, a run's Snakemake benchmark files (finished jobs) are set beside the estimate."
)
EXAMPLES = (
    "casbo-bench plan --configfile config/config.yaml",
    "casbo-bench plan --configfile config/paper.yaml --cores 64 --calibration plan/cluster.json",
    "casbo-bench plan --configfile config/config.yaml --compare results/default/benchmarks",
)

DEFAULT_CALIBRATION = Path("results/plan/calibration.json")

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", required=True, type=Path, help="the config to plan")
    parser.add_argument(
        "--cores", type=integer_at_least(1), default=2, help="cores of the run (default 2)"
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        default=DEFAULT_CALIBRATION,
        help=f"measured settings, read and extended (default {DEFAULT_CALIBRATION})",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="a run's benchmark folder (results/<name>/benchmarks): its finished jobs are set "
        "beside the estimate",
    )
    parser.add_argument("--snakemake", default="snakemake", help="the snakemake executable")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import costs

    if not arguments.configfile.is_file():
        raise UsageError(f"--configfile {arguments.configfile}: no such file; name a config")
    if arguments.compare is not None and not arguments.compare.is_dir():
        raise UsageError(
            f"--compare {arguments.compare}: no such folder; name results/<name>/benchmarks of "
            f"a run"
        )
    jobs = costs.dry_run_jobs(arguments.configfile, [arguments.snakemake])
    calibration = costs.Calibration.read(arguments.calibration)
    estimates = costs.plan(
        jobs, calibration, logger.info, keep=lambda done: done.write(arguments.calibration)
    )
    calibration.write(arguments.calibration)
    rows = costs.summary_rows(estimates)
    measured = costs.measured_rows(arguments.compare) if arguments.compare else None
    print(format_plan(rows, measured, arguments.configfile, arguments.cores))
    return 0


def format_plan(
    rows: Sequence[PlanRow],
    measured: dict[tuple[str, str], Measured] | None,
    configfile: Path,
    cores: int,
) -> str:
    """The plan as a Markdown table, with what a run's jobs cost beside it when compared.

    The estimate is of one-thread jobs each on a core of its own, so it is set against the
    jobs' summed wall time (their CPU-hours when no job waited for a core), with their peak
    memory beside it. The ratio is given only where every planned job of the row has a
    benchmark file (a run still going has fewer).
    """
    from casbo_bench.costs import Measured

    header = ["rule", "method", "jobs", "CPU-hours", "longest job (s)", "peak MB"]
    if measured is not None:
        header += [
            "measured jobs",
            "measured job-hours",
            "measured peak MB",
            "estimate / measured",
        ]
    lines = [
        f"# Plan of {configfile} on this machine ({cores} cores)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    # The total counts only the planned rows' files (not a stale file's, nor training's).
    planned = {(row.rule, row.method) for row in rows if row.rule != "total"}
    for row in rows:
        mark = " (lower bound)" if row.lower_bound else ""
        cells = [
            row.rule,
            f"{row.method}{mark}",
            str(row.jobs),
            f"{row.cpu_hours:.3f}",
            f"{row.longest_job_s:.0f}",
            str(row.peak_mb),
        ]
        if measured is not None:
            record = (
                Measured.total(measured.get(key, Measured()) for key in planned)
                if row.rule == "total"
                else measured.get((row.rule, row.method), Measured())
            )
            if record.jobs:
                complete = record.jobs == row.jobs and record.wall_seconds > 0
                cells += [
                    str(record.jobs),
                    f"{record.wall_seconds / 3600:.3f}",
                    f"{record.peak_mb:.0f}",
                    f"{row.cpu_hours * 3600 / record.wall_seconds:.2f}" if complete else "",
                ]
            else:
                cells += ["0", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    total = rows[-1]
    lines += [
        "",
        f"Total: {total.cpu_hours:.2f} CPU-hours; at least {total.wall_hours(cores):.2f} h of "
        f"wall time on {cores} cores; the largest job needs {total.peak_mb} MB.",
    ]
    return "\n".join(lines)
