"""Paper figures from validated traces: convergence curves, a win matrix and a runtime ECDF.

- ``convergence_<problem>_K<K>_<scoring>``: best-so-far loss against evaluations, one panel
  per d (rows of at most four panels), the median over seeds with a seeded bootstrap band
  (95%) of the median, titled with the config, the group and the cell. Curves are
  evaluated on a log-spaced grid of evaluation counts, so a budget of 10^5 plots as fast as
  one of 10^2. Both axes are logarithmic; the loss axis falls back to symlog (or linear,
  over a narrow range) in a panel whose values reach zero or below, e.g. negated scores.
- ``win_matrix``: the fraction of (problem, d, K, scoring, seed) cells in which the row
  method's best-so-far is lower than the column method's at matched budgets (the smaller of
  the two methods' budgets, :func:`casbo_bench.analysis.views.matched_win_matrix`), ties
  counting 1/2.
- ``ecdf``: the runtime ECDF of each method over the group's settings and pre-registered
  targets, with its bootstrap band (:func:`casbo_bench.analysis.views.runtime_ecdf`, the
  numbers of the ``ecdf`` table).

Only complete runs are drawn (a failed run is left out like a missing seed), and a curve
starts at the first grid point where every run of its method has a successful evaluation
(best-so-far is infinite before).

Every method keeps one style, a (colour, marker, line style) triple, in every figure
(:func:`casbo_bench.analysis.styles.method_styles`), every band is described in the same
words as the legend's title, and legends sit below the panels inside the figure
(:mod:`casbo_bench.analysis.styles`). Figures are sized for a paper (3.4 in for a single
column, 7 in across two) with fonts of 7 pt and more, and written as PDF and PNG (200 dpi).
They are built as plain :class:`matplotlib.figure.Figure` objects rendered by the Agg
canvas, never through pyplot: no global figure registry, no interactive backend, and
nothing left open after saving.

>>> paths = make_figures(load_traces(paths), "paper_figures/quick")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType
from numpy.typing import NDArray

from casbo_bench.analysis.ert import DEFAULT_RULE, TargetRule
from casbo_bench.analysis.stats import bootstrap_median_band
from casbo_bench.analysis.styles import (
    METHOD_STYLES,
    Style,
    band_description,
    clipped_artists,
    figure_legend,
    method_styles,
)
from casbo_bench.analysis.views import matched_win_matrix, runtime_ecdf
from casbo_bench.schemas.trace import CELL_KEYS, RUN_KEYS, complete_runs
from casbo_bench.seeding import derive_rng

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SINGLE_COLUMN_IN = 3.4
TWO_COLUMN_IN = 7.0
PNG_DPI = 200
GRID_POINTS = 60
PANELS_PER_ROW = 4

METHOD_COLOURS: dict[str, str] = {name: style.colour for name, style in METHOD_STYLES.items()}
"""The fixed methods in plotting order, each with its colour (:data:`.styles.METHOD_STYLES`)."""

PAPER_STYLE: dict[RcKeyType, Any] = {
    **sns.axes_style("ticks"),
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "lines.linewidth": 1.2,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "pdf.fonttype": 42,  # embed TrueType, so a journal's PDF checks accept the text
    "ps.fonttype": 42,
}
"""The fixed style of every figure (seaborn "ticks" with paper-size fonts, all >= 7 pt)."""


def method_palette(methods: Iterable[str]) -> dict[str, str]:
    """Method -> colour alone, in :func:`.styles.method_styles`' order: a view of the styles
    for what draws colour only (a colour is shared by up to four methods: draw with the
    whole :class:`.styles.Style` wherever methods are told apart)."""
    return {name: style.colour for name, style in method_styles(methods).items()}


def evaluation_grid(budget: int, points: int = GRID_POINTS) -> IntArray:
    """Distinct evaluation counts from 1 to ``budget``, log-spaced (at most ``points``)."""
    if budget < 1:
        raise ValueError(f"budget must be >= 1; got {budget}")
    return np.unique(np.geomspace(1, budget, points).round().astype(np.int64))


def convergence_curves(traces: pd.DataFrame, grid: IntArray) -> FloatArray:
    """Best-so-far of every run at the evaluation counts of ``grid``.

    Args:
        traces: validated traces of runs that all recorded at least ``grid[-1]``
            evaluations, each starting at evaluation 1.
        grid: a ``m`` array of evaluation counts.

    Returns:
        A ``n_runs x m`` array, runs in the order of their keys: entry (r, j) is run r's
        best-so-far on its last row with ``evaluation <= grid[j]`` (by value, so a compact
        trace of the rows where best-so-far changes, :mod:`casbo_bench.publish`, draws the
        same curves as the full trace).
    """
    ordered = traces.sort_values([*RUN_KEYS, "evaluation"], kind="stable")
    return np.vstack(
        [
            frame["best_so_far"].to_numpy(dtype=np.float64)[
                np.searchsorted(frame["evaluation"].to_numpy(), grid, side="right") - 1
            ]
            for _, frame in ordered.groupby(list(RUN_KEYS), sort=True)
        ]
    )


def found_curves(curves: FloatArray, grid: IntArray) -> tuple[FloatArray, IntArray]:
    """``curves`` (``n_runs x m``) and ``grid`` cut to the grid points where every run has
    found a finite best-so-far (before its first successful evaluation it is infinite)."""
    found = np.isfinite(curves).all(axis=0)
    return curves[:, found], grid[found]


def _set_loss_scale(ax: Axes, values: FloatArray) -> None:
    """Log scale for positive losses; symlog, or linear over < 2 decades, otherwise."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() > 0:
        ax.set_yscale("log")
        return
    magnitudes = np.abs(finite[finite != 0])
    if magnitudes.size == 0 or magnitudes.max() / magnitudes.min() < 100:
        ax.set_yscale("linear")
        return
    # A linear band reaching down to the tiniest magnitude would crowd the ticks near zero
    # with decades nobody reads: keep at most three decades below the largest magnitude.
    floor = max(float(magnitudes.min()), 1e-3 * float(magnitudes.max()))
    ax.set_yscale("symlog", linthresh=10.0 ** np.floor(np.log10(floor)))


