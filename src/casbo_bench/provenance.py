"""Provenance: what produced a result file, recorded next to the result itself.

:func:`collect` returns a JSON-ready dict (package version, git commit, config hash,
library versions, device, host, operating system, Python, UTC time and the job's
arguments) that the runner stores in every trace's Parquet metadata. Nothing here may fail
a job: facts that cannot be found are recorded as ``"unknown"`` (the git commit outside a
checkout) or left out (a library that is not installed).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import casbo_bench

LIBRARIES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "torch",
    "cma",
    "botorch",
    "gpytorch",
    "pandera",
    "rdkit",
    "tblite",
    "qm9pack",
    "snakemake",
)
"""Distributions whose versions are recorded (those installed)."""

UNKNOWN = "unknown"
_GIT_TIMEOUT_S = 10.0


def _git(*arguments: str, cwd: Path) -> str | None:
    """Output of ``git arguments`` run in ``cwd``, or None when git cannot answer."""
    try:
        completed = subprocess.run(
            ["git", *arguments],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def git_state(package_dir: Path | None = None) -> dict[str, Any]:
    """The commit of the checkout this package runs from, and whether its tree is dirty.

    The package's own ``__init__.py`` must be tracked by the repository git finds, so an
    installed copy that merely sits inside some other repository (a virtual environment in
    a checkout) is reported as ``"unknown"`` rather than as that repository's commit.

    Returns:
        ``{"commit": str, "dirty": bool | None}``; ``{"commit": "unknown", "dirty": None}``
        outside a git checkout or when git is missing.
    """
    package_dir = Path(casbo_bench.__file__).parent if package_dir is None else package_dir
    tracked = _git("ls-files", "--error-unmatch", "__init__.py", cwd=package_dir)
    commit = _git("rev-parse", "HEAD", cwd=package_dir) if tracked is not None else None
    if not commit:
        return {"commit": UNKNOWN, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=package_dir)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the distributions ``names``; missing ones are left out."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def hardware_description(requested: str = "cpu") -> dict[str, Any]:
    """The machine a job or a training run ran on: the package's one hardware record.

    Args:
        requested: the device asked for (``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device's
            text such as ``"cuda:0"``); the CUDA device is described when it is not ``"cpu"``
            and CUDA is available.

    Returns:
        ``cpu`` (model name), ``logical_cores``, ``load_average`` (1, 5, 15 minutes, where the
        OS has one), and where this process has imported torch (it ran torch code)
        ``torch_threads`` and, on CUDA, ``cuda_device`` and ``cuda_version``.
    """
    description: dict[str, Any] = {"cpu": _cpu_model(), "logical_cores": os.cpu_count()}
    if hasattr(os, "getloadavg"):
        description["load_average"] = [round(load, 2) for load in os.getloadavg()]
    # Importing torch only to describe it would cost a job that ran no torch code seconds.
    torch = sys.modules.get("torch")
    if torch is None:
        return description
    description["torch_threads"] = torch.get_num_threads()
    if requested != "cpu" and torch.cuda.is_available():
        description["cuda_device"] = torch.cuda.get_device_name(0)
        description["cuda_version"] = torch.version.cuda
    return description


def _plain(value: Any) -> Any:
    """A NumPy scalar as its Python number; anything else JSON cannot hold (a path, a torch
    dtype or device) as its text."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _json_ready(value: Any) -> Any:
    """``value`` as plain JSON (:func:`_plain` for what JSON cannot hold)."""
    return json.loads(json.dumps(value, default=_plain))


def collect(
    config_hash: str | None,
    arguments: Mapping[str, Any],
    *,
    claims_rule_hash: str | None = None,
    repetitions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record of one job.

    Args:
        config_hash: hash of the workflow config that asked for the job (None when run by
            hand).
        arguments: the job's arguments (method, options, problem, d, K, seeds, budget, ...);
            a ``"device"`` entry decides whether a CUDA device is described.
        claims_rule_hash: hash of the claims ledger's decision rule the job was run under
            (None when run by hand).
        repetitions: per repetition seed (as text), its derived seeds, the optimizer's
            resolved settings, J* and the frozen-law floor
            (:func:`casbo_bench.runner.run_repetition`).

    Returns:
        A JSON-ready dict with keys ``casbo_bench_version``, ``git_commit``, ``git_dirty``,
        ``config_hash``, ``claims_rule_hash``, ``libraries``, ``device``, ``host``, ``os``,
        ``python``, ``time_utc``, ``arguments`` and ``repetitions``.
    """
    git = git_state()
    return {
        "casbo_bench_version": casbo_bench.__version__,
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "config_hash": config_hash,
        "claims_rule_hash": claims_rule_hash,
        "libraries": library_versions(),
        "device": hardware_description(str(arguments.get("device", "cpu"))),
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": _json_ready(dict(arguments)),
        "repetitions": _json_ready(dict(repetitions or {})),
    }
