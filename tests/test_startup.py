"""A job that runs no torch code imports no torch, and imports pandas and pandera only once
it writes its trace (start-up time: benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

HEAVY = ("torch", "botorch", "gpytorch", "pandas", "pandera", "scipy", "matplotlib", "rdkit")

_PROBE = """
import json, sys
import numpy as np
from casbo_bench import cli, provenance, runner
from casbo_bench.optimizers import make_optimizer
from casbo_bench.problems import make_problem

heavy = {heavy!r}
loaded = lambda: sorted(name for name in heavy if name in sys.modules)
problem = make_problem("sphere", dim=4, seed=0)
optimizer = make_optimizer("cmaes", runner.PerStepScope(1, 4).space, seed=0)
candidates = optimizer.ask()
optimizer.tell(candidates, problem.rollout(candidates))
built = loaded()
status = cli.main(["run", "--method", "cmaes", "--problem", "sphere", "--dim", "4",
                   "--seeds", "0", "--budget", "300", "--out", sys.argv[1]])
ran = loaded()
import scipy.stats, matplotlib  # pycma's import hid them only while it ran
print(json.dumps({{"status": status, "built": built, "ran": ran}}))
"""


def test_a_cmaes_job_on_the_sphere_imports_no_torch(tmp_path: Path) -> None:
    out = tmp_path / "sphere.parquet"
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(SRC), "PATH": "", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["status"] == 0 and out.is_file()
    # Building the problem and the optimizer and running a batch: none of the heavy ones.
    assert report["built"] == []
    # The whole job, trace written: only what writing a validated Parquet trace needs.
    assert report["ran"] == ["pandas", "pandera"]
