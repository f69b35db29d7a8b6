"""Figures of the molecule benchmark: score curves and RDKit depictions of the best molecules.

- :func:`score_figure`: best-so-far score against evaluations on one task, median and
  interquartile band over seeds per method (scores are maximized: ``-best_so_far``);
- :func:`molecule_grid`: each run's best molecule drawn by RDKit, a row per method, a column
  per seed, as PNG bytes and SVG text.

Written by :func:`casbo_bench.analysis.molecules.make_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    found_curves,
    method_palette,
)
from casbo_bench.molecules.atoms import ATOMIC_NUMBERS
from casbo_bench.molecules.data import parse_xyz
from casbo_bench.molecules.rebuild import RebuiltMolecule
from casbo_bench.schemas.trace import RUN_KEYS


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
            curves, grid = found_curves(convergence_curves(runs, grid), grid)
            scores = -curves
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