def _present(styles: Mapping[str, object], frame: pd.DataFrame) -> list[str]:
    """The methods of ``frame``, in the order of ``styles``."""
    methods = set(frame["method"].unique())
    return [name for name in styles if name in methods]


def cell_title(prefix: str, *parts: str) -> str:
    """A figure's title: ``"<config> · <group>"`` (``prefix``, when given) on the first
    line, the cell (``parts`` joined by commas) on the second."""
    cell = ", ".join(parts)
    return f"{prefix}\n{cell}" if prefix else cell


def _file_stem(*parts: object) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(part)) for part in parts)


def save_figure(figure: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write ``figure`` as ``<stem>.pdf`` and ``<stem>.png`` in ``out_dir``; the two paths.

    A legend or another artist that sticks out of the figure's box
    (:func:`.styles.clipped_artists`) is logged as a warning. That check's draw lays the
    figure out; both files keep that layout rather than solving it again (the constrained
    layout is most of a figure's drawing time). The figure is cleared afterwards (its memory
    is freed without pyplot).
    """
    FigureCanvasAgg(figure)
    paths = [out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"]
    with mpl.rc_context(PAPER_STYLE):
        for problem in clipped_artists(figure):
            logger.warning("%s: %s", stem, problem)
        figure.set_layout_engine("none")
        # No creation date: the same traces give byte-identical PDFs (cacheable by hash).
        figure.savefig(paths[0], metadata={"CreationDate": None})
        figure.savefig(paths[1], dpi=PNG_DPI)
    figure.clear()
    return paths


def _draw_panel(
    ax: Axes,
    traces: pd.DataFrame,
    styles: Mapping[str, Style],
    seed: int,
    confidence: float,
) -> None:
    plotted: list[FloatArray] = []
    for method in _present(styles, traces):
        own = traces[traces["method"] == method]
        spent = own.groupby(list(RUN_KEYS))["evaluation"].max().min()
        grid = evaluation_grid(int(spent))
        curves, grid = found_curves(convergence_curves(own, grid), grid)
        cell = own.iloc[0][list(CELL_KEYS)].tolist()
        low, high = bootstrap_median_band(curves, derive_rng("band", seed, *cell), confidence)
        median = np.median(curves, axis=0)
        style = styles[method]
        ax.fill_between(grid, low, high, color=style.colour, alpha=0.2, linewidth=0)
        ax.plot(grid, median, label=method, **style.line_kwargs())
        plotted += [low, high, median]
    ax.set_xscale("log")
    _set_loss_scale(ax, np.concatenate(plotted))


def convergence_figure(
    traces: pd.DataFrame,
    styles: Mapping[str, Style],
    seed: int = 0,
    confidence: float = 0.95,
    title_prefix: str = "",
) -> Figure:
    """One setting's (problem, K, scoring) convergence figure: a panel per d, titled
    ``title_prefix`` (e.g. the config and the group) and the setting."""
    dims = sorted(traces["d"].unique())
    nrows = -(-len(dims) // PANELS_PER_ROW)
    ncols = -(-len(dims) // nrows)
    width = SINGLE_COLUMN_IN if ncols == 1 else TWO_COLUMN_IN
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(width, 1.9 * nrows + 0.5), layout="constrained")
        axes = figure.subplots(nrows, ncols, squeeze=False)
        for index, ax in enumerate(axes.flat):
            if index >= len(dims):
                ax.set_visible(False)
                continue
            _draw_panel(ax, traces[traces["d"] == dims[index]], styles, seed, confidence)
            ax.set_title(f"d = {dims[index]}")
            ax.set_xlabel("evaluations")
            if index % ncols == 0:
                ax.set_ylabel("best-so-far loss")
        problem, steps, scoring = (traces[key].iloc[0] for key in ("problem", "K", "scoring"))
        # Two short lines: one line overflows the single-column width.
        figure.suptitle(
            cell_title(title_prefix, str(problem), f"K = {steps}", f"{scoring} score"),
            fontsize="medium",
        )
        handles = [styles[name].handle(name) for name in _present(styles, traces)]
        figure_legend(figure, handles, band_description(confidence))
    return figure


def win_matrix_figure(
    traces: pd.DataFrame, styles: Mapping[str, object], title_prefix: str = ""
) -> Figure:
    """Annotated heatmap of :func:`casbo_bench.analysis.views.matched_win_matrix`: each pair
    at the smaller of its two budgets."""
    order = _present(styles, traces)
    matrix = matched_win_matrix(traces, order)
    size = max(SINGLE_COLUMN_IN, min(TWO_COLUMN_IN, 0.45 * len(order) + 1.6))
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(size, size * 0.85 + 0.3), layout="constrained")
        ax = figure.subplots()
        sns.heatmap(
            matrix.fraction,
            ax=ax,
            vmin=0.0,
            vmax=1.0,
            cmap="RdBu",
            annot=True,
            fmt=".2f",
            annot_kws={"size": 7},
            square=True,
            linewidths=0.5,
            mask=~np.isfinite(matrix.fraction.to_numpy()),
            cbar_kws={"label": "win fraction of row method", "shrink": 0.8},
        )
        ax.grid(False)
        ax.set_xlabel("column method")
        ax.set_ylabel("row method")
        ax.tick_params(axis="x", labelrotation=45)
        for label in ax.get_xticklabels():  # each rotated label ends under its column
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
        ax.tick_params(axis="y", labelrotation=0)
        shared = matrix.n_cells.to_numpy()[~np.eye(len(order), dtype=bool)]
        low, high = int(shared.min()), int(shared.max())
        counted = f"{low}" if low == high else f"{low}-{high}"
        # A figure title: an axes title overflows the narrow square heatmap of few methods.
        figure.suptitle(
            cell_title(title_prefix, "row beats column at matched budgets")
            + f"\n({counted} cells, ties 1/2)",
            fontsize="medium",
        )
    return figure


def ecdf_figure(
    ecdf: pd.DataFrame, styles: Mapping[str, Style], targets: TargetRule, title_prefix: str = ""
) -> Figure:
    """The runtime ECDF of each method (a :func:`casbo_bench.analysis.views.runtime_ecdf`
    table): the share of (run, target) pairs reached against evaluations (log scale), each
    curve ending at its method's budget, with its bootstrap band."""
    confidence = float(ecdf["confidence"].iloc[0])
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(SINGLE_COLUMN_IN, 3.0), layout="constrained")
        ax = figure.subplots()
        present = _present(styles, ecdf)
        for method in present:
            own = ecdf[ecdf["method"] == method]
            style = styles[method]
            ax.fill_between(
                own["evaluations"],
                own["ci_low"],
                own["ci_high"],
                color=style.colour,
                alpha=0.15,
                linewidth=0,
                step="post",
            )
            ax.step(own["evaluations"], own["fraction"], where="post", **style.line_kwargs())
        ax.set_xscale("log")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("share of (run, target) pairs reached")
        figure.suptitle(
            cell_title(title_prefix, "runtime ECDF over settings and targets")
            + f"\n{targets.describe()}",
            fontsize="medium",
        )
        handles = [styles[name].handle(name) for name in present]
        figure_legend(
            figure,
            handles,
            f"line: share over runs and targets; band: {confidence:.0%} bootstrap CI over runs",
        )
    return figure


