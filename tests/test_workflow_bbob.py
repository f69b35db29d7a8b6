"""The workflow on a tiny bbob config, end to end: runs that write COCO data, one observer
folder per job under coco/<method>/, the group's tables and figures, and cocopp's HTML."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from casbo_bench.schemas.tables import validate_table
from casbo_bench.traces import load_traces
from tests.snakemake_runs import REPOSITORY, run_snakemake

pytestmark = pytest.mark.slow

TINY_BBOB = REPOSITORY / "tests" / "workflow" / "tiny-bbob.yaml"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow-bbob")
    (workdir / "config").mkdir()
    shutil.copy(TINY_BBOB, workdir / "config" / "config.yaml")  # the default config there
    result = run_snakemake(workdir, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_cocopp_html_covers_every_method(finished_run: Path) -> None:
    config = yaml.safe_load(TINY_BBOB.read_text())
    cocopp = finished_run / "results" / config["name"] / "cocopp"
    index = (cocopp / "index.html").read_text(encoding="latin-1")
    labels = sorted(method["label"] for method in config["methods"])
    assert sorted(path.name for path in (cocopp / "data").iterdir()) == labels
    (comparison,) = [path for path in cocopp.iterdir() if path.is_dir() and path.name != "data"]
    assert f'href="{comparison.name}/index.html"' in index
    ecdf = (comparison / "pprldmany_02D_noiselessall.svg").read_text(encoding="utf-8")
    assert all(label in ecdf for label in labels)  # the ECDF's legend names every method


def test_each_job_writes_its_own_coco_folder_with_every_instance(finished_run: Path) -> None:
    config = yaml.safe_load(TINY_BBOB.read_text())
    results = finished_run / "results" / config["name"]
    for method in config["methods"]:
        folder = results / "coco" / method["label"] / "bbob-d2" / "bbob-f01_d2_s0"
        info = (folder / "bbobexp_f1.info").read_text()
        assert f"algId = '{method['label']}'" in info
        runs = dict(re.findall(r"(\d+):(\d+)\|", info))
        assert runs == {"1": "60", "2": "60"}  # seeds 0, 1: COCO instances 1, 2; the budget
    assert not (finished_run / "exdata").exists()


def test_traces_and_tables_of_the_group(finished_run: Path) -> None:
    results = finished_run / "results" / "tiny-bbob"
    traces = load_traces(sorted((results / "raw" / "bbob-d2").glob("*/*.parquet")))
    assert set(traces["method"]) == {"cmaes", "random"}
    assert set(traces["problem"]) == {"bbob-f01"} and (traces["loss"] >= 0).all()
    for name in ("final_loss", "ert"):
        validate_table(name, pd.read_csv(results / "tables" / "bbob-d2" / f"{name}.csv"))
    assert any((finished_run / "paper_figures" / "tiny-bbob" / "bbob-d2").glob("*.png"))


def test_the_report_holds_cocopps_pages(finished_run: Path) -> None:
    """cocopp's folder is in the Snakemake report whole, opening at its index.html."""
    result = run_snakemake(finished_run, "--report", "report.zip")
    assert result.returncode == 0, result.stderr[-2000:]
    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        members = archive.namelist()
    # Snakemake stores the folder under a hashed name; cocopp's own files mark it.
    folders = {Path(name).parent for name in members if Path(name).name == "cocopp_commands.tex"}
    assert len(folders) == 1, members
    (folder,) = folders
    assert (folder / "index.html").as_posix() in members


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    result = run_snakemake(finished_run, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr
