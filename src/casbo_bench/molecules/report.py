"""Tables, figures and 3D structures of the molecule benchmark, from its traces.

    python -m casbo_bench.molecules.report --tables-dir results/default/tables/molecules \\
        --figures-dir paper_figures/default/molecules \\
        --sdf results/default/molecules/best_molecules.sdf \\
        [--predictor models/property_predictor] [--device cpu] [--reference casbo] \\
        [--alpha 0.05] [--optimized-fraction 0.25] TRACE.parquet ...

The traces are those of ``casbo-bench run`` on the molecule tasks
(:mod:`casbo_bench.problems.molecule`); their ``detail_*`` columns hold each evaluated
molecule. Scores are maximized (the trace's loss is ``-score``). Outputs:

- ``molecule_scores.{csv,md}``, one row per task and method:

  - **best**: the best score found within the budget (``-best_so_far`` at the run's budget),
    median and interquartile range over seeds;
  - **final**: the mean score of fresh samples drawn from the tuned sampler after the budget
    (``-fresh_sample_loss``), median and IQR over seeds;
  - ``*_p_holm`` and ``*_verdict``: each method against the reference (CASBO) over seeds,
    paired Wilcoxon signed-rank (:func:`casbo_bench.analysis.stats.compare_to_reference`),
    Holm-adjusted over the table's rows; the best score is compared at the smaller budget of
    the two methods, so a capped method is not judged on evaluations it was not given;
  - the quality of the **optimized molecules**, the last ``optimized_fraction`` of each run's
    evaluations (what the method proposes once adapted), pooled over seeds: RDKit validity,
    validity in one fragment (the only molecules the tasks score), EDM's table validity,
    molecule stability and uniqueness (distinct valid SMILES over valid molecules); and
    ``best_valid``, ``best_connected``: the fraction of runs whose best molecule is valid,
    and in one piece. A higher score bought with broken molecules is visible here.

- ``molecule_best.{csv,md}``, one row per run: the best molecule's score, SMILES, validity
  and stability, the property predictor's alpha, gap and mu beside GFN2-xTB's dipole and
  gap of the same structure (an independent check of every predictor result).
- ``score_<task>.{pdf,png}``: best-so-far score against evaluations, median over seeds with
  the interquartile band, per method.
- ``best_molecules_<task>.{png,svg}``: RDKit depictions of each run's best molecule, a row
  per method, a column per seed.
- the SDF file: every run's best structure (heavy atoms as generated, implicit hydrogens),
  with task, method, seed, score and SMILES as properties.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from casbo_bench.analysis.figures import (
    PAPER_STYLE,
    SINGLE_COLUMN_IN,
    convergence_curves,
    method_palette,
    save_figure,
)
from casbo_bench.analysis.stats import compare_to_reference, holm_adjust, verdict
from casbo_bench.devices import DEVICE_NAMES, resolve_device
from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.data import ATOMIC_NUMBERS
from casbo_bench.molecules.problem import parse_xyz
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_molecule
from casbo_bench.molecules.scores import xtb_properties
from casbo_bench.schemas.trace import DETAIL_PREFIX, RUN_KEYS
from casbo_bench.traces import load_traces

logger = logging.getLogger(__name__)

DETAILS: tuple[str, ...] = (
    "score",
    "valid",
    "valid_table",
    "stable",
    "fragments",
    "smiles",
    "xyz",
)
"""The ``detail_*`` columns a molecule trace must have."""


CHECKED_PROPERTIES: tuple[str, ...] = (
    "predicted_alpha",
    "predicted_gap",
    "predicted_mu",
    "xtb_dipole",
    "xtb_gap",
)
"""The property columns of the best-molecule table (predictor beside GFN2-xTB)."""


SCORE_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "n_seeds",
    "budget",
    *(
        f"{measure}_{statistic}"
        for measure in ("best", "final")
        for statistic in ("median", "q25", "q75", "difference", "p_holm", "verdict")
    ),
    "optimized_valid",
    "optimized_connected",
    "optimized_valid_table",
    "optimized_stable",
    "optimized_unique",
    "best_valid",
    "best_connected",
    "checkpoint",
)
"""The columns of the ``molecule_scores`` table, in order."""

BEST_COLUMNS: tuple[str, ...] = (
    "task",
    "method",
    "seed",
    "d",
    "K",
    "best_score",
    "evaluation",
    "smiles",
    "valid",
    "fragments",
    "valid_table",
    "stable",
    *CHECKED_PROPERTIES,
)
"""The columns of the ``molecule_best`` table, in order."""


class ReportError(UserFacingError, ValueError):
    """The traces cannot make a molecule report (no molecule details, no reference)."""


def _detail(name: str) -> str:
    return f"{DETAIL_PREFIX}{name}"


def check_molecule_traces(traces: pd.DataFrame) -> None:
    """Raise :class:`ReportError` unless every row carries the molecule details."""
    missing = [_detail(name) for name in DETAILS if _detail(name) not in traces.columns]
    if missing:
        raise ReportError(
            f"the traces lack {missing}: they are not molecule-task traces (casbo-bench run "
            f"--problem mol-...)"
        )
    if traces[_detail("score")].isna().any():
        raise ReportError("some rows have no molecule score: mix of molecule and other traces")


def _score(loss: Any) -> float:
    """The score of a loss, ``-loss``, with a zero loss read as 0 rather than -0."""
    return 0.0 - float(loss)


def _runs(traces: pd.DataFrame) -> Any:
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    return ordered.groupby(list(RUN_KEYS), sort=True)


def run_summaries(traces: pd.DataFrame, optimized_fraction: float) -> pd.DataFrame:
    """One row per run: best and final score, and its optimized molecules' quality counts.

    Args:
        traces: validated molecule traces.
        optimized_fraction: the share of each run's last evaluations counted as its
            optimized molecules (at least one evaluation).
    """
    rows = []
    for keys, run in _runs(traces):
        budget = int(run["budget"].iloc[0])
        best_index = int(np.argmin(run["loss"].to_numpy()))
        tail = run.iloc[-max(1, round(optimized_fraction * len(run))) :]
        valid = tail[_detail("valid")].to_numpy(dtype=bool)
        connected = valid & (tail[_detail("fragments")].to_numpy() == 1)
        smiles = tail[_detail("smiles")].to_numpy(dtype=object)[valid]
        best = run.iloc[best_index]
        rows.append(
            {
                **dict(zip(RUN_KEYS, keys, strict=True)),
                "budget": budget,
                "best_score": _score(run["best_so_far"].iloc[-1]),
                "final_score": _score(run["fresh_sample_loss"].iloc[-1]),
                "best_evaluation": int(best["evaluation"]),
                "best_valid": bool(best[_detail("valid")]),
                "best_connected": bool(best[_detail("valid")]) and best[_detail("fragments")] == 1,
                "n_optimized": len(tail),
                "n_valid": int(valid.sum()),
                "n_connected": int(connected.sum()),
                "n_valid_table": int(tail[_detail("valid_table")].sum()),
                "n_stable": int(tail[_detail("stable")].sum()),
                "unique_smiles": frozenset(str(item) for item in smiles),
                "checkpoint": str(best.get(_detail("checkpoint"), ""))[:12],
            }
        )
    return pd.DataFrame(rows)


def _score_at(traces: pd.DataFrame, method: str, task: str, evaluations: int) -> pd.Series:
    """Best score of each seed of ``method`` on ``task`` within ``evaluations``."""
    own = traces[(traces["method"] == method) & (traces["problem"] == task)]
    within = own[own["evaluation"] <= evaluations]
    return 0.0 - within.groupby("seed")["loss"].min()


def score_table(
    traces: pd.DataFrame, reference: str = "casbo", alpha: float = 0.05, optimized: float = 0.25
) -> pd.DataFrame:
    """The ``molecule_scores`` table (module docstring), one row per task and method.

    Raises:
        ReportError: ``reference`` ran on none of the tasks.
    """
    check_molecule_traces(traces)
    runs = run_summaries(traces, optimized)
    if reference not in set(runs["method"]):
        raise ReportError(
            f"reference method {reference!r} is not in the traces (methods: "
            f"{sorted(set(runs['method']))}); pass --reference"
        )
    rows = []
    for (task, method), group in runs.groupby(["problem", "method"], sort=True):
        task, method = str(task), str(method)
        own = group.set_index("seed")
        base = runs[(runs["problem"] == task) & (runs["method"] == reference)].set_index("seed")
        row: dict[str, Any] = {"task": task, "method": method, "n_seeds": len(own)}
        row["budget"] = int(own["budget"].min())
        for measure in ("best", "final"):
            values = own[f"{measure}_score"]
            row[f"{measure}_median"] = float(values.median())
            row[f"{measure}_q25"] = float(values.quantile(0.25))
            row[f"{measure}_q75"] = float(values.quantile(0.75))
        comparable = method != reference and not base.empty
        for measure in ("best", "final"):
            row[f"{measure}_p"], row[f"{measure}_difference"] = np.nan, np.nan
            row[f"{measure}_win_fraction"] = np.nan
            if not comparable:
                continue
            if measure == "best":
                common = int(min(own["budget"].min(), base["budget"].min()))
                mine = _score_at(traces, method, task, common)
                theirs = _score_at(traces, reference, task, common)
            else:
                mine, theirs = own["final_score"], base["final_score"]
            # Losses are -score: the tests' "lower is better" reads as "higher score".
            comparison = compare_to_reference(-mine, mine.index, -theirs, theirs.index)
            row[f"{measure}_p"] = comparison.p_value
            row[f"{measure}_difference"] = -comparison.median_difference
            row[f"{measure}_win_fraction"] = comparison.win_fraction
        n_optimized = int(own["n_optimized"].sum())
        n_valid = int(own["n_valid"].sum())
        unique = frozenset().union(*own["unique_smiles"])
        row.update(
            optimized_valid=own["n_valid"].sum() / n_optimized,
            optimized_connected=own["n_connected"].sum() / n_optimized,
            optimized_valid_table=own["n_valid_table"].sum() / n_optimized,
            optimized_stable=own["n_stable"].sum() / n_optimized,
            optimized_unique=len(unique) / n_valid if n_valid else np.nan,
            best_valid=float(own["best_valid"].mean()),
            best_connected=float(own["best_connected"].mean()),
            checkpoint=",".join(sorted(set(own["checkpoint"]))),
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    for measure in ("best", "final"):
        tested = table[f"{measure}_p"].notna()
        adjusted = np.full(len(table), np.nan)
        if tested.any():
            adjusted[tested.to_numpy()] = holm_adjust(table.loc[tested, f"{measure}_p"])
        table[f"{measure}_p_holm"] = adjusted
        table[f"{measure}_verdict"] = [
            "reference"
            if method == reference
            else verdict(p, -difference, win, alpha)
            if np.isfinite(p)
            else "not tested"
            for method, p, difference, win in zip(
                table["method"],
                adjusted,
                table[f"{measure}_difference"],
                table[f"{measure}_win_fraction"],
                strict=True,
            )
        ]
    if table["checkpoint"].str.contains(",").any() or table["checkpoint"].nunique() > 1:
        logger.warning(
            "the runs used different EDM checkpoints (%s); compare them with care",
            ", ".join(sorted(set(table["checkpoint"]))),
        )
    return table[list(SCORE_COLUMNS)]


def best_molecules(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its best evaluation's molecule (details and the xyz text)."""
    rows = []
    for keys, run in _runs(traces):
        best = run.iloc[int(np.argmin(run["loss"].to_numpy()))]
        rows.append(
            {
                **dict(zip(RUN_KEYS, keys, strict=True)),
                "task": keys[1],
                "best_score": _score(best["loss"]),
                "evaluation": int(best["evaluation"]),
                "smiles": best[_detail("smiles")] if best[_detail("valid")] else None,
                "valid": bool(best[_detail("valid")]),
                "fragments": int(best[_detail("fragments")]),
                "valid_table": bool(best[_detail("valid_table")]),
                "stable": bool(best[_detail("stable")]),
                "xyz": str(best[_detail("xyz")]),
            }
        )
    return pd.DataFrame(rows)


