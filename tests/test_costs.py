"""The cost model: the workflow's jobs read from a dry run, calibration and estimates."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from casbo_bench import costs
from casbo_bench.memory import job_memory_mb
from tests.snakemake_runs import REPOSITORY, TINY_CONFIG

DRY_RUN = """
[Mon Nov 30 17:07:37 2026]
rule run:
    input: models/a.pt, models/b.pt
    output: results/x/raw/plain/casbo/sphere_d4_K1_final_s0.parquet
    resources: tmpdir=/tmp, runtime=60, gpu=0, mem_mb=2000, mem=2 GB, mem_mib=1908
Shell command: OMP_NUM_THREADS=1 python -m casbo_bench run --method casbo --label casbo-1d \
--option 'beta0="1/d"' --seeds 0 1 2 --budget 300 --fresh-samples 64 --problem sphere --dim 4 \
--steps 1 --scoring final --out 'results/x/a b.parquet' > log 2>&1

[Mon Nov 30 17:07:37 2026]
localrule tables:
    input: t1.parquet, t2.parquet, t3.parquet
    output: results/x/tables/plain/ert.csv
    resources: tmpdir=/tmp, mem_mb=4000
Shell command: python -m casbo_bench aggregate --out-dir tables t1.parquet

[Mon Nov 30 17:07:37 2026]
localrule all:
    input: results/x/tables/plain/ert.csv
"""


def test_a_dry_run_listing_gives_each_job_with_its_run_arguments() -> None:
    jobs = costs.parse_dry_run(DRY_RUN.replace("\\\n", ""))
    assert [job.rule for job in jobs] == ["run", "tables"]
    run, tables = jobs
    assert run.arguments[:4] == ("--method", "casbo", "--label", "casbo-1d")
    assert "--out" not in run.arguments and run.mem_mb == 2000 and run.n_inputs == 2
    assert tables.arguments == () and tables.n_inputs == 3 and tables.mem_mb == 4000
    parsed = costs.RunJob.parse(run.arguments)
    assert parsed.label == "casbo-1d" and (parsed.n_seeds, parsed.budget, parsed.fresh) == (
        3,
        300,
        64,
    )
    assert parsed.setting == costs.RunSetting(("casbo", 'beta0="1/d"'), "test", 4, 1)


def test_the_workflows_own_dry_run_lists_every_trace_of_the_tiny_config(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(TINY_CONFIG, tmp_path / "config" / "config.yaml")
    jobs = costs.dry_run_jobs(
        tmp_path / "config" / "config.yaml",
        [sys.executable, "-m", "snakemake"],
        "--snakefile",
        str(REPOSITORY / "Snakefile"),
        "--directory",
        str(tmp_path),
    )
    runs = [job for job in jobs if job.rule in ("run", "run_coco")]
    assert runs and all(job.arguments for job in runs)
    assert {"tables", "claims"} <= {job.rule for job in jobs}
    assert all(costs.RunJob.parse(job.arguments).budget > 0 for job in runs)


def test_calibration_budgets_are_a_tenth_and_a_fifth_with_floors() -> None:
    assert costs.calibration_budgets(300) == (30, 60)
    assert costs.calibration_budgets(40) == (8, 16)
    assert costs.calibration_budgets(5) == (5, 5)


def test_an_estimate_is_start_plus_rollouts_times_their_cost() -> None:
    job = costs.RunJob.parse(
        [
            "--method",
            "cmaes",
            "--problem",
            "sphere",
            "--dim",
            "4",
            "--seeds",
            "0",
            "1",
            "--budget",
            "100",
            "--fresh-samples",
            "10",
        ]
    )
    calibration = costs.Calibration(
        settings={
            costs.setting_key(job.setting): {
                "budgets": [10, 20],
                "seconds": [2.1, 2.2],
                "peak_mb": 1.0,
            }
        }
    )
    estimate = costs.estimate_run(job, calibration)
    assert estimate.seconds == pytest.approx(2.0 + 0.01 * 2 * 100)
    # The model (cmaes on the sphere runs no torch), above the 1 MB measured.
    assert not job.uses_torch and estimate.peak_mb == job_memory_mb(4, 1, 100, 10, False)


def test_an_analysis_rule_is_priced_by_its_inputs_the_rate_check_at_its_own_rate() -> None:
    tables = costs.estimate_analysis(costs.PlannedJob("tables", n_inputs=100, mem_mb=4000))
    rates = costs.estimate_analysis(costs.PlannedJob("rate_check", n_inputs=100, mem_mb=4000))
    start = costs.ANALYSIS_START_SECONDS
    assert tables.seconds == pytest.approx(start + 100 * costs.ANALYSIS_SECONDS_PER_INPUT)
    assert rates.seconds == pytest.approx(start + 100 * costs.RULE_SECONDS_PER_INPUT["rate_check"])
    assert rates.seconds > 10 * (tables.seconds - start) and tables.peak_mb == 4000


def test_calibration_runs_each_setting_once_and_is_kept(tmp_path: Path) -> None:
    arguments = [
        "--method",
        "random",
        "--problem",
        "sphere",
        "--dim",
        "3",
        "--seeds",
        "0",
        "--budget",
        "40",
        "--fresh-samples",
        "4",
    ]
    jobs = [
        costs.RunJob.parse(arguments),
        costs.RunJob.parse([*arguments[:-4], "--budget", "80", "--fresh-samples", "4"]),
    ]
    calibration = costs.Calibration()
    assert costs.calibrate(jobs, calibration, log=lambda _: None) == 1
    (measured,) = calibration.settings.values()
    start, per_rollout = costs.fitted_costs(measured)
    assert start > 0 and per_rollout >= 0 and measured["peak_mb"] > 10
    path = tmp_path / "calibration.json"
    calibration.write(path)
    again = costs.Calibration.read(path)
    assert costs.calibrate(jobs, again, log=lambda _: None) == 0


def _linear_runs(monkeypatch: pytest.MonkeyPatch, per_evaluation: float) -> list[int]:
    """Calibration runs replaced by a clock: 1 s of start-up plus ``per_evaluation`` seconds
    per evaluation, 100 MB; returns the list the runs' budgets are appended to."""
    runs: list[int] = []

    def timed(job: costs.RunJob, budget: int, scratch: Path) -> tuple[float, float]:
        runs.append(budget)
        return 1.0 + per_evaluation * budget, 100.0

    monkeypatch.setattr(costs, "timed_run", timed)
    return runs


