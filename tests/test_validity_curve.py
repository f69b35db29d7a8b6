"""scripts/validity_curve.py: the checkpoint's validity curve and the projection to a target."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "validity_curve.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("validity_curve", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(path: Path, molecules: int, n_valid: int, steps: int = 1000) -> Path:
    path.write_text(
        json.dumps(
            {
                "checkpoint": {"step": molecules // 64, "molecules_seen": molecules},
                "sampler": {"steps": steps, "timesteps": 1000, "n_samples": 1000, "seed": 0},
                "samples": {"n_molecules": 1000, "n_valid_table": n_valid, "validity": 0.99},
            }
        )
    )
    return path


def _manifest(folder: Path) -> Path:
    """A training manifest of one slice: 1,000 steps of 64 molecules in an hour, 1 thread."""
    slice_ = {"started": "t", "start_step": 0, "end_step": 1000, "seconds": 3600.0}
    slice_["hardware"] = {"torch_threads": 1}
    path = folder / "manifest.json"
    path.write_text(json.dumps({"config": {"batch_size": 64}, "training": {"slices": [slice_]}}))
    return path


def test_the_power_law_is_recovered_from_points_on_it(script: ModuleType) -> None:
    a, b = 50.0, 0.7
    points = [(m, 1.0 - a * m**-b) for m in (1e6, 2e6, 4e6)]
    fitted_a, fitted_b = script.power_law(points)
    assert fitted_a == pytest.approx(a) and fitted_b == pytest.approx(b)


def test_the_report_projects_the_target_from_the_fit(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    # 1 - v = 0.2 (m / 1e6)^-1: 80% at 1M, 90% at 2M; 95% at 4M, 2M after the last.
    files = [
        _result(tmp_path / "a.json", 1_000_000, 800),
        _result(tmp_path / "b.json", 2_000_000, 900),
    ]
    assert script.main([*map(str, files), "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "| 31,250 | 2,000,000 | 0.900 |" in out
    assert "at m* = 4,000,000 molecules seen, 2,000,000 after the last checkpoint" in out
    assert f"{2_000_000 / 64_000:.1f} hours at the median slice rate (64,000" in out
    # Results of different samplers are not one curve.
    other = _result(tmp_path / "c.json", 3_000_000, 950, steps=20)
    assert script.main([*map(str, files), str(other), "--manifest", str(manifest)]) == 2
    # A file that is not a result, or no manifest: one line, status 2.
    assert script.main([str(manifest), "--manifest", str(manifest)]) == 2
    assert script.main([*map(str, files), "--manifest", str(files[0])]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert "not an evaluate-edm result" in errors[-2] and "not a training manifest" in errors[-1]


def test_a_target_reached_at_the_last_checkpoint_is_not_projected(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    files = [
        _result(tmp_path / "a.json", 1_000_000, 900),
        _result(tmp_path / "b.json", 2_000_000, 953),
    ]
    assert script.main([*map(str, files), "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "reached at the last checkpoint (0.953 after 2,000,000 molecules seen; the " in out
    assert "its 95% interval, 0.938, is below it): no projection" in out
    assert "Power law" not in out
