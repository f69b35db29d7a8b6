"""Bad configs: each file under configs/ breaks one field of a valid config.

Every case must be refused before any job starts, with one line naming the field (the
``# expect:`` header of the file) and a fix. Cases with ``# via: snakemake`` run through
``snakemake -n --configfile`` (the claims ledger is checked by the workflow; the others show
the whole path); the rest through the same check in-process
(:func:`casbo_bench.config_checks.check_config`, which the Snakefile calls).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casbo_bench.config_checks import ConfigError, check_config, read_config, resolve_config

pytestmark = pytest.mark.fault("bad config")

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).parent / "configs"
CASES = sorted(path for path in CONFIGS.glob("*.yaml") if not path.name.startswith("base"))
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _header(path: Path, key: str) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"# {key}: "):
            return line.split(": ", 1)[1]
    return None


def _checked(path: Path) -> dict:
    config = resolve_config(read_config(path), None, read_config)
    check_config(config, read_config(SCHEMA))
    return config


def test_there_are_at_least_45_cases() -> None:
    assert len(CASES) >= 45


@pytest.mark.parametrize("name", ["base", "base-rate", "base-claims"])
def test_the_base_configs_pass(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases break a valid config, so each refusal is its own fault's."""
    monkeypatch.chdir(ROOT)
    _checked(CONFIGS / f"{name}.yaml")


@pytest.mark.parametrize(
    "case", [c for c in CASES if _header(c, "via") != "snakemake"], ids=lambda c: c.stem
)
def test_refused_in_process(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError) as refused:
        _checked(case)
    message = str(refused.value)
    assert "\n" not in message
    assert _header(case, "expect") in message
    assert ";" in message  # the fix follows the problem


def _workspace(tmp_path: Path) -> Path:
    """A working folder for Snakemake that sees the repository's configs and tests."""
    for name in ("config", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _refusal(case: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    snakemake = Path(sys.executable).with_name("snakemake")
    relative = case.relative_to(ROOT)
    return subprocess.run(
        [str(snakemake), "-n", "-s", str(ROOT / "Snakefile"), "--configfile", str(relative)],
        cwd=_workspace(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "case", [c for c in CASES if _header(c, "via") == "snakemake"], ids=lambda c: c.stem
)
def test_refused_by_the_dry_run(case: Path, tmp_path: Path) -> None:
    result = _refusal(case, tmp_path)
    # Snakemake's own notice of the profile it read is not an error line.
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("Using workflow specific profile")
    ]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"casbo-bench: config {case.relative_to(ROOT)}: error: ")
    assert _header(case, "expect") in errors[0]
    # Nothing ran: no payload executed, no results folder, no job.
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "results").exists()