SPHERE_JOB = "--method random --problem sphere --dim 3 --seeds 0 --fresh-samples 4 --budget"


def test_calibration_grows_b2_until_the_work_outweighs_start_up_jitter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 1 ms per evaluation, b1 = 1000 and b2 = 2000 are 1 s apart, too little; b2 = 4000
    gives 3 s. A job too small to reach the spread stops at its own budget."""
    runs = _linear_runs(monkeypatch, 0.001)
    big = costs.RunJob.parse([*SPHERE_JOB.split(), "10000"])
    measured = costs.measure_setting(big, tmp_path)
    assert runs == [1000, 2000, 4000] and measured["budgets"] == [1000, 4000]
    assert costs.fitted_costs(measured) == pytest.approx((1.0, 0.001))
    runs.clear()
    small = costs.RunJob.parse([*SPHERE_JOB.split(), "300"])
    assert costs.measure_setting(small, tmp_path)["budgets"] == [30, 300]
    assert runs == [30, 60, 120, 240, 300]


def test_a_setting_is_calibrated_at_its_largest_job_and_a_brief_record_measured_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default config's rate check (budget 1,800) and the claims config's (18,000) share
    a setting: a record made at the small budget, too brief to read a slope from, is
    measured again for the large one; a record with a wide enough spread is kept."""
    runs = _linear_runs(monkeypatch, 0.0005)
    small, large = (costs.RunJob.parse([*SPHERE_JOB.split(), b]) for b in ("1800", "18000"))
    calibration = costs.Calibration()
    assert costs.calibrate([small], calibration, log=lambda _: None) == 1
    (key,) = calibration.settings
    assert calibration.settings[key]["budgets"] == [180, 1800]  # spread 0.81 s at its cap
    runs.clear()
    assert costs.calibrate([small, large], calibration, log=lambda _: None) == 1
    assert runs[0] == 1800 and calibration.settings[key]["budgets"] == [1800, 7200]
    assert costs.calibrate([small, large], calibration, log=lambda _: None) == 0


