"""Tests of the ``casbo-bench`` command line, through :func:`casbo_bench.cli.main`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from casbo_bench import cli, problems
from casbo_bench.cli import UsageError, main
from casbo_bench.cli.run import parse_option
from casbo_bench.optimizers import available_optimizers, describe_optimizers
from casbo_bench.problems import available_problems, describe_problems
from casbo_bench.problems.base import FloatArray, Problem
from casbo_bench.traces import read_provenance, read_trace, write_trace

RUN = ["run", "--method", "random", "--problem", "sphere", "--dim", "2", "--budget", "20"]
MOLECULE_RUN = ["run", "--method", "random", "--problem", "mol-qed", "--dim", "28", "--steps", "5"]
MOLECULE_RUN += ["--budget", "2", "--seeds", "0"]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line on stderr (progress lines of the logger aside)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [
        line for line in err.splitlines() if re.match(r"casbo-bench( [a-z-]+)?: error: ", line)
    ]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def traces(tmp_path: Path) -> list[Path]:
    """Traces of two methods on one setting, three seeds, written by ``run``."""
    paths = []
    for method in ("casbo", "random"):
        path = tmp_path / "raw" / f"{method}.parquet"
        arguments = ["run", "--method", method, "--problem", "sphere", "--dim", "2"]
        arguments += ["--seeds", "0", "1", "2", "--budget", "24", "--fresh-samples", "8"]
        assert main([*arguments, "--out", str(path)]) == 0
        paths.append(path)
    return paths


# --- run ----------------------------------------------------------------------------


def test_run_writes_a_valid_trace_with_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "folder" / "trace.parquet"
    arguments = [*RUN, "--seeds", "0", "3", "--steps", "2", "--scoring", "cumulative"]
    arguments += ["--label", "best-of-n", "--option", "batch_size=5", "--record-expected-loss"]
    assert main([*arguments, "--config-hash", "0123abcd", "--out", str(out)]) == 0
    trace = read_trace(out)
    assert len(trace) == 40
    assert set(trace["method"]) == {"best-of-n"}
    assert set(trace["seed"]) == {0, 3}
    assert trace["iteration"].max() == 3  # batches of 5
    assert trace["expected_loss"].notna().all()
    record = read_provenance(out)
    assert record["config_hash"] == "0123abcd"
    assert record["arguments"]["options"] == {"batch_size": 5}
    assert record["arguments"]["out"] == str(out)
    err = capsys.readouterr().err
    assert "best-of-n on sphere (d=2, K=2, cumulative), seed 3: best-so-far" in err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([*RUN, "--seeds", "0", "--method", "nope"], "unknown method 'nope'; choose one of"),
        ([*RUN, "--seeds", "0", "--problem", "nope"], "unknown problem 'nope'; choose one of"),
        ([*RUN, "--seeds", "0", "--dim", "0"], "argument --dim: must be an integer >= 1"),
        ([*RUN, "--seeds", "0", "--dim", "two"], "argument --dim: expected an integer"),
        ([*RUN, "--seeds", "0", "--steps", "0"], "argument --steps: must be an integer >= 1"),
        ([*RUN, "--seeds", "0", "--budget", "0"], "argument --budget: must be an integer >= 1"),
        ([*RUN, "--seeds"], "argument --seeds: expected at least one argument"),
        ([*RUN, "--seeds", "-1"], "argument --seeds: must be an integer >= 0"),
        ([*RUN, "--seeds", "1", "1"], "seeds must be distinct"),
        ([*RUN], "the following arguments are required: --seeds"),
        ([*RUN, "--seeds", "0", "--scoring", "best"], "argument --scoring: invalid choice"),
        ([*RUN, "--seeds", "0", "--option", "batch_size"], "malformed --option 'batch_size'"),
        ([*RUN, "--seeds", "0", "--option", "batch_size=[1, 2]"], "is not a scalar"),
        ([*RUN, "--seeds", "0", "--option", "bach_size=3"], "has no option(s) ['bach_size']"),
        (
            [*RUN, "--seeds", "0", "--option", "batch_size=2", "--option", "batch_size=3"],
            "given twice",
        ),
        ([*RUN, "--seeds", "0", "--option", "device=cpu"], "give the device"),
        ([*RUN, "--seeds", "0", "--models-dir", "models"], "sphere reads no stored models"),
        (
            [*RUN, "--seeds", "0", "--checkpoint-sha256", "a" * 64],
            "sphere reads no stored checkpoint",
        ),
        ([*RUN, "--seeds", "0", "--checkpoint-sha256", "abc"], "must be 64 lower-case hex"),
        ([*RUN, "--seeds", "0", "--on-failure", "skip"], "argument --on-failure: invalid choice"),
        (
            [*RUN, "--seeds", "0", "--failure-penalty", "inf"],
            "argument --failure-penalty: must be a finite number",
        ),
        (
            [*MOLECULE_RUN, "--models-dir", "no/such/folder"],
            "cannot load the molecule sampler",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_run_user_errors_are_one_line(
    arguments: list[str],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "trace.parquet"
    assert main([*arguments, "--out", str(out)] if arguments else []) == 2
    assert expected in _error_line(capsys)
    assert not out.exists()


def test_unwritable_output_folder_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main([*RUN, "--seeds", "0", "--out", str(blocker / "trace.parquet")]) == 2
    line = _error_line(capsys)
    assert line.startswith("casbo-bench run: error: argument --out: cannot write")
    assert f"{blocker} is a file, not a folder" in line


class _NaNProblem(Problem):
    name = "nan-problem"

    def __init__(self, dim: int, n_steps: int) -> None:
        self.dim, self.n_steps = dim, n_steps

    def rollout(self, noise: FloatArray) -> FloatArray:
        losses = (self.check_noise(noise) ** 2).sum(axis=2)
        losses[-1] = np.nan
        return losses


@pytest.fixture
def nan_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    real_make, real_names = problems.make_problem, problems.available_problems

    def make_problem(name: str, dim: int, n_steps: int = 1, *args: Any, **kw: Any) -> Problem:
        if name == "nan-problem":
            return _NaNProblem(dim, n_steps)
        return real_make(name, dim, n_steps, *args, **kw)

    monkeypatch.setattr(problems, "make_problem", make_problem)
    monkeypatch.setattr(problems, "available_problems", lambda: [*real_names(), "nan-problem"])


@pytest.mark.usefixtures("nan_problem")
def test_a_failed_evaluation_under_stop_is_one_line_naming_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trace.parquet"
    arguments = [*RUN, "--problem", "nan-problem", "--seeds", "7", "--out", str(out)]
    assert main([*arguments, "--on-failure", "stop"]) == 2
    line = _error_line(capsys)
    assert "random on nan-problem (d=2, K=1, final), seed 7: evaluation" in line
    assert "failed (loss is nan); set on_failure: penalty" in line
    assert not out.exists()


@pytest.mark.usefixtures("nan_problem")
def test_a_failed_evaluation_under_penalty_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "trace.parquet"
    arguments = [*RUN, "--problem", "nan-problem", "--seeds", "7", "--out", str(out)]
    assert main([*arguments, "--failure-penalty", "50"]) == 0
    trace = read_trace(out)
    assert trace["failed"].any() and not trace["failed"].all()
    assert set(trace.loc[trace["failed"], "error"]) == {"loss is nan"}
    assert read_provenance(out)["arguments"]["failure_penalty"] == 50.0


@pytest.mark.usefixtures("nan_problem")
def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    arguments = [*RUN, "--problem", "nan-problem", "--seeds", "7", "--debug"]
    with pytest.raises(RuntimeError, match="loss is nan"):
        main([*arguments, "--on-failure", "stop", "--out", str(tmp_path / "trace.parquet")])
    with pytest.raises(UsageError, match="--dim"):
        main(["--debug", *RUN, "--seeds", "0", "--dim", "0", "--out", "x.parquet"])


# --- option values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("popsize=12", ("popsize", 12)),
        ("beta0=0.5", ("beta0", 0.5)),
        ("beta0=1e-05", ("beta0", 1e-05)),
        ("beta0=-2.5E3", ("beta0", -2500.0)),
        ("flag=true", ("flag", True)),
        ("flag=False", ("flag", False)),
        ("rule=inverse_sqrt", ("rule", "inverse_sqrt")),
        ('rule="exact"', ("rule", "exact")),
        ("label='12'", ("label", "12")),
        ("switch=off", ("switch", "off")),
        (" key = value ", ("key", "value")),
    ],
)
def test_option_values_are_yaml_scalars(text: str, expected: tuple[str, object]) -> None:
    key, value = parse_option(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize(
    "text", ["novalue", "=3", "2x=3", "a.b=3", "x=null", "x=[1]", "x={a: 1}", "x=2024-01-01"]
)
def test_bad_options_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_option(text)


def test_option_values_are_never_evaluated() -> None:
    assert parse_option("x=__import__('os').getcwd()") == ("x", "__import__('os').getcwd()")
    with pytest.raises(UsageError):
        parse_option("x=!!python/object/apply:os.getcwd []")


# --- validate, aggregate, figures ---------------------------------------------------


def test_validate_prints_one_line_per_file(
    traces: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["validate", *map(str, traces)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(path) for path in traces]
    assert all("ok (72 rows, 3 run(s)" in line for line in lines)


def test_validate_reports_every_bad_file(
    traces: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = read_trace(traces[0])
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.Table.from_pandas(frame.assign(best_so_far=frame["loss"])), broken)
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), bare)
    text = tmp_path / "text.parquet"
    text.write_text("not parquet")
    capsys.readouterr()
    assert main(["validate", str(traces[0]), str(broken), str(bare), str(text)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{traces[0]}: ok")
    assert lines[1].startswith(f"{broken}: invalid: best_so_far must equal the running minimum")
    assert lines[2].startswith(f"{bare}: invalid:") and "casbo_bench.provenance" in lines[2]
    assert lines[3].startswith(f"{text}: invalid: trace {text} is not a readable Parquet file")
    assert "3 of 4 trace file(s) failed validation" in captured.err


def test_aggregate_writes_the_tables(traces: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "tables"
    arguments = ["aggregate", "--out-dir", str(out), "--reference", "casbo", "--alpha", "0.1"]
    assert main([*arguments, "--targets", "1", "0.01", *map(str, traces)]) == 0
    names = {path.name for path in out.iterdir()}
    tables = ("final_loss", "significance", "ert", "ert_inf_share", "fixed_budget", "ranks")
    for table in (*tables, "ecdf"):
        assert {f"{table}.csv", f"{table}.md", f"{table}.tex"} <= names
    ert = pd.read_csv(out / "ert.csv")
    assert set(ert["target_rule"]) == {"absolute"} and set(ert["level"]) == {1.0, 0.01}


def test_aggregate_takes_target_fractions_and_fixed_budgets_before_the_files(
    traces: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "tables"
    arguments = ["aggregate", "--out-dir", str(out), "--seed", "3", "--confidence", "0.9"]
    arguments += ["--fixed-budgets", "2d", "5", "--target-fractions", "0.5", "0.01"]
    assert main([*arguments, *map(str, traces)]) == 0
    ert = pd.read_csv(out / "ert.csv")
    assert set(ert["target_rule"]) == {"relative"} and set(ert["level"]) == {0.5, 0.01}
    fixed = pd.read_csv(out / "fixed_budget.csv")
    assert set(fixed["budget"]) == {4, 5, 24}
    assert set(pd.read_csv(out / "ecdf.csv")["confidence"]) == {0.9}
    # by default: relative targets 1e-1 ... 1e-6 and the fixed budgets 10d, 100d
    default = tmp_path / "default"
    assert main(["aggregate", "--out-dir", str(default), *map(str, traces)]) == 0
    assert len(pd.read_csv(default / "ert_inf_share.csv")) == 6 + 1
    assert set(pd.read_csv(default / "fixed_budget.csv")["budget"]) == {20, 24}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--reference", "cmaes"], "reference method 'cmaes' is not in the traces"),
        (["--alpha", "1.5"], "argument --alpha: must be strictly between 0 and 1"),
        (["--targets", "1", "-1"], "argument --targets: must be a positive finite number"),
        (["--targets", "1", "1"], "--targets must be distinct"),
        (["--targets"], "argument --targets: expected at least one number"),
        (["--target-fractions", "1.5"], "argument --target-fractions: must be in (0, 1]"),
        (["--target-fractions", "0.1", "0.1"], "--target-fractions must be distinct"),
        (
            ["--targets", "1", "--target-fractions", "0.1"],
            "argument --target-fractions: not allowed with argument --targets",
        ),
        (["--fixed-budgets", "0d"], "argument --fixed-budgets: expected an evaluation count"),
    ],
)
def test_aggregate_user_errors_are_one_line(
    arguments: list[str],
    expected: str,
    traces: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    command = ["aggregate", "--out-dir", str(tmp_path / "tables"), *arguments]
    assert main([*command, *map(str, traces)]) == 2
    assert expected in _error_line(capsys)


@pytest.mark.parametrize("command", ["aggregate", "figures"])
def test_analysis_argument_errors(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--out-dir", str(tmp_path)]) == 2
    line = _error_line(capsys)
    assert "trace file" in line or "FILE.parquet" in line
    assert main([command, str(tmp_path / "a.parquet")]) == 2
    assert "--out-dir" in _error_line(capsys)
    assert main([command, "--out-dir", str(tmp_path / "o"), str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in _error_line(capsys)


def test_aggregate_stops_at_an_invalid_trace(
    traces: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = read_trace(traces[1])
    pq.write_table(pa.Table.from_pandas(frame.assign(loss=np.nan)), traces[1])
    out = tmp_path / "tables"
    capsys.readouterr()
    assert main(["aggregate", "--out-dir", str(out), *map(str, traces)]) == 2
    line = _error_line(capsys)
    assert str(traces[1]) in line and "column 'loss'" in line
    assert not out.exists()  # nothing is created before the traces are read


def test_figures_are_drawn(traces: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "figures"
    arguments = ["figures", "--out-dir", str(out), "--target-fractions", "0.1", "0.001"]
    assert main([*arguments, *map(str, traces)]) == 0
    suffixes = {path.suffix for path in out.iterdir() if path.stat().st_size > 0}
    assert suffixes == {".pdf", ".png"}
    assert {"ecdf.pdf", "ecdf.png", "win_matrix.png"} <= {path.name for path in out.iterdir()}


def test_relative_targets_refuse_negated_scores_in_one_line(
    traces: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a loss below 0 (a negated score): f* is not 0, so there is no gap to take fractions of
    frame = read_trace(traces[0])
    shifted = frame.assign(loss=frame["loss"] - 1e3, best_so_far=frame["best_so_far"] - 1e3)
    write_trace(shifted, traces[0], read_provenance(traces[0]))
    capsys.readouterr()
    assert main(["aggregate", "--out-dir", str(tmp_path / "t"), str(traces[0])]) == 2
    line = _error_line(capsys)
    assert "not an optimality gap" in line and "--targets" in line


def test_figures_titles_start_with_the_given_prefix(
    traces: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casbo_bench.analysis import figures

    titles: list[str] = []
    save = figures.save_figure

    def record(figure: Any, out_dir: Path, stem: str) -> list[Path]:
        titles.append(figure.get_suptitle() or figure.axes[0].get_title())
        return save(figure, out_dir, stem)

    monkeypatch.setattr(figures, "save_figure", record)
    out = tmp_path / "figures"
    arguments = ["figures", "--out-dir", str(out), "--title-prefix", "quick · plain"]
    assert main([*arguments, *map(str, traces)]) == 0
    assert titles and all(title.startswith("quick · plain") for title in titles)


# --- list -----------------------------------------------------------------------------

LISTED_PLUGINS = [
    *(pytest.param("optimizers", name, id=f"optimizer-{name}") for name in available_optimizers()),
    *(pytest.param("problems", name, id=f"problem-{name}") for name in available_problems()),
]


def _listed(text: str) -> dict[str, dict[str, str]]:
    """The output of ``casbo-bench list``: section -> plugin name -> one-line summary."""
    sections: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            section = sections.setdefault(line.removesuffix(":"), {})
            continue
        name, _, summary = line.strip().partition("  ")
        section[name] = summary.strip()
    return sections


def test_list_shows_the_registries_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    listed = _listed(capsys.readouterr().out)
    assert list(listed) == ["optimizers", "problems"]
    assert list(listed["optimizers"]) == available_optimizers()
    assert list(listed["problems"]) == available_problems()
    assert main(["list", "problems"]) == 0
    assert list(_listed(capsys.readouterr().out)) == ["problems"]


@pytest.mark.parametrize(("section", "name"), LISTED_PLUGINS)
def test_list_gives_every_plugin_its_summary(
    section: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", section]) == 0
    summary = _listed(capsys.readouterr().out)[section][name]
    expected = describe_optimizers() if section == "optimizers" else describe_problems()
    assert summary and summary == expected[name]


# --- help -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["aggregate"], ["figures"], ["validate"]])
def test_help_has_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*command, "--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    assert f"casbo-bench {command[0]}" in text if command else "casbo-bench run" in text


def test_module_entry_point() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "casbo_bench", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0
    assert "--record-expected-loss" in completed.stdout


def test_user_errors_do_not_swallow_bugs() -> None:
    assert not any(issubclass(error, (TypeError, KeyError)) for error in cli.USER_ERRORS)


def test_every_subcommand_has_help_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from casbo_bench.cli import commands

    for name in commands():
        with pytest.raises(SystemExit) as exit_status:
            main([name, "--help"])
        assert exit_status.value.code == 0
        assert "examples:" in capsys.readouterr().out, name
