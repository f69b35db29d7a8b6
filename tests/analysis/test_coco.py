"""COCO's post-processing of bbob observer folders: staging by algorithm, refusals, and a
real cocopp run with the network disabled."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from casbo_bench.analysis.coco import (
    CocoDataError,
    closed_network,
    folder_algorithm,
    run_cocopp,
    stage,
)
from casbo_bench.cli import main
from casbo_bench.problems import make_problem

SRC = Path(__file__).resolve().parents[2] / "src"

NO_NETWORK = """
import socket, sys


def _refuse(*args, **kwargs):
    raise OSError("network disabled by the test")


class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        _refuse()


socket.socket = _NoSocket
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
print("test sitecustomize: network disabled", file=sys.stderr)
"""
"""A sitecustomize that takes the network away from the whole subprocess, before any import."""


def observed_runs(folder: Path, algorithm: str, seeds: tuple[int, ...], scale: float) -> Path:
    """COCO data of a shrinking random walk on bbob f1 in 2-D, one run per seed."""
    for seed in seeds:
        problem = make_problem(
            "bbob-f01", 2, seed=seed, coco_folder=str(folder), coco_algorithm=algorithm
        )
        rng = np.random.default_rng(seed)
        best = np.zeros(2)
        for step in range(60):
            candidate = best + scale * 0.93**step * rng.standard_normal(2)
            if (
                problem.rollout(candidate[None, None, :])[0, 0]
                < problem.rollout(best[None, None, :])[0, 0]
            ):
                best = candidate
        problem.end_search()
    return folder


@pytest.fixture(scope="module")
def coco_folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("coco")
    return [
        observed_runs(root / "coco" / "walk-wide" / "bbob-f01_d2_s0", "walk-wide", (0, 1), 2.0),
        observed_runs(root / "coco" / "walk-narrow" / "bbob-f01_d2_s0", "walk-narrow", (0,), 0.3),
        observed_runs(root / "coco" / "walk-narrow" / "bbob-f01_d2_s1", "walk-narrow", (1,), 0.3),
    ]


def test_folders_are_staged_by_their_algorithm(coco_folders: list[Path], tmp_path: Path) -> None:
    assert folder_algorithm(coco_folders[0]) == "walk-wide"
    algorithms = stage(coco_folders, tmp_path / "data")
    assert [folder.name for folder in algorithms] == ["walk-narrow", "walk-wide"]
    assert (tmp_path / "data" / "walk-narrow" / "bbob-f01_d2_s0" / "bbobexp_f1.info").is_file()
    assert (tmp_path / "data" / "walk-narrow" / "bbob-f01_d2_s1" / "bbobexp_f1.info").is_file()
    assert (tmp_path / "data" / "walk-wide" / "bbob-f01_d2_s0" / "bbobexp_f1.info").is_file()


def test_a_folder_without_coco_data_or_given_twice_is_refused(
    coco_folders: list[Path], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CocoDataError, match="no COCO data"):
        stage([coco_folders[0], empty], tmp_path / "data")
    with pytest.raises(CocoDataError, match="twice"):
        stage([coco_folders[0], coco_folders[0]], tmp_path / "data")
    assert not (tmp_path / "data").exists()  # refused before anything is copied
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for folder in coco_folders[:2]:
        (mixed / f"{folder.parent.name}.info").write_text((folder / "bbobexp_f1.info").read_text())
    with pytest.raises(CocoDataError, match="several algorithms"):
        folder_algorithm(mixed)


def test_an_output_folder_that_holds_files_is_refused(
    coco_folders: list[Path], tmp_path: Path
) -> None:
    (tmp_path / "old.html").write_text("a previous run")
    with pytest.raises(CocoDataError, match="already holds files"):
        run_cocopp(coco_folders, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["old.html"]


def test_the_network_is_closed_inside_the_block_only() -> None:
    with closed_network(), pytest.raises(OSError, match="offline"):
        socket.create_connection(("127.0.0.1", 9))
    with closed_network(), pytest.raises(OSError, match="offline"):
        socket.socket()
    probe = socket.socket()
    probe.close()


def test_the_command_refuses_a_folder_without_data_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nothing").mkdir()
    arguments = ["cocopp", "--out-dir", str(tmp_path / "out"), str(tmp_path / "nothing")]
    assert main(arguments) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("casbo-bench cocopp: error: ")
    assert "no COCO data" in lines[0]
    assert not (tmp_path / "out").exists()


def test_cocopp_writes_its_html_offline(coco_folders: list[Path], tmp_path: Path) -> None:
    """cocopp in a subprocess whose sockets all fail: its index.html, ECDFs and tables, and
    no archive warning in the output."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    out = tmp_path / "cocopp"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(SRC)]),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MPLBACKEND": "Agg",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "casbo_bench", "cocopp", "--out-dir", str(out)]
        + [str(folder) for folder in coco_folders],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "network disabled" in output  # the sitecustomize ran
    assert "failed to connect" not in output  # cocopp's archive warnings are replaced
    assert (out / "index.html").is_file()
    (comparison,) = [path for path in out.iterdir() if path.is_dir() and path.name != "data"]
    assert f'href="{comparison.name}/index.html"' in (out / "index.html").read_text("latin-1")
    pages = {path.name for path in comparison.iterdir()}
    assert {"index.html", "pprldmany.html", "pptables.html"} <= pages  # ECDFs, aRT tables
    ecdf = (comparison / "pprldmany_02D_noiselessall.svg").read_text(encoding="utf-8")
    assert "walk-narrow" in ecdf and "walk-wide" in ecdf  # the legend names both
    assert not (tmp_path / "exdata").exists() and not (tmp_path / "ppdata").exists()
