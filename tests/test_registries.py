"""The registries and the molecule task table answer without importing torch: listing plugins,
reading what they declare, sizing a molecule task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

_PROBE = """
import json, sys
from casbo_bench import optimizers, problems
from casbo_bench.molecules import tasks
report = {
    "task_size": tasks.task_size(),
    "optimizers": optimizers.available_optimizers(),
    "torch_optimizers": optimizers.torch_optimizers(),
    "summaries": optimizers.describe_optimizers(),
    "problems": problems.describe_problems(),
    "heavy": sorted(
        name
        for name in ("torch", "rdkit", "tblite", "botorch", "cma", "cocoex", "cocopp")
        if name in sys.modules
    ),
}
print(json.dumps(report))
"""


def test_importing_the_registries_leaves_torch_out() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
        timeout=120,
    )
    report = json.loads(completed.stdout)
    assert report["heavy"] == []
    assert report["task_size"] == [63, 22]
    assert {"casbo", "turbo"} <= set(report["torch_optimizers"]) < set(report["optimizers"])
    assert all(report["summaries"][name] for name in report["optimizers"])
    assert {"sphere", "mol-qed"} <= set(report["problems"])
    assert all(report["problems"].values())
