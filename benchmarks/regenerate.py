"""Wall time, CPU time and peak memory of rebuilding a published archive (``make figures``).

Each row is one ``python -m casbo_bench regenerate --archive A`` in its own child process,
with the package at a checkout and a number of worker processes (``--processes``; the
"before" checkout predates the option and always runs in one process). CPU seconds are the
child's and its workers' (user + system, from the child's rusage once it has reaped them);
peak MB is the largest single process. Every row's rebuilt tables, rate-check files and
ledger are compared byte for byte with the first row's, and its files counted.

``--ref REF`` adds the package at git ref REF (a temporary worktree, removed afterwards) as
the first row, so before and after stand side by side in one run of this script.

Run from the repository root::

    .venv/bin/python benchmarks/regenerate.py --archive published/claims --ref HEAD~1
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from benchkit import ROOT, Child, machine_line, run_child

COMPARED = ("tables/**/*.csv", "rate_checks/*.csv", "claims.csv", "claims.md")


def rebuild(source: Path, archive: Path, out: Path, processes: int | None) -> Child:
    """One rebuild of ``archive`` into ``out`` with the package at ``source``."""
    command = [sys.executable, "-m", "casbo_bench", "regenerate", "--archive", str(archive)]
    command += ["--results-out", str(out / "results"), "--figures-out", str(out / "figures")]
    if processes is not None:
        command += ["--processes", str(processes)]
    return run_child(command, source)


def compared_files(out: Path) -> dict[str, bytes]:
    """The rebuilt tables, rate-check files and ledger of one row, by relative path."""
    results = out / "results"
    return {
        str(path.relative_to(results)): path.read_bytes()
        for pattern in COMPARED
        for path in sorted(results.glob(pattern))
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=Path("published/claims"))
    parser.add_argument("--ref", help="git ref of the 'before' checkout (default: none)")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="worker counts of 'after'"
    )
    args = parser.parse_args(argv)
    archive = args.archive.resolve()
    with tempfile.TemporaryDirectory(prefix="casbo-regenerate-") as folder:
        scratch = Path(folder)
        rows: list[tuple[str, Path, int | None]] = []
        if args.ref:
            before = scratch / "before"
            subprocess.run(
                ["git", "worktree", "add", "--detach", "--quiet", str(before), args.ref],
                cwd=ROOT,
                check=True,
            )
            rows.append((f"before ({args.ref})", before, None))
        rows += [(f"after, {n} process(es)", ROOT, n) for n in args.processes]
        try:
            print(machine_line(f"python {platform.python_version()}"))
            print(f"archive: {args.archive}\n")
            print("| checkout | wall s | CPU s | peak MB | files | tables equal the first row |")
            print("|---|---:|---:|---:|---:|---|")
            first: dict[str, bytes] | None = None
            for i, (label, source, processes) in enumerate(rows):
                out = scratch / f"row{i}"
                cost = rebuild(source, archive, out, processes)
                files = sum(1 for path in out.rglob("*") if path.is_file())
                compared = compared_files(out)
                first = compared if first is None else first
                equal = "yes" if compared == first else "NO"
                print(
                    f"| {label} | {cost.wall:.1f} | {cost.cpu:.1f} | {cost.peak_mb:.0f} | "
                    f"{files} | {equal} |",
                    flush=True,
                )
        finally:
            if args.ref:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(scratch / "before")],
                    cwd=ROOT,
                    check=True,
                )


if __name__ == "__main__":
    main()