def test_a_stopped_calibration_keeps_every_setting_it_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's file is written after each setting: a plan stopped during its third
    setting finds the first two measured when it runs again, and measures only the third."""
    _linear_runs(monkeypatch, 0.01)
    jobs = [
        costs.RunJob.parse([*SPHERE_JOB.replace("--dim 3", f"--dim {d}").split(), "1000"])
        for d in (2, 3, 4)
    ]
    path = tmp_path / "calibration.json"

    def stop_at_the_third(done: costs.Calibration) -> None:
        done.write(path)
        if len(done.settings) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        costs.calibrate(jobs, costs.Calibration(), log=lambda _: None, keep=stop_at_the_third)
    resumed = costs.Calibration.read(path)
    first_two = dict(resumed.settings)
    assert len(first_two) == 2
    assert costs.calibrate(jobs, resumed, log=lambda _: None) == 1
    assert len(resumed.settings) == 3 and all(
        resumed.settings[k] == first_two[k] for k in first_two
    )


def test_a_calibration_run_that_outlasts_its_timeout_is_stopped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arguments = "--method random --problem sphere --dim 3 --seeds 0 --budget 40"
    job = costs.RunJob.parse([*arguments.split(), "--fresh-samples", "4"])
    monkeypatch.setattr(costs, "CALIBRATION_TIMEOUT_SECONDS", 0.01)
    with pytest.raises(costs.PlanError, match=r"was stopped after 0.01 s; run it by hand"):
        costs.timed_run(job, 40, tmp_path)


def test_a_damaged_calibration_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("{not json")
    with pytest.raises(costs.PlanError, match="delete it to calibrate again"):
        costs.Calibration.read(path)


def test_measured_rows_sum_snakemakes_benchmark_files_per_rule_and_method(tmp_path: Path) -> None:
    header = "s\th:m:s\tmax_rss\tcpu_time\n"
    for relative, (seconds, rss) in {
        "raw/plain/casbo/sphere_d4_K1_final_s0.tsv": (3.0, 120.0),
        "raw/plain/casbo/sphere_d10_K1_final_s0.tsv": (4.0, 150.0),
        "rate_checks/raw/casbo-decay/sphere_d5_K3_cumulative_s0.tsv": (5.0, 90.0),
        "robustness/raw/plain/casbo-rank/sphere_d10_K1_final_s0.tsv": (2.0, 95.0),
        "molecules/raw/svdd/mol-qed_d63_K22_final_s0.tsv": (6.0, 360.0),
        "tables/plain.tsv": (7.0, 300.0),
        "claims.tsv": (1.0, 80.0),
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:0{seconds:.0f}\t{rss}\t{seconds / 2}\n")
    assert costs.measured_rows(tmp_path) == {
        ("run", "casbo"): costs.Measured(2, 7.0, 150.0),
        ("run", "casbo-decay"): costs.Measured(1, 5.0, 90.0),
        ("run", "casbo-rank"): costs.Measured(1, 2.0, 95.0),
        ("run", "svdd"): costs.Measured(1, 6.0, 360.0),
        ("tables", ""): costs.Measured(1, 7.0, 300.0),
        ("claims", ""): costs.Measured(1, 1.0, 80.0),
    }


def test_the_plan_table_sets_the_measured_cost_beside_the_estimate() -> None:
    from casbo_bench.cli.plan import format_plan

    estimates = [
        costs.Estimate("run", "casbo", 3600.0, 600.0),
        costs.Estimate("run", "turbo", 7200.0, 900.0, lower_bound=True),
        costs.Estimate("run", "turbo", 7200.0, 900.0, lower_bound=True),
        costs.Estimate("tables", "", 36.0, 4000.0),
    ]
    rows = costs.summary_rows(estimates)
    assert rows[-1].rule == "total" and rows[-1].cpu_hours == pytest.approx(5.01)
    assert rows[-1].wall_hours(cores=2) == pytest.approx(2.505)
    measured = {
        ("run", "casbo"): costs.Measured(1, 1800.0, 550.0),
        ("run", "turbo"): costs.Measured(1, 6800.0, 800.0),
    }
    text = format_plan(rows, measured, Path("c.yaml"), cores=2)
    assert "| run | casbo | 1 | 1.000 | 3600 | 600 | 1 | 0.500 | 550 | 2.00 |" in text
    # One of turbo's two jobs has finished: its cost is shown, no ratio is drawn from it.
    assert "| run | turbo (lower bound) | 2 | 4.000 | 7200 | 900 | 1 | 1.889 | 800 |  |" in text
    assert "| tables |  | 1 | 0.010 | 36 | 4000 | 0 |  |  |  |" in text
    assert "largest job needs 4000 MB" in text


def test_plan_refuses_a_missing_config_in_one_line() -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "casbo_bench", "plan", "--configfile", "no/such.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "casbo-bench plan: error: --configfile no/such.yaml: no such file; name a config"
    )


def test_a_molecule_jobs_calibration_scales_both_budgets_together() -> None:
    job = costs.RunJob.parse(
        [
            "--method",
            "smc",
            "--problem",
            "mol-qed",
            "--dim",
            "63",
            "--steps",
            "22",
            "--seeds",
            "0",
            "--budget",
            "200",
            "--denoiser-budget",
            "4200",
        ]
    )
    assert job.scaled_budgets(20) == {"--budget": ["20"], "--denoiser-budget": ["420"]}


def test_a_calibration_of_another_machine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    costs.Calibration(machine={"cpu": "some other CPU", "logical_cores": 64}).write(path)
    with pytest.raises(costs.PlanError, match="calibrated on another machine"):
        costs.Calibration.read(path)


def test_molecule_jobs_price_their_fresh_samples_and_test_functions_do_not() -> None:
    common = ["--dim", "63", "--seeds", "0", "--budget", "200", "--fresh-samples", "16"]
    molecule = costs.RunJob.parse(
        ["--method", "casbo", "--problem", "mol-qed", "--steps", "22", *common]
    )
    sphere = costs.RunJob.parse(["--method", "casbo", "--problem", "sphere", *common])
    assert (molecule.priced_rollouts, sphere.priced_rollouts) == (216, 200)
