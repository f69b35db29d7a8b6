"""A job that runs no torch code imports no torch, and imports pandas and pandera only once
it writes its trace (start-up time: benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

HEAVY = ("torch", "botorch", "gpytorch", "pandas", "pandera", "scipy", "matplotlib", "rdkit")

# The job as `python -m casbo_bench run` runs it, with the modules loaded when its optimizer
# first asks (start-up done) and when it has written its trace.
_PROBE = """
import json, runpy, sys
from casbo_bench.optimizers.base import Optimizer

heavy = {heavy!r}
loaded = lambda: sorted(name for name in heavy if name in sys.modules)
at_first_ask = []
ask = Optimizer.ask
def recording_ask(self):
    if not at_first_ask:
        at_first_ask.append(loaded())
    return ask(self)
Optimizer.ask = recording_ask
sys.argv = ["casbo_bench", "run", "--method", "cmaes", "--problem", "sphere", "--dim", "4",
            "--seeds", "0", "--budget", "300", "--out", sys.argv[1]]
try:
    runpy.run_module("casbo_bench", run_name="__main__")
except SystemExit as exit:
    status = exit.code
ran = loaded()
import scipy.stats, matplotlib  # pycma's import hid them only while it ran
print(json.dumps({{"status": status, "built": at_first_ask[0], "ran": ran}}))
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
    # Start-up (command line, problem, optimizer) up to the first ask: none of the heavy ones.
    assert report["built"] == []
    # The whole job, trace written: only what writing a validated Parquet trace needs.
    assert report["ran"] == ["pandas", "pandera"]