def rebuild_best(best: pd.DataFrame) -> list[RebuiltMolecule]:
    """The rebuilt molecule of each row of :func:`best_molecules`."""
    return [rebuild_molecule(*parse_xyz(text)) for text in best["xyz"]]


def check_properties(
    best: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], predictor: Any | None
) -> pd.DataFrame:
    """The best molecules with predicted alpha, gap, mu and GFN2-xTB dipole and gap beside.

    Args:
        best: :func:`best_molecules`' rows.
        rebuilt: their rebuilt molecules.
        predictor: a :class:`~casbo_bench.molecules.predictor.PropertyPredictor`, or None
            (predicted columns NaN).
    """
    table = best.drop(columns=["xyz"]).copy()
    structures = [parse_xyz(text) for text in best["xyz"]]
    names = ("alpha", "gap", "mu")
    predicted = np.full((len(best), len(names)), np.nan)
    if predictor is not None and structures:
        width = max(len(types) for _, types in structures)
        positions = np.zeros((len(best), width, 3))
        types = np.full((len(best), width), -1, dtype=np.int64)
        for row, (xyz, kinds) in enumerate(structures):
            positions[row, : len(kinds)], types[row, : len(kinds)] = xyz, kinds
        values = predictor.predict(positions, types)
        for column, name in enumerate(names):
            if name in predictor.properties:
                predicted[:, column] = values[:, predictor.properties.index(name)]
    for column, name in enumerate(names):
        table[f"predicted_{name}"] = np.where(table["valid"], predicted[:, column], np.nan)
    results = [xtb_properties(molecule) for molecule in rebuilt]
    table["xtb_dipole"] = [result.dipole_debye for result in results]
    table["xtb_gap"] = [result.gap_ev for result in results]
    return table[list(BEST_COLUMNS)]


