"""Fault suite: bad command lines, one per case, through :func:`casbo_bench.cli.main`.

Every case must end with exit status 2 and exactly one non-empty stderr line,
``casbo-bench <command>: error: ...``, that names the offending argument, before any work:
nothing is created under the test's folder (the current folder during the call, so relative
outputs land there too), not even an empty output folder.

Placeholders in a case's arguments: ``{tmp}`` the test's folder, which holds the folders
``dir/``, ``dir.parquet/``, ``dir.csv/`` and ``empty.npz/``, a file ``file`` and a text file
``notes.parquet``; ``{trace}`` a valid trace; ``{subset}`` the committed QM9 subset.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from casbo_bench.cli import main
from tests.molecules.structures import SUBSET

pytestmark = pytest.mark.fault("bad command line")

RUN = {
    "--method": "random",
    "--problem": "sphere",
    "--dim": "2",
    "--seeds": "0",
    "--budget": "4",
    "--out": "{tmp}/out/trace.parquet",
}


def run(changes: dict[str, str | None] | None = None, *extra: str) -> list[str]:
    """``run``'s arguments: :data:`RUN` with ``changes`` (None drops an option), then ``extra``."""
    options = {**RUN, **(changes or {})}
    words = ["run"]
    for name, value in options.items():
        if value is not None:
            words += [name, *value.split(" ")]
    return [*words, *extra]


EDM = ["train-edm", "--data", "{subset}", "--out", "{tmp}/edm", "--device", "cpu"]
PREDICTOR = ["train-predictor", "--data", "{subset}", "--out", "{tmp}/predictor"]
EVALUATE = ["evaluate-edm", "--data", "{subset}", "--out", "{tmp}/quality.json"]
EVALUATE += ["--device", "cpu", "--reference-split", "none", "--samples", "1", "--steps", "1"]
AGGREGATE = ["aggregate", "--out-dir", "{tmp}/tables"]
FIGURES = ["figures", "--out-dir", "{tmp}/figures"]
RATES = ["rates", "--out-dir", "{tmp}/rc", "--iterations", "1,2", "--t-tolerance", "0.1"]
RATES += ["--d-tolerance", "0.25", "--bound-factor", "2"]
CLAIMS = ["claims", "--spec", "{tmp}/spec.json", "--out-dir", "{tmp}/ledger"]
REPORT = ["molecule-report", "--tables-dir", "{tmp}/mt", "--figures-dir", "{tmp}/mf"]
REPORT += ["--sdf", "{tmp}/best.sdf", "--no-predictor"]

