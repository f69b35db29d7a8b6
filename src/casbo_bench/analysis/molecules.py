"""Tables, figures and 3D structures of the molecule benchmark, from its traces.

``casbo-bench molecule-report`` (:mod:`casbo_bench.cli.molecule_report`) runs
:func:`make_report`. The traces are those of ``casbo-bench run`` on the molecule tasks
(:mod:`casbo_bench.molecules.tasks`); their ``detail_*`` columns hold each evaluated
molecule. Scores are maximized (the trace's loss is ``-score``). The tables' columns and
checks are :mod:`casbo_bench.schemas.molecules`; the figures are drawn by
:mod:`casbo_bench.analysis.molecule_figures`. Like the rest of the analysis, this module
imports no model: a property predictor, when given, is passed in (:class:`PropertyModel`).
Outputs:

- ``molecule_scores.{csv,md,html}``, one row per task and method:

  - **best**: the best score found within the budget (``-best_so_far`` at the run's budget),
    median and interquartile range over seeds;
  - **final**: the mean score of fresh samples drawn from the tuned sampler after the budget
    (``-fresh_sample_loss``), median and IQR over seeds;
  - ``*_p_holm`` and ``*_verdict``: each method against the reference (CASBO) over seeds,
    paired Wilcoxon signed-rank (:func:`.stats.compare_to_reference`),
    Holm-adjusted over the table's rows; the best score is compared at the smaller budget of
    the two methods, so a capped method is not judged on evaluations it was not given;
  - the quality of the **optimized molecules**, the last ``optimized_fraction`` of each run's
    evaluations (what the method proposes once adapted), pooled over seeds: RDKit validity,
    validity in one fragment (the only molecules the tasks score), EDM's table validity,
    molecule stability and uniqueness (distinct valid SMILES over valid molecules); and
    ``best_valid``, ``best_connected``: the fraction of runs whose best molecule is valid,
    and in one piece. A higher score bought with broken molecules is visible here.

  Only complete runs are reported (a failed run is left out like a missing seed), and a
  failed evaluation, which produced no molecule, counts as no optimized molecule and is
  never a run's best.

- ``molecule_best.{csv,md,html}``, one row per run: the best molecule's score, SMILES, validity
  and stability, the property predictor's alpha, gap and mu beside GFN2-xTB's dipole and
  gap of the same structure (an independent check of every predictor result).
- ``score_<task>.{pdf,png}``: best-so-far score (for a target task the distance to the
  target, log axis) against black-box calls and against denoiser evaluations, median over
  seeds with the bootstrap band of the median, per method.
- ``best_molecules_<task>.png``: RDKit depictions of each run's best molecule, a row
  per method, a column per seed.
- the SDF file: every run's best structure (heavy atoms as generated, implicit hydrogens),
  with task, method, seed, score and SMILES as properties.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rdkit import Chem

from casbo_bench.analysis.figures import save_figure
from casbo_bench.analysis.molecule_figures import molecule_grid, score_figure
from casbo_bench.analysis.stats import compare_to_reference, holm_adjust, verdict
from casbo_bench.analysis.styles import method_styles
from casbo_bench.documents import html_document, markdown_document
from casbo_bench.errors import UserFacingError
from casbo_bench.files import write_atomically, write_text_atomically
from casbo_bench.molecules.data import parse_xyz
from casbo_bench.molecules.rebuild import RebuiltMolecule, rebuild_molecule
from casbo_bench.molecules.scores import xtb_properties
from casbo_bench.names import MOLECULE_GRID_PREFIX
from casbo_bench.schemas.molecules import (
    BEST_COLUMNS,
    CHECKED_PROPERTIES,
    MEASURES,
    NOT_TESTED,
    REFERENCE_VERDICT,
    SCORE_COLUMNS,
    validate_molecule_table,
)
from casbo_bench.schemas.trace import COST_COLUMNS, DETAIL_PREFIX, RUN_KEYS, complete_runs

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


class ReportError(UserFacingError, ValueError):
    """The traces cannot make a molecule report (no molecule details, no reference)."""


class PropertyModel(Protocol):
    """What the report needs of a property predictor
    (:class:`casbo_bench.molecules.property_model.PropertyPredictor` is one)."""

    properties: tuple[str, ...]

    def predict(self, positions: Any, atom_types: Any) -> NDArray[Any]:
        """A ``B x P`` array of properties of ``B x N x 3`` positions and ``B x N`` types."""
        ...


def _detail(name: str) -> str:
    return f"{DETAIL_PREFIX}{name}"


def check_molecule_traces(traces: pd.DataFrame) -> None:
    """Raise :class:`ReportError` unless every row carries the molecule details and all
    rows come from one EDM checkpoint (methods run on different models are not compared)."""
    missing = [_detail(name) for name in DETAILS if _detail(name) not in traces.columns]
    missing += [name for name in COST_COLUMNS if name not in traces.columns]
    if missing:
        raise ReportError(
            f"the traces lack {missing}: they are not molecule-task traces (casbo-bench run "
            f"--problem mol-...)"
        )
    if traces.loc[~traces["failed"], _detail("score")].isna().any():
        raise ReportError("some rows have no molecule score: mix of molecule and other traces")
    checkpoints = sorted(set(traces[_detail("checkpoint")].dropna()))
    if len(checkpoints) > 1:
        raise ReportError(
            f"the traces come from {len(checkpoints)} EDM checkpoints (sampling.pt sha256 "
            f"{', '.join(digest[:12] for digest in checkpoints)}); report the runs of one "
            "model: rerun the older ones (the workflow does when the model changes)"
        )


def _score(loss: Any) -> float:
    """The score of a loss, ``-loss``, with a zero loss read as 0 rather than -0."""
    return 0.0 - float(loss)


def _runs(traces: pd.DataFrame) -> Any:
    """The complete runs of ``traces``, grouped by run, evaluations in order."""
    ordered = complete_runs(traces).sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    return ordered.groupby(list(RUN_KEYS), sort=True)


def _best_row(run: pd.DataFrame) -> pd.Series:
    """The run's evaluation of lowest loss among those that did not fail (the first of
    equals)."""
    return run.iloc[int(np.argmin(np.where(run["failed"], np.inf, run["loss"])))]


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
        tail = run.iloc[-max(1, round(optimized_fraction * len(run))) :]
        tail = tail[~tail["failed"]]
        valid = tail[_detail("valid")].to_numpy(dtype=bool)
        connected = valid & (tail[_detail("fragments")].to_numpy() == 1)
        smiles = tail[_detail("smiles")].to_numpy(dtype=object)[valid]
        best = _best_row(run)
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
                "duplicate_share": duplicate_share(list(run[_detail("smiles")])),
                "checkpoint": str(best.get(_detail("checkpoint"), ""))[:12],
            }
        )
    return pd.DataFrame(rows)


COST_AXES: dict[str, str] = {"best": "calls", "compute": "denoiser_evals"}
"""The measures read at an equal cost -> the trace's cost column they are read at."""


