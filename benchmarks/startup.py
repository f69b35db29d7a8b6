"""Start-up time, end-to-end time and peak memory of one benchmark job per method.

A job is ``python -m casbo_bench run --method M --problem sphere --dim 4 --seeds 0 --budget
300 --out X`` with one thread (``OMP_NUM_THREADS=1`` and its kin), exactly as the workflow's
rule run calls it (workflow/rules/run.smk). For each method three numbers are measured, each
in its own child process:

- start-up: wall and CPU time from launching the job to its optimizer's first ``ask``
  (imports, the command line, building the problem and the optimizer); the child stops there;
- end-to-end: wall and CPU time (user + system) of the whole job, trace and sidecar written;
- peak memory: the job's maximum resident set size (``ru_maxrss`` of that one child, from
  ``os.wait4``).

``--ref REF`` measures a second checkout too, the package at git ref REF (a temporary
worktree, removed afterwards), so the table shows before and after side by side. The two
checkouts alternate job by job, and each number is the median over ``--repeats`` runs, so a
change in the machine's load hits both alike; the machine here is small and shared, so wall
times carry its load (printed) and CPU times are the steadier measure.

Run from the repository root::

    .venv/bin/python benchmarks/startup.py --ref HEAD~3
    .venv/bin/python benchmarks/startup.py --methods cmaes --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import Child, load_average, machine_line, run_child

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("random", "cmaes", "xnes", "casbo", "turbo")

# Runs the job in this process and ends it when the optimizer first asks: what came before
# is the job's start-up. Only the base class's public ask is patched, which every version has.
_UNTIL_FIRST_ASK = """
import os, runpy, sys
from casbo_bench.optimizers.base import Optimizer
def first_ask(self):
    os._exit(0)
Optimizer.ask = first_ask
sys.argv = ["casbo_bench", *sys.argv[1:]]
runpy.run_module("casbo_bench", run_name="__main__")
os._exit(3)
"""


def job_arguments(method: str, budget: int, out: Path) -> list[str]:
    """The words after ``python -m casbo_bench`` of the measured job."""
    return [
        "run",
        "--method",
        method,
        "--problem",
        "sphere",
        "--dim",
        "4",
        "--seeds",
        "0",
        "--budget",
        str(budget),
        "--out",
        str(out),
    ]


def measure(method: str, source: Path, budget: int, scratch: Path) -> tuple[Child, Child]:
    """(start-up, end-to-end) of one job of ``method`` with the package at ``source``."""
    out = scratch / f"{method}.parquet"
    startup = run_child(
        [sys.executable, "-c", _UNTIL_FIRST_ASK, *job_arguments(method, budget, out)], source
    )
    job = run_child(
        [sys.executable, "-m", "casbo_bench", *job_arguments(method, budget, out)], source
    )
    return startup, job


def median(children: list[Child]) -> Child:
    """The median of each field over ``children``."""
    return Child(
        statistics.median(child.wall for child in children),
        statistics.median(child.cpu for child in children),
        statistics.median(child.peak_mb for child in children),
    )


def git(*arguments: str) -> str:
    """The output of ``git arguments`` in the repository root."""
    return subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def table(results: dict[str, dict[str, tuple[Child, Child]]], labels: list[str]) -> str:
    """A Markdown table: per method, each checkout's start-up, end-to-end and peak memory."""
    columns = ["method"]
    for kind in ("start-up wall s", "start-up CPU s", "wall s", "CPU s", "peak MB"):
        columns += [f"{kind} {label}" for label in labels]
    lines = ["| " + " | ".join(columns) + " |", "|---" + "|---:" * (len(columns) - 1) + "|"]
    for method, by_label in results.items():
        cells = [method]
        cells += [f"{by_label[label][0].wall:.2f}" for label in labels]
        cells += [f"{by_label[label][0].cpu:.2f}" for label in labels]
        cells += [f"{by_label[label][1].wall:.2f}" for label in labels]
        cells += [f"{by_label[label][1].cpu:.2f}" for label in labels]
        cells += [f"{by_label[label][1].peak_mb:.0f}" for label in labels]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, make the 'before' worktree if asked, run :func:`report`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--budget", type=int, default=300, help="evaluations (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per number (median)")
    parser.add_argument("--ref", help="git ref of the 'before' checkout (default: none)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="casbo-startup-") as folder:
        scratch = Path(folder)
        sources = {"after": ROOT}
        if args.ref:
            before = scratch / "before"
            git("worktree", "add", "--detach", "--quiet", str(before), args.ref)
            sources = {"before": before, "after": ROOT}
        try:
            report(args, sources, scratch)
        finally:
            if args.ref:
                git("worktree", "remove", "--force", str(scratch / "before"))


def report(args: argparse.Namespace, sources: dict[str, Path], scratch: Path) -> None:
    """Measure every method at every checkout of ``sources``; print the machine and table."""
    described = {
        label: git("-C", str(source), "rev-parse", "--short", "HEAD")
        + (" (+ working tree)" if source == ROOT and git("status", "--porcelain") else "")
        for label, source in sources.items()
    }
    print(machine_line(f"python {platform.python_version()}"))
    print("checkouts: " + "; ".join(f"{label} {ref}" for label, ref in described.items()))
    print(
        f"job: sphere d=4, 1 seed, {args.budget} evaluations, one thread; median of "
        f"{args.repeats}; load average (1, 5, 15 min) at start {load_average()}",
        flush=True,
    )
    results: dict[str, dict[str, tuple[Child, Child]]] = {}
    for method in args.methods:
        runs: dict[str, list[tuple[Child, Child]]] = {label: [] for label in sources}
        for repeat in range(args.repeats):
            order = list(sources) if repeat % 2 == 0 else list(reversed(sources))
            for label in order:
                runs[label].append(measure(method, sources[label], args.budget, scratch))
        results[method] = {
            label: (median([s for s, _ in pairs]), median([j for _, j in pairs]))
            for label, pairs in runs.items()
        }
        print(f"  {method} done; load average {load_average()}", flush=True)
    print(table(results, list(sources)))


if __name__ == "__main__":
    main()