CASES: list[tuple[str, list[str], Sequence[str]]] = [
    # (case, arguments, what the error line names)
    ("run: unknown optimizer", run({"--method": "nope"}), ["unknown method 'nope'"]),
    ("run: unknown problem", run({"--problem": "nope"}), ["unknown problem 'nope'"]),
    ("run: unknown molecule task", run({"--problem": "mol-nope"}), ["problem 'mol-nope'"]),
    ("run: zero dim", run({"--dim": "0"}), ["argument --dim", ">= 1"]),
    ("run: non-integer dim", run({"--dim": "2.5"}), ["argument --dim", "'2.5'"]),
    ("run: a million dims", run({"--dim": "1000000"}), ["--dim 1000000", "memory model"]),
    ("run: zero budget", run({"--budget": "0"}), ["argument --budget", ">= 1"]),
    ("run: negative budget", run({"--budget": "-3"}), ["argument --budget", "-3"]),
    ("run: budget not a number", run({"--budget": "many"}), ["argument --budget", "'many'"]),
    ("run: zero steps", run({"--steps": "0"}), ["argument --steps"]),
    ("run: negative seed", run({"--seeds": "-1"}), ["argument --seeds"]),
    ("run: duplicate seeds", run({"--seeds": "3 3"}), ["seeds must be distinct", "[3, 3]"]),
    ("run: unknown scoring", run({"--scoring": "best"}), ["argument --scoring", "'best'"]),
    ("run: unknown device", run({"--device": "tpu"}), ["argument --device", "'tpu'"]),
    ("run: zero fresh samples", run({"--fresh-samples": "0"}), ["argument --fresh-samples"]),
    ("run: option without value", run({}, "--option", "batch_size"), ["--option 'batch_size'"]),
    (
        "run: option value not a scalar",
        run({}, "--option", "batch_size=[1, 2]"),
        ["--option batch_size", "not a scalar"],
    ),
    ("run: unknown option name", run({}, "--option", "bach_size=3"), ["bach_size"]),
    (
        "run: option given twice",
        run({}, "--option", "batch_size=2", "--option", "batch_size=3"),
        ["--option", "twice"],
    ),
    ("run: device as an option", run({}, "--option", "device=cpu"), ["--device"]),
    ("run: unknown argument", run({}, "--frobnicate"), ["--frobnicate"]),
    ("run: missing budget", run({"--budget": None}), ["required", "--budget"]),
    ("run: missing out", run({"--out": None}), ["required", "--out"]),
    ("run: out an existing folder", run({"--out": "{tmp}/dir.parquet"}), ["argument --out"]),
    (
        "run: out without .parquet",
        run({"--out": "{tmp}/trace.csv"}),
        ["argument --out", ".parquet"],
    ),
    (
        "run: out under a file",
        run({"--out": "{tmp}/file/trace.parquet"}),
        ["argument --out", "is a file"],
    ),
    ("run: models for a plain problem", run({"--models-dir": "{tmp}/dir"}), ["models"]),
    (
        "run: COCO folder for a problem without COCO data",
        run({"--coco-folder": "{tmp}/coco"}),
        ["sphere writes no COCO data", "--coco-folder"],
    ),
    (
        "run: COCO folder a file",
        run({"--problem": "bbob-f01", "--coco-folder": "{tmp}/file"}),
        ["argument --coco-folder", "is a file"],
    ),
    (
        "run: COCO folder that holds files",
        run({"--problem": "bbob-f01", "--coco-folder": "{tmp}"}),
        ["already holds files", "remove it"],
    ),
    ("run: bbob with K > 1", run({"--problem": "bbob-f01", "--steps": "2"}), ["K = 1"]),
    ("run: bbob in 4-D", run({"--problem": "bbob-f01", "--dim": "4"}), ["2, 3, 5, 10, 20, 40"]),
    ("qm9: out without .npz", ["qm9", "--out", "{tmp}/qm9.txt"], ["argument --out", ".npz"]),
    ("qm9: out an existing folder", ["qm9", "--out", "{tmp}/empty.npz"], ["argument --out"]),
    ("qm9: zero subset size", ["qm9", "--out", "{tmp}/s.npz", "--size", "0"], ["--size"]),
    (
        "qm9: missing parent file",
        ["qm9", "--subset-of", "{tmp}/absent.npz", "--out", "{tmp}/s.npz"],
        ["absent.npz"],
    ),
    (
        "train-edm: out a file",
        [*EDM[:4], "{tmp}/file", *EDM[5:]],
        ["argument --out", "is a file"],
    ),
    ("train-edm: zero hours", [*EDM, "--hours", "0"], ["argument --hours"]),
    (
        "train-edm: both resume flags",
        [*EDM, "--resume", "--resume-if-present"],
        ["--resume-if-present", "not allowed"],
    ),
    ("train-edm: resume without a state", [*EDM, "--resume"], ["start without --resume"]),
    ("train-edm: missing data", [*EDM[:2], "{tmp}/absent.npz", *EDM[3:]], ["absent.npz"]),
    (
        "train-edm: data not a dataset",
        [*EDM[:2], "{tmp}/file", *EDM[3:]],
        ["/file is not a casbo-bench QM9 file"],
    ),
    ("train-edm: unknown device", [*EDM[:-1], "tpu"], ["argument --device"]),
    (
        "train-edm: final learning rate above the peak",
        [*EDM, "--decay-steps", "10", "--final-lr-fraction", "2"],
        ["argument --final-lr-fraction", "must be in (0, 1]"],
    ),
    ("train-edm: negative decay", [*EDM, "--decay-steps", "-5"], ["argument --decay-steps"]),
    (
        "train-predictor: out a file",
        [*PREDICTOR[:4], "{tmp}/file"],
        ["argument --out", "is a file"],
    ),
    (
        "train-predictor: negative minutes",
        [*PREDICTOR, "--max-minutes", "-1"],
        ["argument --max-minutes"],
    ),
    ("train-predictor: missing data", PREDICTOR[:1] + PREDICTOR[3:], ["required", "--data"]),
    (
        "evaluate-edm: out without .json",
        [*EVALUATE[:4], "{tmp}/quality.txt", *EVALUATE[5:]],
        ["argument --out", ".json"],
    ),
    (
        "evaluate-edm: csv an existing folder",
        [*EVALUATE, "--csv", "{tmp}/dir.csv"],
        ["argument --csv", "existing folder"],
    ),
    ("evaluate-edm: negative samples", [*EVALUATE, "--samples", "-1"], ["argument --samples"]),
    (
        "evaluate-edm: missing model folder",
        [*EVALUATE, "--checkpoint", "{tmp}/no-model"],
        ["no model folder", "no-model"],
    ),
    (
        "aggregate: out-dir a file",
        [*AGGREGATE[:2], "{tmp}/file", "{trace}"],
        ["argument --out-dir", "is a file"],
    ),
    ("aggregate: missing trace", [*AGGREGATE, "{tmp}/absent.parquet"], ["absent.parquet"]),
    ("aggregate: not a Parquet file", [*AGGREGATE, "{tmp}/notes.parquet"], ["notes.parquet"]),
    ("aggregate: alpha above 1", [*AGGREGATE, "--alpha", "1.5", "{trace}"], ["argument --alpha"]),
    (
        "aggregate: unknown reference",
        [*AGGREGATE, "--reference", "nope", "{trace}"],
        ["'nope'", "--reference"],
    ),
    (
        "figures: out-dir under a file",
        ["figures", "--out-dir", "{tmp}/file/figures", "{trace}"],
        ["argument --out-dir", "is a file"],
    ),
    ("figures: confidence 2", [*FIGURES, "--confidence", "2", "{trace}"], ["--confidence"]),
    ("figures: no trace", FIGURES, ["FILE.parquet"]),
    (
        "aggregate: target fraction above 1",
        [*AGGREGATE, "--target-fractions", "2", "{trace}"],
        ["argument --target-fractions", "(0, 1]"],
    ),
    (
        "aggregate: a fixed budget of 0",
        [*AGGREGATE, "--fixed-budgets", "0", "{trace}"],
        ["argument --fixed-budgets"],
    ),
    (
        "figures: absolute and relative targets",
        [*FIGURES, "--targets", "1", "--target-fractions", "0.1", "{trace}"],
        ["not allowed with argument --targets"],
    ),
    (
        "rates: one iteration count",
        [*RATES[:4], "3", *RATES[5:], "{trace}"],
        ["argument --iterations"],
    ),
    (
        "rates: out-dir a file",
        [*RATES[:2], "{tmp}/file", *RATES[3:], "{trace}"],
        ["argument --out-dir", "is a file"],
    ),
    (
        "rates: table-dir under a file",
        [*RATES, "--table-dir", "{tmp}/file/tables", "{trace}"],
        ["argument --table-dir"],
    ),
    ("rates: malformed check", [*RATES, "--check", "casbo:sphere", "{trace}"], ["--check"]),
    ("rates: missing tolerance", [*RATES[:5], *RATES[7:], "{trace}"], ["--t-tolerance"]),
    (
        "claims: out-dir a file",
        [*CLAIMS[:4], "{tmp}/file", "--benchmark", "plain", "{trace}"],
        ["argument --out-dir", "is a file"],
    ),
    ("claims: no benchmark", CLAIMS, ["--benchmark"]),
    (
        "claims: a benchmark twice",
        [*CLAIMS, "--benchmark", "plain", "{trace}", "--benchmark", "plain", "{trace}"],
        ["--benchmark plain", "twice"],
    ),
    (
        "molecule-report: sdf without .sdf",
        [*REPORT[:6], "{tmp}/best.txt", *REPORT[7:], "{trace}"],
        ["argument --sdf", ".sdf"],
    ),
    (
        "molecule-report: tables-dir a file",
        [*REPORT[:2], "{tmp}/file", *REPORT[3:], "{trace}"],
        ["argument --tables-dir", "is a file"],
    ),
    (
        "molecule-report: predictor and no predictor",
        [*REPORT, "--predictor", "{tmp}/dir", "{trace}"],
        ["--predictor", "not allowed"],
    ),
    ("molecule-report: alpha 0", [*REPORT, "--alpha", "0", "{trace}"], ["argument --alpha"]),
    ("list: unknown section", ["list", "solvers"], ["'solvers'"]),
    (
        "cocopp: out-dir a file",
        ["cocopp", "--out-dir", "{tmp}/file", "{tmp}/dir"],
        ["argument --out-dir", "is a file"],
    ),
    (
        "cocopp: folder without COCO data",
        ["cocopp", "--out-dir", "{tmp}/pp", "{tmp}/dir"],
        ["no COCO data"],
    ),
    ("cocopp: no folder", ["cocopp", "--out-dir", "{tmp}/pp"], ["FOLDER"]),
]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid trace (random search on the sphere, two seeds), outside the tests' folders."""
    path = tmp_path_factory.mktemp("trace") / "random.parquet"
    assert main(run({"--seeds": "0 1", "--out": str(path)})) == 0
    return path


