"""What the benchmark scripts share: code as it was at an earlier commit, and the machine line.

A benchmark that compares "before" and "after" imports the old module with
:func:`module_at` and times both in one process, side by side (machines here are noisy:
ratios from one run, never from two).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def module_at(ref: str, path: str, name: str, renames: dict[str, str] | None = None) -> ModuleType:
    """The module in file ``path`` (relative to the repository) as it is at git ref ``ref``,
    loaded under ``name``; ``renames`` rewrites its imports (old name -> new name) so that
    it can import other old modules loaded before it. Everything else it imports is today's.
    """
    source = subprocess.run(
        ["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for old, new in (renames or {}).items():
        source = source.replace(old, new)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    try:
        spec = importlib.util.spec_from_file_location(name, file.name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    finally:
        os.unlink(file.name)
    return module


def load_average() -> str:
    """The load average over 1, 5 and 15 minutes."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line(*extra: str) -> str:
    """CPU model, core count, ``extra`` facts (versions, thread counts) and the load average."""
    from casbo_bench.provenance import hardware_description

    facts = "; ".join((f"{os.cpu_count()} cores", *extra))
    return (
        f"machine: {hardware_description()['cpu']}, {facts}; load average (1, 5, 15 min) "
        f"{load_average()}"
    )


@dataclass(frozen=True)
class Child:
    """What one child process cost: wall seconds, CPU seconds (user + system), peak MB."""

    wall: float
    cpu: float
    peak_mb: float


def run_child(command: list[str], source: Path) -> Child:
    """Run ``command`` with the package at ``source/src``; its cost, from its own rusage."""
    environment = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(source / "src")}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{error}")
    if process.stderr:
        process.stderr.close()
    # ru_maxrss is in KiB on Linux.
    return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