def make_figures(
    traces: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    confidence: float = 0.95,
    targets: TargetRule = DEFAULT_RULE,
    title_prefix: str = "",
) -> list[Path]:
    """Write every convergence figure, the win matrix and the runtime ECDF as PDF and PNG.

    Args:
        traces: validated traces (:func:`casbo_bench.traces.load_traces`); failed runs are
            left out.
        out_dir: the folder to write to (created if missing).
        seed: the seed of the bootstrap bands (each band's generator is derived from it and
            the cell, so the same traces give the same figures).
        confidence: the level of the bands.
        targets: the pre-registered targets of the runtime ECDF.
        title_prefix: the start of every title, e.g. ``"default · plain"`` (the config and
            the benchmark group).

    Returns:
        The written paths: per (problem, K, scoring), ``convergence_*.pdf`` and ``.png``;
        then ``win_matrix.pdf`` and ``.png`` when there are at least two methods; then
        ``ecdf.pdf`` and ``.png`` (its runs: every run, failed ones included).
    """
    if complete_runs(traces).empty:
        raise ValueError("there are no traces of complete runs to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    styles = method_styles(traces["method"].unique())
    paths: list[Path] = []
    for (problem, steps, scoring), setting in traces.groupby(["problem", "K", "scoring"]):
        figure = convergence_figure(complete_runs(setting), styles, seed, confidence, title_prefix)
        paths += save_figure(figure, out, _file_stem("convergence", problem, f"K{steps}", scoring))
    if len(styles) >= 2:
        paths += save_figure(win_matrix_figure(traces, styles, title_prefix), out, "win_matrix")
    ecdf = runtime_ecdf(traces, targets, seed=seed, confidence=confidence)
    paths += save_figure(ecdf_figure(ecdf, styles, targets, title_prefix), out, "ecdf")
    return paths
