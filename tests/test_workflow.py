"""The Snakemake workflow end to end on the tiny config, in a temporary directory.

Checks what a user of ``make reproduce`` relies on: every table and figure of the config is
written, each table validates against its schema, each raw trace validates, the molecule
benchmark runs and enters the claims ledger, the Snakemake report holds every figure and
table with its caption and shows the tables, the ledger and the rate check's verdicts as HTML,
and a second run has nothing to do (finished results are never recomputed), nor does a fresh
folder into which the run's jobs were restored (casbo-bench store).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from casbo_bench.analysis.claims import read_ledger
from casbo_bench.analysis.rates import read_verdicts
from casbo_bench.registration import read_spec
from casbo_bench.run_store import restore, store
from casbo_bench.schemas.tables import TABLE_SCHEMAS, validate_table
from casbo_bench.traces import load_traces, read_provenance
from tests.snakemake_runs import TINY_CONFIG, run_snakemake

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config").mkdir()
    shutil.copy(TINY_CONFIG, workdir / "config" / "config.yaml")
    result = run_snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_table_is_written_and_validates(finished_run: Path) -> None:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    for benchmark in config["benchmarks"]:
        folder = finished_run / "results" / "tiny" / "tables" / benchmark["name"]
        for name in TABLE_SCHEMAS:
            for suffix in ("csv", "md", "tex", "html"):
                path = folder / f"{name}.{suffix}"
                assert path.is_file() and path.stat().st_size > 0, path
            validate_table(name, pd.read_csv(folder / f"{name}.csv"))


def test_every_figure_is_written(finished_run: Path) -> None:
    figures = finished_run / "paper_figures" / "tiny"
    for benchmark in ("plain", "sequential"):
        written = {path.name for path in (figures / benchmark).iterdir()}
        assert "win_matrix.pdf" in written and "win_matrix.png" in written
        assert "ecdf.pdf" in written and "ecdf.png" in written
        assert any(name.startswith("convergence") and name.endswith(".png") for name in written)


def test_the_views_use_the_registered_targets_and_budgets(finished_run: Path) -> None:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    tables = finished_run / "results" / "tiny" / "tables"
    ert = pd.read_csv(tables / "sequential" / "ert.csv")
    assert set(ert["target_rule"]) == {"relative"}
    assert sorted(set(ert["level"]), reverse=True) == config["target_fractions"]
    # the capped method is ranked with the other at its cap (above it casbo is alone)
    ranks = pd.read_csv(tables / "sequential" / "ranks.csv")
    assert set(ranks["budget"]) == {30} and set(ranks["left_out"]) == {"none"}
    assert set(ranks["method"]) == {"casbo", "random"}
    fixed = pd.read_csv(tables / "sequential" / "fixed_budget.csv")
    assert set(fixed["budget_names"]) == {"5d", "cap", "full"}


def test_rate_check_verdicts_and_claims_ledger_validate(finished_run: Path) -> None:
    results = finished_run / "results" / "tiny"
    verdicts = read_verdicts(results / "rate_checks" / "verdicts.csv")
    assert set(verdicts["role"]) == {"claim", "control"}
    # The fixed Gaussian never adapts: the check must fail it, or the check is broken.
    control = verdicts[verdicts["method"] == "random"]
    assert (control["verdict"] == "fail").all()
    claims = read_ledger(results / "claims.csv")
    assert not claims.empty
    assert (results / "claims.md").stat().st_size > 0
    # judged under the config's registration, which every trace carries (or the ledger
    # would refuse them)
    registration = read_spec(results / "claims_spec.json").registration_hash
    assert set(claims["rule_hash"]) == {registration}
    raw = sorted((results / "raw").rglob("*.parquet"))
    assert raw and {read_provenance(path)["claims_rule_hash"] for path in raw} == {registration}
    assert "verdict_10d" in claims.columns
    for suffix in ("csv", "md", "tex", "html"):
        assert (results / "tables" / f"rate_checks.{suffix}").is_file()
    assert any((finished_run / "paper_figures" / "tiny" / "rate_checks").glob("*.png"))


def test_raw_traces_validate_with_every_method(finished_run: Path) -> None:
    raw = finished_run / "results" / "tiny" / "raw"
    traces = load_traces(sorted(raw.rglob("*.parquet")))
    assert set(traces["method"]) == {"casbo", "random"}
    assert set(traces["seed"]) == {0, 1}
    budgets = traces.groupby("method")["budget"].unique()
    assert set(budgets["random"]) == {40, 30}


def test_molecule_benchmark_runs_and_enters_the_ledger(finished_run: Path) -> None:
    results = finished_run / "results" / "tiny"
    tables = results / "tables" / "molecules"
    scores = pd.read_csv(tables / "molecule_scores.csv")
    assert set(scores["method"]) == {"casbo", "random", "smc"}
    # both cost axes: equal black-box calls and equal denoiser evaluations
    assert (scores["calls"] == 8).all() and (scores["denoiser_evals"] == 40).all()
    assert scores[["best_median", "compute_median"]].notna().all().all()
    smc = load_traces(sorted((results / "molecules" / "raw" / "smc").glob("*.parquet")))
    assert smc["calls"].max() >= 8 and smc["denoiser_evals"].max() >= 40
    assert not list((results / "raw").glob("*/smc"))  # no benchmark group runs it
    # Each run is planned for the stored model's sha256, so a replaced model reruns it.
    manifest = yaml.safe_load((ROOT / "models" / "edm_qm9_heavy" / "manifest.json").read_text())
    stored = manifest["files"]["sampling.pt"]["sha256"]
    for path in (results / "molecules" / "raw").rglob("*.parquet"):
        assert read_provenance(path)["arguments"]["checkpoint_sha256"] == stored
    assert (smc["detail_checkpoint"] == stored).all()
    assert (results / "molecules" / "best_molecules.sdf").stat().st_size > 0
    assert any((finished_run / "paper_figures" / "tiny" / "molecules").glob("score_*.png"))
    ledger = read_ledger(results / "claims.csv")
    molecule = ledger[(ledger["claim_id"] == "molecule") & (ledger["row"] == "overall")]
    assert len(molecule) == 1
    # Judged on the runs (2 seeds: too few to decide), not "benchmark not run".
    assert "not run" not in molecule["reason"].iloc[0]
    cells = ledger[(ledger["claim_id"] == "molecule") & (ledger["row"] == "cell")]
    assert set(cells["problem"]) == {"mol-qed"}


@pytest.mark.parametrize("trains_its_model", [False, True])
def test_molecule_runs_name_the_stored_model_they_are_planned_for(
    tmp_path: Path, trains_its_model: bool
) -> None:
    """A run on the stored model carries its sha256 (a replaced model changes the arguments
    and reruns it); a run on a model the workflow trains carries none (train_edm's outputs
    are its inputs, and a hash read before training would go stale)."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    stored = ROOT / "models" / "edm_qm9_heavy" / "manifest.json"
    if trains_its_model:
        config["molecules"]["models_dir"] = f"results/{config['name']}/models"
        # as after a first training: its manifest is there when the next run plans the jobs
        trained = tmp_path / config["molecules"]["models_dir"] / "edm_qm9_heavy"
        trained.mkdir(parents=True)
        shutil.copy(stored, trained / "manifest.json")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "-p", "--forceall")
    assert result.returncode == 0, result.stderr[-4000:]
    runs = [line for line in result.stdout.splitlines() if "casbo_bench run" in line]
    molecule_runs = [line for line in runs if "--problem mol-" in line]
    assert molecule_runs
    manifest = yaml.safe_load(stored.read_text())
    named = f"--checkpoint-sha256 {manifest['files']['sampling.pt']['sha256']}"
    assert all((named in line) != trains_its_model for line in molecule_runs)
    assert not any("--checkpoint-sha256" in line for line in runs if line not in molecule_runs)


