"""Tests of provenance: every fact recorded, nothing fails outside a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

import casbo_bench
from casbo_bench import provenance

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *arguments: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *arguments]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git repository with a committed package folder; returns the package folder."""
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return package


def test_collect_records_every_fact() -> None:
    record = provenance.collect("abc123", {"method": "casbo", "out": Path("x.parquet")})
    assert set(record) == {
        "casbo_bench_version",
        "git_commit",
        "git_dirty",
        "config_hash",
        "claims_rule_hash",
        "libraries",
        "device",
        "host",
        "os",
        "python",
        "time_utc",
        "arguments",
        "repetitions",
    }
    assert record["casbo_bench_version"] == casbo_bench.__version__
    assert record["config_hash"] == "abc123"
    assert record["claims_rule_hash"] is None and record["repetitions"] == {}
    assert record["arguments"] == {"method": "casbo", "out": "x.parquet"}
    assert record["libraries"]["numpy"] == metadata.version("numpy")
    assert record["libraries"]["torch"] == metadata.version("torch")
    assert record["device"]["logical_cores"] == os.cpu_count()
    assert record["device"]["cpu"]
    assert "cuda_device" not in record["device"]
    when = datetime.fromisoformat(record["time_utc"])
    assert when.tzinfo is not None
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)
    assert json.loads(json.dumps(record)) == record


def test_collect_records_the_rule_hash_and_each_repetition_as_json() -> None:
    repetitions = {"0": {"settings": {"dtype": torch.float64, "popsize": np.int64(8)}}}
    record = provenance.collect(None, {}, claims_rule_hash="0123", repetitions=repetitions)
    assert record["claims_rule_hash"] == "0123"
    assert record["repetitions"]["0"]["settings"] == {"dtype": "torch.float64", "popsize": 8}


def test_missing_library_is_left_out() -> None:
    versions = provenance.library_versions(("numpy", "no-such-distribution-casbo"))
    assert versions == {"numpy": metadata.version("numpy")}


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    assert provenance.git_state(tmp_path) == {"commit": "unknown", "dirty": None}


def test_without_git_the_commit_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert provenance.git_state() == {"commit": "unknown", "dirty": None}
    assert provenance.collect(None, {})["git_commit"] == "unknown"


@needs_git
def test_commit_and_dirty_flag_of_a_checkout(checkout: Path) -> None:
    head = _git(checkout, "rev-parse", "HEAD").strip()
    assert provenance.git_state(checkout) == {"commit": head, "dirty": False}
    (checkout / "__init__.py").write_text("x = 2\n")
    assert provenance.git_state(checkout) == {"commit": head, "dirty": True}


@needs_git
def test_untracked_copy_inside_another_repository_is_unknown(checkout: Path) -> None:
    """An installed copy in a virtual environment inside a checkout is not that commit."""
    copy = checkout.parent.parent / ".venv" / "site-packages" / "pkg"
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("x = 1\n")
    assert provenance.git_state(copy)["commit"] == "unknown"
