"""``casbo-bench store``: carry a run's finished jobs to the next machine through git."""

from __future__ import annotations

import argparse
from pathlib import Path

from casbo_bench.cli.common import UsageError

NAME = "store"
HELP = (
    "Copy a run's finished jobs into a tracked folder (runs/<name>), or back (--restore); "
    "what a store holds and cost (--summary)."
)
DESCRIPTION = (
    "Copy the finished jobs of a run (trace, sha256 sidecar, Snakemake's benchmark record, "
    "log) whose names match --jobs into a store folder laid out like the run's, with an "
    "index of where and how long each ran; commit the folder, and on the next machine "
    "restore it into results/<name> (--restore): Snakemake then runs only what is missing. "
    "A restored trace must match the sha256 the index recorded; a trace already in the "
    "results folder is never replaced. --summary STORE prints, from the index, the stored jobs "
    "per folder: job-hours, size, hosts and dates."
)
EXAMPLES = (
    "casbo-bench store --results results/paper-local --to runs/paper-local "
    "--jobs 'raw/*/turbo/*' 'molecules/raw/*'",
    "casbo-bench store --restore runs/paper-local --results results/paper-local",
    "casbo-bench store --summary runs/paper-local",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, help="the run's results/<name>")
    parser.add_argument("--to", type=Path, metavar="STORE", help="the store folder, runs/<name>")
    parser.add_argument(
        "--jobs",
        nargs="+",
        metavar="PATTERN",
        help="store only jobs whose names (e.g. raw/plain/turbo/sphere_d10_K1_final_s0) match "
        "one of these shell patterns ('*' crosses '/'; default: every finished job)",
    )
    parser.add_argument(
        "--restore", type=Path, metavar="STORE", help="copy this store's jobs into --results"
    )
    parser.add_argument(
        "--summary",
        type=Path,
        metavar="STORE",
        help="print what this store holds and what it cost (from its index)",
    )


def _listed(jobs: list[str]) -> str:
    return ", ".join(jobs[:3]) + (", ..." if len(jobs) > 3 else "")


def handle(arguments: argparse.Namespace) -> int:
    from casbo_bench import run_store

    actions = [arguments.to, arguments.restore, arguments.summary]
    if sum(action is not None for action in actions) != 1:
        raise UsageError(
            "give one of --to STORE (store jobs), --restore STORE (copy back) or --summary STORE"
        )
    if arguments.summary is not None:
        if arguments.jobs is not None or arguments.results is not None:
            raise UsageError("--summary STORE reads the store alone; leave out --results, --jobs")
        import pandas as pd

        from casbo_bench.documents import markdown_table

        rows = run_store.summary(arguments.summary)
        print("\n".join(markdown_table(pd.DataFrame(rows), missing="")))
        return 0
    if arguments.results is None:
        raise UsageError("give --results results/<name>, the run's folder")
    if arguments.restore is not None:
        if arguments.jobs is not None:
            raise UsageError("--jobs chooses what to store; --restore copies every stored job")
        outcome = run_store.restore(arguments.restore, arguments.results)
        hashes = sorted({row["config_hash"] for row in run_store.stored_jobs(arguments.restore)})
        print(
            f"restored {len(outcome.copied)} jobs into {arguments.results} (config hash "
            f"{', '.join(hashes)}); {len(outcome.unchanged)} already there"
        )
        if outcome.kept:
            print(
                f"kept the results folder's own trace of {len(outcome.kept)} jobs "
                f"({_listed(outcome.kept)}): a run there wrote them again"
            )
        return 0
    outcome = run_store.store(arguments.results, arguments.to, arguments.jobs or ["*"])
    print(
        f"stored {len(outcome.copied)} jobs into {arguments.to}; {len(outcome.unchanged)} "
        f"already there"
    )
    if outcome.refused:
        print(
            f"refused {len(outcome.refused)} unsound traces ({_listed(outcome.refused)}): "
            f"the log says why; run their jobs again"
        )
        return 1
    return 0