def _score_at(traces: pd.DataFrame, method: str, task: str, column: str, cost: int) -> pd.Series:
    """Best score of each seed of ``method`` on ``task`` over its completed samples with
    cumulative ``column`` (``calls``, ``denoiser_evals``) at most ``cost``; a seed with none
    (a steering sweep costing more) is left out."""
    own = traces[(traces["method"] == method) & (traces["problem"] == task)]
    within = own[(own[column] <= cost) & ~own["failed"]]
    return 0.0 - within.groupby("seed")["loss"].min()


def _spent(traces: pd.DataFrame, method: str, task: str, column: str) -> int:
    """The least ``column`` any run of ``method`` on ``task`` spent in all."""
    own = traces[(traces["method"] == method) & (traces["problem"] == task)]
    return int(own.groupby("seed")[column].max().min())


def duplicate_share(smiles: Sequence[Any]) -> float:
    """The share of valid molecules whose SMILES an earlier one of the run had (every call
    counts, repeats included: the score depends on 3D geometry, so a repeat is not free).

    >>> duplicate_share(["C", "CC", "C", None])
    0.3333333333333333
    """
    valid = [str(item) for item in smiles if isinstance(item, str)]
    return (len(valid) - len(set(valid))) / len(valid) if valid else 0.0


def score_table(
    traces: pd.DataFrame,
    reference: str = "casbo",
    alpha: float = 0.05,
    optimized: float = 0.25,
    budgets: Mapping[str, int | None] | None = None,
) -> pd.DataFrame:
    """The ``molecule_scores`` table (module docstring), one row per task and method.

    ``budgets``: ``calls`` and ``denoiser_evals``, the config's budgets; a method's row reads
    its scores at the smaller of each and what its runs spent (default: what they spent).

    Raises:
        ReportError: ``reference`` ran on none of the tasks.
    """
    check_molecule_traces(traces)
    budgets = dict(budgets or {})
    traces = complete_runs(traces)
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
        for name, column in (("calls", "calls"), ("denoiser_evals", "denoiser_evals")):
            spent = _spent(traces, method, task, column)
            limit = budgets.get(name)
            row[name] = spent if limit is None else min(int(limit), spent)
        at_cost = {
            measure: _score_at(traces, method, task, column, row[column])
            for measure, column in COST_AXES.items()
        }
        for measure in MEASURES:
            values = at_cost[measure] if measure in at_cost else own[f"{measure}_score"]
            row[f"{measure}_median"] = float(values.median())
            row[f"{measure}_q25"] = float(values.quantile(0.25))
            row[f"{measure}_q75"] = float(values.quantile(0.75))
        comparable = method != reference and not base.empty
        for measure in MEASURES:
            row[f"{measure}_p"], row[f"{measure}_difference"] = np.nan, np.nan
            row[f"{measure}_win_fraction"] = np.nan
            if not comparable:
                continue
            if measure in COST_AXES:
                column = COST_AXES[measure]
                common = min(row[column], _spent(traces, reference, task, column))
                if budgets.get(column) is not None:
                    common = min(common, int(budgets[column]))  # type: ignore[arg-type]
                mine = _score_at(traces, method, task, column, common)
                theirs = _score_at(traces, reference, task, column, common)
                if mine.empty or theirs.empty:
                    continue
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
            duplicate_share=float(own["duplicate_share"].mean()),
            checkpoint=",".join(sorted(set(own["checkpoint"]))),
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    for measure in MEASURES:
        tested = table[f"{measure}_p"].notna()
        adjusted = np.full(len(table), np.nan)
        if tested.any():
            adjusted[tested.to_numpy()] = holm_adjust(table.loc[tested, f"{measure}_p"])
        table[f"{measure}_p_holm"] = adjusted
        table[f"{measure}_verdict"] = [
            REFERENCE_VERDICT
            if method == reference
            else verdict(p, -difference, win, alpha)
            if np.isfinite(p)
            else NOT_TESTED
            for method, p, difference, win in zip(
                table["method"],
                adjusted,
                table[f"{measure}_difference"],
                table[f"{measure}_win_fraction"],
                strict=True,
            )
        ]
    return table[list(SCORE_COLUMNS)]


