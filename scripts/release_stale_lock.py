"""Release the Snakemake lock of this folder when a killed run left it behind.

Snakemake locks the working folder while it runs and refuses a second run until the lock is
gone; a run killed with SIGKILL (or a lost node) never removes it, and every later run fails
until ``snakemake --unlock``. Run by ``make reproduce`` before Snakemake:

- no lock: nothing to do;
- a lock, and a live Snakemake process working in this folder: say so and exit 1 (that run
  owns the lock; wait for it or stop it);
- a lock and no such process: run ``snakemake --unlock`` and say so.

Live processes are read from /proc (Linux); elsewhere the script says what to run instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOCKS = Path(".snakemake/locks")


def snakemake_processes_here() -> list[int]:
    """PIDs of other processes running Snakemake with this folder as working folder."""
    here = Path.cwd().resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = (entry / "cwd").resolve()
        except OSError:
            continue
        # `snakemake ...`, `python .../snakemake ...` or `python -m snakemake ...`
        names = [Path(word.decode(errors="replace")).name for word in words[:3]]
        if cwd == here and "snakemake" in names:
            found.append(int(entry.name))
    return found


def main() -> int:
    if not LOCKS.is_dir() or not any(LOCKS.iterdir()):
        return 0
    if not Path("/proc").is_dir():
        print(
            "make reproduce: this folder holds a Snakemake lock; if no other run is active here, "
            "release it with `snakemake --unlock` and run again",
            file=sys.stderr,
        )
        return 1
    live = snakemake_processes_here()
    if live:
        print(
            f"make reproduce: another Snakemake run (pid {', '.join(map(str, live))}) is working "
            f"in this folder; wait for it to finish or stop it",
            file=sys.stderr,
        )
        return 1
    snakemake = Path(sys.executable).with_name("snakemake")
    unlocked = subprocess.run(
        [str(snakemake), "--unlock", *sys.argv[1:]], capture_output=True, text=True
    )
    if unlocked.returncode != 0:
        lines = unlocked.stderr.strip().splitlines() or ["snakemake --unlock failed"]
        print(lines[-1], file=sys.stderr)
        return 1
    print(
        "make reproduce: released the lock a stopped run left behind (snakemake --unlock); "
        "its finished jobs are kept",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