def _markdown(frame: pd.DataFrame, heading: str, caption: str) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float | np.floating):
            return "" if not np.isfinite(value) else f"{value:.4g}"
        return "" if value is None else str(value)

    lines = [f"# {heading}", "", caption, ""]
    lines.append("| " + " | ".join(frame.columns) + " |")
    lines.append("|" + "---|" * len(frame.columns))
    lines += [
        "| " + " | ".join(cell(value) for value in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> Path:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


SCORE_CAPTION = (
    "Molecule tasks: scores are maximized. best: the best score within the budget; final: "
    "the mean score of fresh samples of the tuned sampler after the budget; median and "
    "interquartile range (q25, q75) over seeds. p_holm, verdict: each method against the "
    "reference over seeds (paired Wilcoxon signed-rank, Holm-adjusted over the rows; the "
    "best score compared at the smaller budget of the two; difference = method - reference). "
    "optimized_*: the last {fraction:.0%} of each run's evaluations, pooled over seeds: RDKit "
    "validity, validity in one fragment (only such molecules are scored; others get the "
    "penalty), EDM's table validity, molecule stability (heavy atoms), uniqueness of the "
    "valid SMILES; best_valid, best_connected: share of runs whose best molecule is valid, "
    "and in one fragment."
)

BEST_CAPTION = (
    "Each run's best molecule: its score, SMILES, validity and stability, the property "
    "predictor's alpha (bohr^3), gap (eV) and mu (D) beside GFN2-xTB's dipole (D) and "
    "HOMO-LUMO gap (eV) of the same structure (hydrogens added and relaxed; xTB gaps run "
    "about 1.9 eV below QM9's B3LYP values)."
)


def write_tables(
    scores: pd.DataFrame, best: pd.DataFrame, out_dir: Path, optimized: float
) -> list[Path]:
    """``molecule_scores`` and ``molecule_best`` as CSV (full precision) and Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame, heading, caption in (
        (
            "molecule_scores",
            scores,
            "Molecule benchmark: best and final score per task and method",
            SCORE_CAPTION.format(fraction=optimized),
        ),
        ("molecule_best", best, "Molecule benchmark: the best molecule of each run", BEST_CAPTION),
    ):
        written.append(_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False)))
        written.append(_write_text(out_dir / f"{name}.md", _markdown(frame, heading, caption)))
    return written


def score_figure(traces: pd.DataFrame, task: str) -> Figure:
    """Best-so-far score against evaluations on ``task``: median and IQR band per method."""
    own = traces[traces["problem"] == task]
    palette = method_palette(own["method"].unique())
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(SINGLE_COLUMN_IN, 2.6), layout="constrained")
        ax = figure.subplots()
        for method, colour in palette.items():
            runs = own[own["method"] == method]
            spent = int(runs.groupby(list(RUN_KEYS))["evaluation"].max().min())
            grid = np.arange(1, spent + 1)
            scores = -convergence_curves(runs, grid)
            low, median, high = np.quantile(scores, [0.25, 0.5, 0.75], axis=0)
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, linewidth=0)
            ax.plot(grid, median, color=colour, label=method)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best-so-far score")
        ax.set_title(f"{task}: median and IQR over seeds")
        ax.legend(frameon=False, ncols=2)
    return figure


def molecule_grid(
    best: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], task: str, panel: int = 220
) -> tuple[bytes, str]:
    """PNG bytes and SVG text of ``task``'s best molecules: a row per method, a column per seed.

    An invalid structure is drawn as its atoms without bonds, labelled "invalid"; one in
    several pieces is labelled with its number of fragments.
    """
    position = {
        (str(method), int(seed)): index
        for index, (method, seed, name) in enumerate(
            zip(best["method"], best["seed"], best["task"], strict=True)
        )
        if name == task
    }
    methods = list(method_palette(method for method, _ in position))
    seeds = sorted({seed for _, seed in position})
    mols, legends = [], []
    for method in methods:
        for seed in seeds:
            if (method, seed) not in position:
                mols.append(Chem.Mol())
                legends.append(f"{method} s{seed}: not run")
                continue
            index = position[method, seed]
            molecule = rebuilt[index]
            score = float(best["best_score"].iloc[index])
            if molecule.ok and molecule.mol is not None:
                mols.append(Chem.Mol(molecule.mol))
            else:
                mols.append(_atoms_only(str(best["xyz"].iloc[index])))
            status = (
                " (invalid)"
                if not molecule.ok
                else f" ({molecule.n_fragments} fragments)"
                if molecule.n_fragments > 1
                else ""
            )
            legends.append(f"{method} s{seed}: {score:.3g}{status}")
    for mol in mols:
        mol.RemoveAllConformers()
    columns = max(1, len(seeds))
    height = panel * max(1, -(-len(mols) // columns))
    drawings: list[Any] = [
        rdMolDraw2D.MolDraw2DCairo(columns * panel, height, panel, panel),
        rdMolDraw2D.MolDraw2DSVG(columns * panel, height, panel, panel),
    ]
    for drawer in drawings:
        drawer.drawOptions().legendFontSize = 14
        drawer.DrawMolecules(mols, legends=legends)
        drawer.FinishDrawing()
    return drawings[0].GetDrawingText(), drawings[1].GetDrawingText()


def _atoms_only(xyz: str) -> Chem.Mol:
    """The atoms of a structure RDKit could not sanitize, without bonds or hydrogens."""
    _, kinds = parse_xyz(xyz)
    editable = Chem.RWMol()
    for kind in kinds:
        atom = Chem.Atom(ATOMIC_NUMBERS[int(kind)])
        atom.SetNoImplicit(True)
        editable.AddAtom(atom)
    return editable.GetMol()


def write_sdf(
    best: pd.DataFrame, checked: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], path: Path
) -> tuple[Path, int]:
    """Every valid best structure as one SDF record; returns the path and the count written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    written = 0
    try:
        writer = Chem.SDWriter(temporary)
        for (_, row), (_, properties), molecule in zip(
            best.iterrows(), checked.iterrows(), rebuilt, strict=True
        ):
            if not molecule.ok or molecule.mol is None:
                continue
            mol = Chem.Mol(molecule.mol)
            mol.SetProp("_Name", f"{row['task']} {row['method']} seed {row['seed']}")
            for key in ("task", "method", "seed", "best_score", "smiles", "evaluation"):
                mol.SetProp(key, str(row[key]))
            for key in (
                "predicted_alpha",
                "predicted_gap",
                "predicted_mu",
                "xtb_dipole",
                "xtb_gap",
            ):
                mol.SetProp(key, f"{properties[key]:.6g}")
            writer.write(mol)
            written += 1
        writer.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path, written


def make_report(
    traces: pd.DataFrame,
    tables_dir: Path,
    figures_dir: Path,
    sdf_path: Path,
    predictor: Any | None = None,
    reference: str = "casbo",
    alpha: float = 0.05,
    optimized: float = 0.25,
) -> list[Path]:
    """Every output of the module docstring; returns the files written."""
    scores = score_table(traces, reference, alpha, optimized)
    best = best_molecules(traces)
    rebuilt = rebuild_best(best)
    checked = check_properties(best, rebuilt, predictor)
    written = write_tables(scores, checked, tables_dir, optimized)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for task in sorted(traces["problem"].unique()):
        written += save_figure(score_figure(traces, task), figures_dir, f"score_{task}")
        png, svg = molecule_grid(best, rebuilt, task)
        (figures_dir / f"best_molecules_{task}.png").write_bytes(png)
        (figures_dir / f"best_molecules_{task}.svg").write_text(svg, encoding="utf-8")
        written += [figures_dir / f"best_molecules_{task}.{ext}" for ext in ("png", "svg")]
    sdf, count = write_sdf(best, checked, rebuilt, sdf_path)
    logger.info("wrote %d of %d best structures to %s", count, len(best), sdf)
    return [*written, sdf]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m casbo_bench.molecules.report",
        description="Tables, figures and SDF of the molecule benchmark from its traces.",
    )
    parser.add_argument("--tables-dir", required=True, type=Path)
    parser.add_argument("--figures-dir", required=True, type=Path)
    parser.add_argument("--sdf", required=True, type=Path, help="SDF file of the best structures")
    parser.add_argument(
        "--predictor", type=Path, default=None, help="property predictor folder (optional)"
    )
    parser.add_argument(
        "--device",
        choices=DEVICE_NAMES,
        default="cpu",
        help="where the property predictor runs: auto (CUDA when available), cpu or cuda "
        "(default cpu)",
    )
    parser.add_argument("--reference", default="casbo", help="method compared against")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level")
    parser.add_argument(
        "--optimized-fraction",
        type=float,
        default=0.25,
        help="share of each run's last evaluations counted as its optimized molecules",
    )
    parser.add_argument("traces", nargs="+", type=Path, metavar="TRACE.parquet")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and write the report."""
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("casbo_bench")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    if not 0 < args.optimized_fraction <= 1 or not 0 < args.alpha < 1:
        raise SystemExit("need 0 < --optimized-fraction <= 1 and 0 < --alpha < 1")
    predictor = None
    try:
        if args.predictor is not None:
            from casbo_bench.molecules.predictor import load_predictor

            device = resolve_device(args.device, "the property predictor", ReportError)
            predictor = load_predictor(args.predictor, device=device).model
        written = make_report(
            load_traces(args.traces),
            args.tables_dir,
            args.figures_dir,
            args.sdf,
            predictor,
            args.reference,
            args.alpha,
            args.optimized_fraction,
        )
    except ReportError as error:
        print(f"report: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logger.info("wrote %d files", len(written))


if __name__ == "__main__":
    main()