def best_molecules(traces: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its best evaluation's molecule (details and the xyz text)."""
    rows = []
    for keys, run in _runs(traces):
        best = _best_row(run)
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
    best: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], predictor: PropertyModel | None
) -> pd.DataFrame:
    """The best molecules with predicted alpha, gap, mu and GFN2-xTB dipole and gap beside.

    Args:
        best: :func:`best_molecules`' rows.
        rebuilt: their rebuilt molecules.
        predictor: the property predictor, or None (predicted columns NaN).
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


SCORE_CAPTION = (
    "Molecule tasks: scores are maximized. Two cost axes: calls (black-box score calls, the "
    "scores of intermediate x0_hat of the steering methods included) and denoiser_evals "
    "(network forward passes); each row's columns calls and denoiser_evals are the equal "
    "costs it is read at (the config's budgets, or less where the method's runs spent less). "
    "best: the best score of a completed molecule within equal calls; compute: within equal "
    "denoiser evaluations (empty where no seed completed one: a steering sweep costs more); "
    "duplicate_share: the share of each run's valid molecules repeating an earlier SMILES, "
    "mean over seeds (every call counts, repeats included); final: "
    "the mean score of fresh samples of the tuned sampler after the budget; median and "
    "interquartile range (q25, q75) over seeds. p_holm, verdict: each method against the "
    "reference over seeds (paired Wilcoxon signed-rank, Holm-adjusted over the rows; the "
    "best and compute scores compared at the smaller cost of the two; difference = method - "
    "reference). "
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
    """``molecule_scores`` and ``molecule_best`` as CSV (full precision), Markdown and HTML,
    each validated first (:mod:`casbo_bench.schemas.molecules`)."""
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
        validate_molecule_table(name, frame)
        document = markdown_document(frame, heading, caption, number_format=".4g", missing="")
        written.append(write_text_atomically(out_dir / f"{name}.csv", frame.to_csv(index=False)))
        written.append(write_text_atomically(out_dir / f"{name}.md", document))
        written.append(write_text_atomically(out_dir / f"{name}.html", html_document(document)))
    return written


def write_sdf(
    best: pd.DataFrame, checked: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], path: Path
) -> tuple[Path, int]:
    """Every valid best structure as one SDF record; returns the path and the count written."""
    text = io.StringIO()
    writer = Chem.SDWriter(text)
    written = 0
    for (_, row), (_, properties), molecule in zip(
        best.iterrows(), checked.iterrows(), rebuilt, strict=True
    ):
        if not molecule.ok or molecule.mol is None:
            continue
        mol = Chem.Mol(molecule.mol)
        mol.SetProp("_Name", f"{row['task']} {row['method']} seed {row['seed']}")
        for key in ("task", "method", "seed", "best_score", "smiles", "evaluation"):
            mol.SetProp(key, str(row[key]))
        for key in CHECKED_PROPERTIES:
            mol.SetProp(key, f"{properties[key]:.6g}")
        writer.write(mol)
        written += 1
    writer.close()
    return write_text_atomically(path, text.getvalue()), written


def _write_bytes(path: Path, data: bytes) -> Path:
    return write_atomically(path, lambda stream: stream.write(data))


def write_score_figures(
    traces: pd.DataFrame,
    figures_dir: Path,
    band_seed: int = 0,
    confidence: float = 0.95,
    title_prefix: str = "",
) -> list[Path]:
    """Per task of the complete runs ``traces``, the score figure (PDF and PNG) in
    ``figures_dir`` (:func:`.molecule_figures.score_figure`, with ``band_seed``,
    ``confidence`` and ``title_prefix``); returns the files written."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    styles = method_styles(traces["method"].unique())
    written: list[Path] = []
    for task in sorted(traces["problem"].unique()):
        figure = score_figure(traces, task, styles, band_seed, confidence, title_prefix)
        written += save_figure(figure, figures_dir, f"score_{task}")
    return written


