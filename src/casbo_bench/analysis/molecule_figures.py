"""Figures of the molecule benchmark: score curves and RDKit depictions of the best molecules.

- :func:`score_figure`: best-so-far score against evaluations on one task, per method the
  median over seeds with the bootstrap band of the median, in the method's style, described
  and placed as in every figure (:mod:`casbo_bench.analysis.styles`; scores are maximized:
  ``-best_so_far``);
- :func:`molecule_grid`: each run's best molecule drawn by RDKit, a row per method, a column
  per seed (methods in the figures' order), as PNG bytes and SVG text.

Written by :func:`casbo_bench.analysis.molecules.make_report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    cell_title,
    convergence_curves,
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
from casbo_bench.schemas.trace import RUN_KEYS
from casbo_bench.seeding import derive_rng

SCORE_GRID_POINTS = 200
"""Evaluation counts a score curve is drawn at (linear axis): bounds the bootstrap's memory
at long budgets."""


def score_figure(
    traces: pd.DataFrame,
    task: str,
    styles: Mapping[str, Style] | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    title_prefix: str = "",
) -> Figure:
    """Best-so-far score against evaluations on ``task``: per method the median over seeds
    and its percentile-bootstrap band (each band's generator derived from ``seed``, the task
    and the method), on at most :data:`SCORE_GRID_POINTS` evenly spaced evaluation counts.

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
    styles = styles if styles is not None else method_styles(traces["method"].unique())
    present = set(own["method"])
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(SINGLE_COLUMN_IN, 3.0), layout="constrained")
        ax = figure.subplots()
        handles = []
        for method, style in styles.items():
            if method not in present:
                continue
            runs = own[own["method"] == method]
            spent = int(runs.groupby(list(RUN_KEYS))["evaluation"].max().min())
            grid = np.unique(np.linspace(1, spent, SCORE_GRID_POINTS).round().astype(np.int64))
            curves, grid = found_curves(convergence_curves(runs, grid), grid)
            scores = -curves
            low, high = bootstrap_median_band(
                scores, derive_rng("band", seed, task, method), confidence
            )
            ax.fill_between(grid, low, high, color=style.colour, alpha=0.2, linewidth=0)
            ax.plot(grid, np.median(scores, axis=0), label=method, **style.line_kwargs())
            handles.append(style.handle(method))
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best-so-far score")
        figure.suptitle(cell_title(title_prefix, task, "best-so-far score"), fontsize="medium")
        figure_legend(figure, handles, band_description(confidence))
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