def test_report_holds_every_figure_and_table(finished_run: Path) -> None:
    result = run_snakemake(finished_run, "--report", "report.zip")
    assert result.returncode == 0, result.stderr[-4000:]
    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        members = archive.namelist()
    in_report = {Path(name).name for name in members}
    figures = finished_run / "paper_figures" / "tiny"
    pngs = {path.name for path in figures.rglob("*.png")}
    assert pngs and pngs <= in_report, sorted(pngs - in_report)
    results = finished_run / "results" / "tiny"
    tables = {path.name for path in (results / "tables").rglob("*.csv")}
    assert {"final_loss.csv", "ert.csv", "molecule_scores.csv"} <= tables
    assert tables <= in_report, sorted(tables - in_report)
    pages = {path.name for path in results.rglob("*.html")}
    assert {"final_loss.html", "claims.html", "rate_checks.html", "molecule_scores.html"} <= pages
    assert pages <= in_report, sorted(pages - in_report)
    assert {"claims.csv", "verdicts.csv", "best_molecules.sdf"} <= in_report
    # Captions are rendered with the config: its name appears in the report's data.
    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        text = "".join(
            archive.read(name).decode("utf-8", "replace")
            for name in members
            if name.endswith((".js", ".html"))
        )
    assert "Config <strong>tiny</strong>" in text
    assert "not attached" in text and "the PDF lies beside" not in text


