"""Figures of the molecule benchmark: score curves and RDKit depictions of the best molecules.

- :func:`score_figure`: best-so-far score on one task against the two cost axes, black-box
  calls (left) and denoiser evaluations (right; docs/method.md section 7b), per method the
  median over seeds with the bootstrap band of the median, in the method's style, described
  and placed as in every figure (:mod:`casbo_bench.analysis.styles`; scores are maximized:
  ``-best_so_far``). A target task (kind ``predictor``: score ``-|p - target|``) draws the
  distance to the target, ``best_so_far``, on a log axis instead, so that errors of 0.01 and
  0.1 part where a linear score axis shows both as 0;
- :func:`molecule_grid`: each run's best molecule drawn by RDKit, a row per method, a column
  per seed (methods in the figures' order), as PNG bytes.

Written by :func:`casbo_bench.analysis.molecules.write_score_figures` and
:func:`~casbo_bench.analysis.molecules.write_grids`, for the workflow's molecule report
(:func:`~casbo_bench.analysis.molecules.make_report`); a published archive draws the grids
again (:func:`casbo_bench.publish.regenerate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from casbo_bench.analysis.figures import (
    PAPER_STYLE,
    TWO_COLUMN_IN,
    cell_title,
    found_curves,
)
from casbo_bench.analysis.stats import bootstrap_median_band
from casbo_bench.analysis.styles import (
    Style,
    band_description,
    figure_legend,
    method_styles,
)
from casbo_bench.molecules.atoms import ATOMIC_NUMBERS
from casbo_bench.molecules.data import parse_xyz
from casbo_bench.molecules.rebuild import RebuiltMolecule
from casbo_bench.molecules.tasks import get_task
from casbo_bench.schemas.trace import RUN_KEYS
from casbo_bench.seeding import derive_rng

SCORE_GRID_POINTS = 200
"""Costs a score curve is drawn at (log-spaced, on a log axis): bounds the bootstrap's
memory at long budgets."""

COST_AXES: dict[str, str] = {"calls": "black-box calls", "denoiser_evals": "denoiser evaluations"}
"""The trace's cost columns the score curves are drawn against, and their axis labels."""


def cost_curves(runs: pd.DataFrame, column: str, grid: NDArray[np.int64]) -> NDArray[np.float64]:
    """Best-so-far loss of every run at the costs of ``grid``: the least loss of its completed
    samples whose cumulative ``column`` is at most the cost (inf before the first).

    Returns:
        A ``n_runs x m`` array, runs in the order of their keys.
    """
    rows = []
    for _, run in runs.sort_values([*RUN_KEYS, "evaluation"]).groupby(list(RUN_KEYS), sort=True):
        costs = run[column].to_numpy(dtype=np.int64)
        best = run["best_so_far"].to_numpy(dtype=np.float64)
        index = np.searchsorted(costs, grid, side="right") - 1  # last row within each cost
        rows.append(np.where(index >= 0, best[np.maximum(index, 0)], np.inf))
    return np.vstack(rows)


def score_figure(
    traces: pd.DataFrame,
    task: str,
    styles: Mapping[str, Style] | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    title_prefix: str = "",
) -> Figure:
    """Best-so-far score on ``task`` against black-box calls and against denoiser
    evaluations (:data:`COST_AXES`, one panel each): per method the median over seeds and its
    percentile-bootstrap band (each band's generator derived from ``seed``, the task, the
    method and the axis), on at most :data:`SCORE_GRID_POINTS` evenly spaced costs up to the
    least any of its runs spent.

    Args:
        traces: validated traces of complete runs.
        task: the molecule task drawn.
        styles: method -> style (default: :func:`.styles.method_styles` of the traces'
            methods, every task's included, so a method looks the same on every task).
        seed: the seed of the bands.
        confidence: the level of the bands.
        title_prefix: the start of the title (the config's name).
    """
    own = traces[traces["problem"] == task]
    distance = get_task(task).kind == "predictor"
    styles = styles if styles is not None else method_styles(traces["method"].unique())
    present = set(own["method"])
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(TWO_COLUMN_IN, 3.0), layout="constrained")
        axes = figure.subplots(1, len(COST_AXES), sharey=True)
        handles = []
        for method, style in styles.items():
            if method not in present:
                continue
            runs = own[own["method"] == method]
            for ax, column in zip(axes, COST_AXES, strict=True):
                spent = int(runs.groupby(list(RUN_KEYS))[column].max().min())
                grid = np.unique(np.geomspace(1, spent, SCORE_GRID_POINTS).round().astype(np.int64))
                curves, grid = found_curves(cost_curves(runs, column, grid), grid)
                if not grid.size:
                    continue
                scores = curves if distance else -curves
                rng = derive_rng("band", seed, task, method, column)
                low, high = bootstrap_median_band(scores, rng, confidence)
                ax.fill_between(grid, low, high, color=style.colour, alpha=0.2, linewidth=0)
                ax.plot(grid, np.median(scores, axis=0), label=method, **style.line_kwargs())
            handles.append(style.handle(method))
        for ax, label in zip(axes, COST_AXES.values(), strict=True):
            # Log axes: a steering method may spend 20 times the calls of a rollout method.
            ax.set_xscale("log")
            ax.set_xlabel(f"{label} (log scale)")
        measure = "best-so-far distance to the target" if distance else "best-so-far score"
        if distance:
            axes[0].set_yscale("log")
        axes[0].set_ylabel(f"{measure} (log scale)" if distance else measure)
        figure.suptitle(cell_title(title_prefix, task, measure), fontsize="medium")
        figure_legend(figure, handles, band_description(confidence))
    return figure


def molecule_grid(
    best: pd.DataFrame, rebuilt: Sequence[RebuiltMolecule], task: str, panel: int = 220
) -> bytes:
    """PNG bytes of ``task``'s best molecules: a row per method, a column per seed (no SVG:
    at 15 seeds and 11 methods it took 2 MB a task, the structures being in the SDF beside it).
    ``best`` has per run ``method``, ``seed``, ``problem``, ``best_score`` and ``xyz``, and
    ``rebuilt`` the rebuilt molecule of each of its rows.

    An invalid structure is drawn as its atoms without bonds, labelled "invalid"; one in
    several pieces is labelled with its number of fragments.
    """
    position = {
        (str(method), int(seed)): index
        for index, (method, seed, name) in enumerate(
            zip(best["method"], best["seed"], best["problem"], strict=True)
        )
        if name == task
    }
    methods = list(method_styles(method for method, _ in position))
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
    drawer: Any = rdMolDraw2D.MolDraw2DCairo(columns * panel, height, panel, panel)
    drawer.drawOptions().legendFontSize = 14
    drawer.DrawMolecules(mols, legends=legends)
    drawer.FinishDrawing()
    png: bytes = drawer.GetDrawingText()
    return png


def _atoms_only(xyz: str) -> Chem.Mol:
    """The atoms of a structure RDKit could not sanitize, without bonds or hydrogens."""
    _, kinds = parse_xyz(xyz)
    editable = Chem.RWMol()
    for kind in kinds:
        atom = Chem.Atom(ATOMIC_NUMBERS[int(kind)])
        atom.SetNoImplicit(True)
        editable.AddAtom(atom)
    return editable.GetMol()
