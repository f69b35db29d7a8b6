"""How the workflow tests run Snakemake: the repository's Snakefile in a scratch directory.

Rules call `python -m casbo_bench`: the test interpreter's environment must come first on
PATH, as `make reproduce` arranges for the virtual environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPOSITORY / "tests" / "workflow" / "tiny.yaml"
"""The smallest config that runs every rule of `all` (not a benchmark)."""

ENVIRONMENT = {
    **os.environ,
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
}


def run_snakemake(
    workdir: Path,
    *arguments: str,
    timeout: float | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``snakemake --cores 2 ARGUMENTS`` on the repository's Snakefile, run in ``workdir``,
    with ``environment`` added to the test's."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPOSITORY / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**ENVIRONMENT, **(environment or {})},
        timeout=timeout,
    )