def write_grids(
    best: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], figures_dir: Path
) -> list[Path]:
    """Per task, the grid of best molecules (PNG, :func:`.molecule_figures.molecule_grid`) in
    ``figures_dir``; returns the files written.

    Args:
        best: per complete run its keys, ``best_score`` and ``xyz`` (:func:`best_molecules`;
            a published archive keeps these columns: :mod:`casbo_bench.publish`).
        rebuilt: the rebuilt molecule of each row of ``best`` (:func:`rebuild_best`).
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task in sorted(best["problem"].unique()):
        grid = molecule_grid(best, rebuilt, str(task))
        written.append(_write_bytes(figures_dir / f"{MOLECULE_GRID_PREFIX}{task}.png", grid))
    return written


def make_report(
    traces: pd.DataFrame,
    tables_dir: Path,
    figures_dir: Path,
    sdf_path: Path,
    predictor: PropertyModel | None = None,
    reference: str = "casbo",
    alpha: float = 0.05,
    optimized: float = 0.25,
    band_seed: int = 0,
    confidence: float = 0.95,
    title_prefix: str = "",
    budgets: Mapping[str, int | None] | None = None,
) -> list[Path]:
    """Every output of the module docstring; returns the files written. ``band_seed``,
    ``confidence`` and ``title_prefix`` go to :func:`.molecule_figures.score_figure`;
    ``budgets`` to :func:`score_table`."""
    traces = complete_runs(traces)
    scores = score_table(traces, reference, alpha, optimized, budgets)
    best = best_molecules(traces)
    rebuilt = rebuild_best(best)
    checked = check_properties(best, rebuilt, predictor)
    written = write_tables(scores, checked, tables_dir, optimized)
    written += write_score_figures(traces, figures_dir, band_seed, confidence, title_prefix)
    written += write_grids(best, rebuilt, figures_dir)
    sdf, count = write_sdf(best, checked, rebuilt, sdf_path)
    logger.info("wrote %d of %d best structures to %s", count, len(best), sdf)
    return [*written, sdf]