def _scene(folder: Path) -> None:
    """The existing paths the placeholders of :data:`CASES` name."""
    (folder / "dir").mkdir()
    (folder / "dir.parquet").mkdir()
    (folder / "dir.csv").mkdir()
    (folder / "empty.npz").mkdir()
    (folder / "file").write_text("a file, not a folder\n")
    (folder / "notes.parquet").write_text("not a Parquet file\n")


def _tree(folder: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``folder``: whether a folder, size, modification time (ns)."""
    return {
        str(path.relative_to(folder)): (path.is_dir(), path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def _check_refused(
    arguments: list[str], names: Sequence[str], folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main(arguments)`` exits 2 with one line naming ``names``; ``folder`` is unchanged."""
    before = _tree(folder)
    capsys.readouterr()
    assert main(arguments) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    command = arguments[0]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"casbo-bench {command}: error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert _tree(folder) == before, "the command wrote or created something before refusing"


@pytest.mark.parametrize(
    ("arguments", "names"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_bad_command_line_is_refused_with_one_line_before_any_work(
    arguments: list[str],
    names: Sequence[str],
    trace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _scene(tmp_path)
    monkeypatch.chdir(tmp_path)
    places = {"tmp": str(tmp_path), "trace": str(trace), "subset": str(SUBSET)}
    _check_refused([word.format(**places) for word in arguments], names, tmp_path, capsys)


@pytest.mark.parametrize("command", ["run", "figures"])
def test_an_output_in_a_read_only_folder_is_refused(
    command: str,
    trace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder: nothing to refuse")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.chdir(tmp_path)
    try:
        if command == "run":
            arguments = run({"--out": f"{locked}/new/trace.parquet"})
            names = ["argument --out", "not writable"]
        else:
            arguments = ["figures", "--out-dir", str(locked / "figures"), str(trace)]
            names = ["argument --out-dir", "not writable"]
        _check_refused(arguments, names, tmp_path, capsys)
    finally:
        locked.chmod(stat.S_IRWXU)
