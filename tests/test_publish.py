"""Publishing a finished run and rebuilding it from the archive alone (casbo_bench.publish).

One tiny workflow run (tests/workflow/tiny.yaml) is published; the tables, rate-check outputs
and ledger rebuilt from the archive must equal the run's byte for byte, every figure file of
the run must be rebuilt, and a damaged archive must be refused naming the file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from casbo_bench.analysis.views import best_at
from casbo_bench.files import sha256_file
from casbo_bench.names import MOLECULE_GRID_PREFIX
from casbo_bench.publish import ArchiveError, check_archive, compact_trace, publish, regenerate
from casbo_bench.schemas.archive import (
    BEST_STRUCTURE_COLUMNS,
    COMPACT_COLUMNS,
    ArchiveValidationError,
    validate_best_structures,
    validate_compact_trace,
)
from casbo_bench.traces import load_traces
from tests.snakemake_runs import ENVIRONMENT, REPOSITORY, TINY_CONFIG, run_snakemake


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run in a scratch folder, published to ``published/tiny`` and rebuilt
    into ``results/tiny-archive`` and ``paper_figures/tiny-archive`` by three worker
    processes, and again into ``*/tiny-serial`` by one."""
    workdir = tmp_path_factory.mktemp("publish")
    (workdir / "config").mkdir()
    shutil.copy(TINY_CONFIG, workdir / "config" / "config.yaml")
    result = run_snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    publish = ["publish", "--results", "results/tiny", "--figures", "paper_figures/tiny"]
    rebuild = ["regenerate", "--archive", "published/tiny", "--results-out"]
    pooled = ["results/tiny-archive", "--processes", "3"]
    serial = ["results/tiny-serial", "--processes", "1"]
    for arguments in (
        [*publish, "--out", "published/tiny"],
        [*rebuild, *pooled, "--figures-out", "paper_figures/tiny-archive"],
        [*rebuild, *serial, "--figures-out", "paper_figures/tiny-serial"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "casbo_bench", *arguments],
            cwd=workdir,
            env=ENVIRONMENT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def _rebuilt_files(run: Path) -> list[str]:
    """The run's table, rate-check and ledger files, relative to results/<name>."""
    names = [
        str(path.relative_to(run))
        for pattern in ("tables/**/*.csv", "tables/**/*.md", "rate_checks/*.csv")
        for path in run.glob(pattern)
    ]
    return sorted([*names, "claims.csv", "claims.md"])


@pytest.mark.slow
def test_rebuilt_tables_and_ledger_equal_the_runs(published: Path) -> None:
    run, rebuilt = published / "results" / "tiny", published / "results" / "tiny-archive"
    names = _rebuilt_files(run)
    assert any(name.startswith("tables/plain/") for name in names)
    differ = [name for name in names if (run / name).read_bytes() != (rebuilt / name).read_bytes()]
    assert not differ, differ


@pytest.mark.slow
def test_every_figure_of_the_run_is_rebuilt(published: Path) -> None:
    def figures(folder: Path) -> set[str]:
        return {
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.suffix in (".pdf", ".png", ".svg")
        }

    original = figures(published / "paper_figures" / "tiny")
    assert any(name.startswith("rate_checks/") for name in original)
    assert original <= figures(published / "paper_figures" / "tiny-archive")


@pytest.mark.slow
def test_molecule_figures_are_rebuilt_equal_to_the_runs(published: Path) -> None:
    """The grids of best molecules are drawn again from the best structures, the score
    figures copied: each byte for byte the run's."""
    run = published / "paper_figures" / "tiny" / "molecules"
    names = sorted(path.name for path in run.iterdir() if not path.name.startswith("."))
    assert any(name.startswith(MOLECULE_GRID_PREFIX) for name in names)
    assert any(name.startswith("score_") and name.endswith(".pdf") for name in names)
    rebuilt = published / "paper_figures" / "tiny-archive" / "molecules"
    differ = [name for name in names if (run / name).read_bytes() != (rebuilt / name).read_bytes()]
    assert not differ, differ


@pytest.mark.slow
def test_an_archive_of_format_2_copies_its_kept_molecule_figures(
    published: Path, tmp_path: Path
) -> None:
    """An archive published before the grids were drawn again (published/claims) keeps them
    under kept/figures/ and lacks the best structures: it still checks and rebuilds. From
    format 3 the best structures are required."""
    archive = tmp_path / "tiny"
    shutil.copytree(published / "published" / "tiny", archive)
    manifest = json.loads((archive / "manifest.json").read_text(encoding="utf-8"))
    (archive / "molecules" / "best_structures.parquet").unlink()
    del manifest["files"]["molecules/best_structures.parquet"]
    (archive / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArchiveValidationError, match=r"missing from an archive of format 3"):
        check_archive(archive)
    figures = published / "paper_figures" / "tiny" / "molecules"
    for path in sorted(figures.glob(f"{MOLECULE_GRID_PREFIX}*")):
        name = f"kept/figures/molecules/{path.name}"
        shutil.copyfile(path, archive / name)
        manifest["files"][name] = sha256_file(path)
        manifest["kept_as_written"].append(name)
    manifest["format"] = 2
    (archive / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    regenerate(archive, tmp_path / "results", tmp_path / "figures", processes=1)
    for path in sorted(figures.glob("[!.]*")):
        assert (tmp_path / "figures" / "molecules" / path.name).read_bytes() == path.read_bytes()


@pytest.mark.slow
def test_best_structures_must_name_the_complete_molecule_runs(
    published: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "tiny"
    shutil.copytree(published / "published" / "tiny", archive)
    path = archive / "molecules" / "best_structures.parquet"
    structures = pd.read_parquet(path)
    structures.iloc[1:].to_parquet(path, index=False)
    manifest = json.loads((archive / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["molecules/best_structures.parquet"] = sha256_file(path)
    (archive / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ArchiveValidationError, match=r"holds 0 run\(s\) .* lacks 1 that are"):
        check_archive(archive)


@pytest.mark.slow
def test_rebuilt_files_do_not_depend_on_the_number_of_processes(published: Path) -> None:
    def contents(*folders: Path) -> dict[str, bytes]:
        return {
            f"{folder.name}/{path.relative_to(folder)}": path.read_bytes()
            for folder in folders
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }

    pooled = contents(
        published / "results" / "tiny-archive", published / "paper_figures" / "tiny-archive"
    )
    serial = contents(
        published / "results" / "tiny-serial", published / "paper_figures" / "tiny-serial"
    )
    assert [name.replace("-serial", "-archive", 1) for name in serial] == list(pooled)
    differ = [
        name
        for name, data in serial.items()
        if pooled[name.replace("-serial", "-archive", 1)] != data
    ]
    assert not differ, differ


@pytest.mark.slow
def test_archive_checks_and_refuses_a_damaged_file(published: Path, tmp_path: Path) -> None:
    manifest = check_archive(published / "published" / "tiny")
    assert manifest["config_sha256"] and manifest["runs"] > 0
    assert (published / "published" / "tiny" / "molecules" / "best_structures.parquet").is_file()
    kept = {path.name for path in (published / "published" / "tiny" / "kept").rglob("*.png")}
    assert kept and all(name.startswith("score_") for name in kept)  # grids are drawn again
    assert not list((published / "published" / "tiny").rglob(".*"))  # no .snakemake_timestamp
    # Every job uses one thread: its wall seconds are its job-seconds; cpu_time is sampled.
    walls = [
        float(row)
        for path in (published / "results" / "tiny" / "benchmarks").rglob("*.tsv")
        for row in pd.read_csv(path, sep="\t")["s"]
    ]
    assert manifest["job_hours"] == pytest.approx(sum(walls) / 3600) and manifest["job_hours"] > 0
    assert manifest["cpu_hours"] is not None and "lower bound" in manifest["hours_source"]
    copy = tmp_path / "tiny"
    shutil.copytree(published / "published" / "tiny", copy)
    table = copy / "traces" / "plain.parquet"
    table.write_bytes(table.read_bytes()[:-10])
    with pytest.raises(ArchiveValidationError, match=r"plain\.parquet differs from the sha256"):
        check_archive(copy)
    with pytest.raises(ArchiveError, match=r"nowhere/manifest\.json does not exist; give a"):
        check_archive(tmp_path / "nowhere")
    # Asked for an archive that is not there, the error names those beside it.
    with pytest.raises(ArchiveError, match=re.escape(f"(here: {tmp_path / 'tiny'})") + "$"):
        check_archive(tmp_path / "paper-local")


@pytest.mark.slow
def test_a_run_without_its_rate_check_publishes_and_rebuilds(
    published: Path, tmp_path: Path
) -> None:
    """``rate_check: {enabled: false}`` (config/paper-local.yaml) is a run without one: the
    archive carries none of its files, even those an earlier config left in the results
    folder, and the rebuilt ledger judges the rate claim as one with no rate check."""
    results = tmp_path / "results" / "tiny"
    shutil.copytree(published / "results" / "tiny", results)
    assert (results / "rate_checks" / "verdicts.csv").is_file()  # left by the rate check
    config = yaml.safe_load((results / "config.yaml").read_text(encoding="utf-8"))
    config["rate_check"] = {"enabled": False}
    (results / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    archive = tmp_path / "published" / "tiny"
    publish(results, published / "paper_figures" / "tiny", archive)
    manifest = check_archive(archive)
    assert not [name for name in manifest["files"] if name.startswith("rate_checks/")]
    rebuilt = tmp_path / "rebuilt"
    regenerate(archive, rebuilt, tmp_path / "figures", processes=1)
    assert not (rebuilt / "rate_checks").exists()
    ledger = pd.read_csv(rebuilt / "claims.csv", keep_default_na=False)
    rate = ledger[ledger["kind"] == "rate"]
    assert list(rate["row"]) == ["overall"]
    assert list(rate["reason"]) == ["rate check not run in this config"]


@pytest.mark.slow
def test_compact_trace_keeps_every_value_the_analysis_reads(published: Path) -> None:
    traces = load_traces(sorted((published / "results" / "tiny" / "raw").glob("*/*/*.parquet")))
    compact = compact_trace(traces)
    assert len(compact) < len(traces)
    evaluations = list(range(1, int(traces["budget"].max()) + 1))
    full, short = best_at(traces, evaluations), best_at(compact, evaluations)
    np.testing.assert_array_equal(full["value"].to_numpy(), short["value"].to_numpy())


def test_compact_trace_keeps_changes_failures_and_ends() -> None:
    best = [np.inf, 5.0, 5.0, 3.0, 3.0, 3.0]
    trace = pd.DataFrame(
        {
            "method": "m",
            "optimizer": "random",
            "problem": "sphere",
            "d": 2,
            "K": 1,
            "scoring": "final",
            "seed": 0,
            "budget": 6,
            "evaluation": np.arange(1, 7),
            "loss": [np.nan, 5.0, 6.0, 3.0, np.nan, 4.0],
            "best_so_far": best,
            "fresh_sample_loss": 1.0,
            "safeguard_events": 0,
            "failed": [True, False, False, False, True, False],
            "error": ["loss is nan", "", "", "", "loss is nan", ""],
            "status": "complete",
        }
    )
    assert compact_trace(trace)["evaluation"].tolist() == [1, 2, 4, 5, 6]


def test_published_folder_is_not_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "published/paper-local/manifest.json"],
        cwd=REPOSITORY,
        check=False,
    )
    assert ignored.returncode == 1


def test_manifest_lists_its_files_with_sha256(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {"a.csv": "0" * 64}}))
    with pytest.raises(ArchiveValidationError, match=r"a\.csv is missing"):
        check_archive(tmp_path)


@pytest.mark.parametrize(
    "archive",
    sorted(path.parent for path in (REPOSITORY / "published").glob("*/manifest.json")),
    ids=lambda path: path.name,
)
def test_every_committed_archive_passes_its_check(archive: Path) -> None:
    """Each archive under published/ holds exactly its listed files, intact and valid."""
    manifest = check_archive(archive)
    assert manifest["name"] == archive.name


def test_best_structures_refuse_a_run_listed_twice_or_an_empty_structure() -> None:
    row = {"method": "casbo", "problem": "mol-qed", "d": 27, "K": 1, "scoring": "plain"}
    frame = pd.DataFrame(
        [
            {**row, "seed": 0, "best_score": 0.5, "xyz": "1\n\nC 0 0 0"},
            {**row, "seed": 0, "best_score": 0.4, "xyz": ""},
        ]
    ).astype(BEST_STRUCTURE_COLUMNS)
    with pytest.raises(ArchiveValidationError) as raised:
        validate_best_structures(frame, "best.parquet")
    message = str(raised.value)
    assert message.startswith("best structures best.parquet failed validation")
    assert "one row per run" in message and "non-empty string" in message


@pytest.mark.parametrize(("calls", "sound"), [([3, 5], True), ([5, 3], False)])
def test_a_compact_trace_refuses_costs_that_decrease(calls: list[int], sound: bool) -> None:
    """The molecule curves read best-so-far at a cumulative cost off the kept rows, which is
    exact only while the costs never decrease within a run."""
    run = {"method": "casbo", "problem": "mol-qed", "d": 27, "K": 1, "scoring": "final"}
    frame = pd.DataFrame(
        {
            **{key: [value] * 2 for key, value in run.items()},
            "seed": [0, 0],
            "optimizer": ["casbo"] * 2,
            "budget": [2, 2],
            "evaluation": [1, 2],
            "loss": [1.0, 0.5],
            "best_so_far": [1.0, 0.5],
            "fresh_sample_loss": [np.nan, 0.4],
            "safeguard_events": [0, 0],
            "failed": [False, False],
            "error": ["", ""],
            "status": ["complete"] * 2,
            "calls": calls,
            "denoiser_evals": [10, 20],
        }
    ).astype({**COMPACT_COLUMNS, "calls": "int64", "denoiser_evals": "int64"})
    if sound:
        validate_compact_trace(frame, "sound.parquet")
        return
    with pytest.raises(ArchiveValidationError, match="must not decrease within a run"):
        validate_compact_trace(frame, "decreasing.parquet")