def test_report_shows_the_tables_and_the_ledger_inline(finished_run: Path) -> None:
    """Every HTML page of the results is in the report as it is (Snakemake shows HTML
    inline), and the pages hold each table's rows and the ledger's verdicts."""
    if not (finished_run / "report.zip").is_file():
        assert run_snakemake(finished_run, "--report", "report.zip").returncode == 0
    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        attached = {
            archive.read(name)
            for name in archive.namelist()
            if name.endswith(".html") and Path(name).name != "report.html"
        }
    results = finished_run / "results" / "tiny"
    pages = {path.relative_to(results).as_posix(): path for path in results.rglob("*.html")}
    # every benchmark table of both groups, the ledger, the rate check, two molecule tables
    assert len(pages) == len(attached) == 2 * len(TABLE_SCHEMAS) + 1 + 1 + 2
    assert {path.read_bytes() for path in pages.values()} == attached

    final = pd.read_csv(results / "tables" / "plain" / "final_loss.csv").iloc[0]
    page = pages["tables/plain/final_loss.html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert f"<td>{final['method']}</td><td>{final['problem']}</td>" in page
    assert f'<td class="number">{final["budget"]}</td>' in page
    assert "<p>fresh_kind law:" in page
    ledger = read_ledger(results / "claims.csv")
    claims = pages["claims.html"].read_text()
    assert "<h1>Claims ledger: tiny" in claims
    for verdict in set(ledger.loc[ledger["row"] == "overall", "verdict"]):
        assert f"<td>{verdict}</td>" in claims
    assert "<td>mol-qed</td>" in pages["tables/molecules/molecule_scores.html"].read_text()
    rates = pages["tables/rate_checks.html"].read_text()
    assert "<h2>Reasons</h2>" in rates and "random on sphere (control): fail" in rates


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    result = run_snakemake(finished_run, "--dry-run")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_a_stored_run_restored_in_a_fresh_folder_runs_no_job_again(
    finished_run: Path, tmp_path: Path
) -> None:
    """The run of a fresh machine (its jobs restored by `casbo-bench store --restore`,
    Snakemake's own records gone) plans no job of rule run: it only rebuilds what reads the
    restored traces."""
    name = yaml.safe_load(TINY_CONFIG.read_text())["name"]
    stored = store(finished_run / "results" / name, tmp_path / "runs" / name)
    assert stored.copied and not stored.refused
    fresh = tmp_path / "fresh"
    (fresh / "config").mkdir(parents=True)
    shutil.copy(TINY_CONFIG, fresh / "config" / "config.yaml")
    restored = restore(tmp_path / "runs" / name, fresh / "results" / name)
    assert restored.copied == stored.copied
    result = run_snakemake(fresh, "--dry-run")
    assert result.returncode == 0, result.stderr[-4000:]
    planned = result.stdout + result.stderr
    assert "rule run:" not in planned and "rule run_coco:" not in planned
    assert "rule tables:" in planned
    # Once the config changes, no restored trace is taken for the new config's.
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["description"] = "the tiny config, described anew"
    (fresh / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(fresh, "--dry-run")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "another config asked for it" in result.stdout + result.stderr


def test_invalid_config_is_rejected_with_its_field(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["benchmarks"][0]["dims"] = [0]
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "--dry-run")
    assert result.returncode != 0
    # Snakemake 9 prints dry-run errors on stdout.
    output = result.stdout + result.stderr
    assert "dims" in output and "minimum" in output
