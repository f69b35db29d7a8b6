"""Print the command-line overrides that fit the SLURM profile onto one small test node.

A SLURM job that asks for more CPUs, memory or GPUs than any node has waits in the queue
forever. The CI test of ``profiles/slurm`` runs on a one-node cluster (the CI machine: a few
cores, no GPU), so it keeps every resource request of the profile and caps it to the node:

- ``mem_mb`` and ``mem_mb_per_cpu`` become ``min(<the profile's expression>, cap)``;
- ``cpus_per_task`` becomes ``min(<expression>, cpus)`` (threads are capped by ``--cores``);
- GPU requests (``gpu``, ``gres``, ``gpu_model``) are dropped: ``gpu`` becomes 0;
- ``slurm_partition`` becomes the test cluster's partition, and ``slurm_account`` is
  dropped (the test cluster has no accounting; the run passes ``--slurm-no-account``).

Every other request (runtime, ...) is passed through unchanged. Given on the command line,
``--default-resources`` and ``--set-resources`` replace the profile's entries of the same
name, so the output restates all of them.

Usage::

    python .ci/slurm_caps.py profiles/slurm/config.yaml --partition ci --cpus 2 --mem-mb 8000

prints one argument per line (for bash's ``mapfile -t``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MEMORY_KEYS = ("mem_mb", "mem_mb_per_cpu")
CPU_KEYS = ("cpus_per_task",)
GPU_KEYS = ("gpu", "gres", "gpu_model")


def cap_resources(resources: Mapping[str, Any], *, cpus: int, mem_mb: int) -> dict[str, str]:
    """The resource assignments of one rule (or the defaults), capped to the node.

    Values stay Snakemake resource expressions (text evaluated per job, e.g.
    ``"4000 * attempt"``); a cap wraps the expression in ``min(...)``.
    """
    capped: dict[str, str] = {}
    for key, value in resources.items():
        if key in GPU_KEYS:
            if key == "gpu":
                capped[key] = "0"
        elif key == "slurm_account":
            continue
        elif key in MEMORY_KEYS:
            capped[key] = f"min({value}, {mem_mb})"
        elif key in CPU_KEYS:
            capped[key] = f"min({value}, {cpus})"
        else:
            capped[key] = str(value)
    return capped


def override_arguments(
    profile: Mapping[str, Any], *, partition: str, cpus: int, mem_mb: int
) -> list[str]:
    """``--default-resources`` and ``--set-resources`` arguments that cap ``profile``."""
    defaults = cap_resources(profile.get("default-resources") or {}, cpus=cpus, mem_mb=mem_mb)
    defaults["slurm_partition"] = partition
    arguments = ["--default-resources", *(f"{key}={value}" for key, value in defaults.items())]
    per_rule = profile.get("set-resources") or {}
    if per_rule:
        arguments.append("--set-resources")
        for rule, resources in per_rule.items():
            capped = cap_resources(resources, cpus=cpus, mem_mb=mem_mb)
            arguments += [f"{rule}:{key}={value}" for key, value in capped.items()]
    return arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="the profile's config.yaml")
    parser.add_argument("--partition", required=True, help="the test cluster's partition")
    parser.add_argument("--cpus", type=int, required=True, help="CPUs of the node")
    parser.add_argument("--mem-mb", type=int, required=True, help="memory a job may ask for")
    arguments = parser.parse_args(argv)
    profile = yaml.safe_load(arguments.profile.read_text(encoding="utf-8"))
    if not isinstance(profile, dict) or profile.get("executor") != "slurm":
        parser.error(f"{arguments.profile} is not a SLURM profile (no 'executor: slurm')")
    for line in override_arguments(
        profile, partition=arguments.partition, cpus=arguments.cpus, mem_mb=arguments.mem_mb
    ):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
