"""Figures of the rate check: the average gap against T, the normalized gap and local slopes.

One figure per rate check (method x problem x K x scoring), ``rate_<method>_<problem>_K<K>_
<scoring>`` as PDF and PNG, three panels side by side:

- left: ``R_T`` against T, log-log, one colour and marker per d: the seed mean (markers)
  with the individual seeds (faint lines; no band), the fitted ``exp(c) T^a d^b``
  (dashed) and the reference ``C d^2 / sqrt(T)`` with C fitted at the smallest d and T
  (dotted), which the pre-registered rule lets the largest d and T exceed by at most
  ``bound_factor``;
- middle: the normalized gap ``R_T sqrt(T) / d^2`` against d, one line per T: flat or
  falling lines are what the bound's shape predicts, rising lines violate it;
- right: the local slopes of ``log R_T`` per d over the previous decade of T (open) and
  the last (filled), with their two-sided percentile-bootstrap confidence intervals (the
  level in the legend), beside the global fit's T-exponent (dashed) and the T limit
  ``-1/2 + t_tolerance`` (dotted): a last slope below the previous one whose change is
  significant is marked as still steepening.

A figure shows one method, so its colours encode d (a sequential palette, with a marker per
d) rather than the method styles of :mod:`casbo_bench.analysis.styles`. The title names the
config (``title_prefix``), the check and its role and verdict; the figure legend sits below
the panels (:func:`.styles.figure_legend`). Styling follows
:mod:`casbo_bench.analysis.figures` (paper sizes, fonts >= 7 pt, no pyplot).

>>> paths = make_rate_figures(gaps, verdicts, slopes, "figures/rate_checks")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from casbo_bench.analysis.figures import PAPER_STYLE, TWO_COLUMN_IN, cell_title, save_figure
from casbo_bench.analysis.rates import CHECK_KEYS, mean_gaps
from casbo_bench.analysis.styles import BLUE, MARKER_SIZE, figure_legend

_STEEPENING = BLUE
_D_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")


def _stem(*parts: object) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(part)) for part in parts)


def _draw_local_slopes(ax: Axes, slopes: pd.DataFrame, verdict: pd.Series) -> None:
    """Per d, the previous and last decade's slopes with intervals, beside the global fit."""
    dims = slopes["d"].to_numpy(dtype=np.float64)
    steepening = slopes["steepening"].to_numpy(dtype=bool)
    levels = sorted(set(slopes["confidence"])) if "confidence" in slopes else []
    interval = f" ({levels[0]:.0%} bootstrap CI)" if len(levels) == 1 else " (bootstrap CI)"
    series = (
        ("slope_prev", np.ones_like(steepening), 0.92, "s", "none", "0.2", "previous decade"),
        ("slope_last", ~steepening, 1.08, "o", "0.2", "0.2", f"last decade{interval}"),
        ("slope_last", steepening, 1.08, "v", _STEEPENING, _STEEPENING, "last, still steepening"),
    )
    for column, shown, shift, marker, face, colour, label in series:
        values = slopes[column].to_numpy(dtype=np.float64)
        shown = shown & ~np.isnan(values)
        if not shown.any():
            continue
        low, high = (
            slopes[f"{column}_{end}"].to_numpy(dtype=np.float64)[shown] for end in ("low", "high")
        )
        ax.errorbar(
            dims[shown] * shift,
            values[shown],
            yerr=np.clip([values[shown] - low, high - values[shown]], 0.0, None),
            fmt=marker,
            color=colour,
            markerfacecolor=face,
            markersize=3.5,
            elinewidth=0.8,
            capsize=1.5,
            label=label,
        )
    ax.axhline(
        float(verdict["a_hat"]),
        color="0.4",
        linestyle="--",
        linewidth=1.0,
        label=f"global fit a = {float(verdict['a_hat']):.2f}",
    )
    ax.axhline(
        float(verdict["a_limit"]),
        color="0.4",
        linestyle=":",
        linewidth=1.0,
        label=f"T limit {float(verdict['a_limit']):.2f}",
    )
    ax.set_xscale("log")
    ax.set_xticks(dims, [str(int(d)) for d in dims])
    ax.minorticks_off()
    ax.set_xlabel("dimension d")
    ax.set_ylabel("local slope of log $R_T$")
    ax.legend(loc="best", frameon=False, fontsize=6, handlelength=1.5)


def rate_figure(
    gaps: pd.DataFrame, verdict: pd.Series, slopes: pd.DataFrame, title_prefix: str = ""
) -> Figure:
    """The three-panel figure of one check.

    Args:
        gaps: the :func:`casbo_bench.analysis.rates.average_gaps` rows of this check.
        verdict: its row of the :func:`casbo_bench.analysis.rates.judge_rate_checks`
            verdicts.
        slopes: its rows of the local slopes, one per d.
        title_prefix: the start of the title (the config's name).
    """
    means = mean_gaps(gaps)
    dims = sorted(int(d) for d in means["d"].unique())
    iterations = np.asarray(sorted(int(t) for t in means["T"].unique()), dtype=np.float64)
    dense = np.geomspace(iterations[0], iterations[-1], 50)
    d_colours = sns.color_palette("crest", len(dims)).as_hex()
    d_markers = [_D_MARKERS[i % len(_D_MARKERS)] for i in range(len(dims))]
    t_colours = sns.color_palette("flare", iterations.size).as_hex()
    fitted = (float(verdict["intercept"]), float(verdict["a_hat"]), float(verdict["b_hat"]))
    constant = float(verdict["C"])
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(TWO_COLUMN_IN, 3.0), layout="constrained")
        left, right, slope_axis = figure.subplots(1, 3)
        for d, colour, marker in zip(dims, d_colours, d_markers, strict=True):
            own = means[means["d"] == d]
            for _, seed in gaps[gaps["d"] == d].groupby("seed"):
                left.plot(seed["T"], seed["gap"], color=colour, alpha=0.25, linewidth=0.6)
            left.plot(own["T"], own["mean_gap"], marker, color=colour, markersize=MARKER_SIZE)
            c, a, b = fitted
            left.plot(dense, np.exp(c) * dense**a * d**b, "--", color=colour, linewidth=1.0)
            left.plot(dense, constant * d**2 / np.sqrt(dense), ":", color=colour, linewidth=1.0)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("iterations T")
        left.set_ylabel("average gap $R_T$")
        handles = [
            Line2D(
                [],
                [],
                color=colour,
                marker=marker,
                markersize=MARKER_SIZE,
                linestyle="",
                label=f"d = {d}, seed mean",
            )
            for d, colour, marker in zip(dims, d_colours, d_markers, strict=True)
        ]
        handles += [
            Line2D([], [], color="0.3", alpha=0.4, linewidth=0.6, label="single seeds"),
            Line2D([], [], color="0.3", linestyle="--", label=f"fit $T^{{{fitted[1]:.2f}}}$"),
            Line2D([], [], color="0.3", linestyle=":", label="$C d^2/\\sqrt{T}$"),
        ]
        for t, colour in zip(iterations, t_colours, strict=True):
            own = means[means["T"] == t].sort_values("d")
            normalized = own["mean_gap"] * np.sqrt(t) / own["d"].astype(np.float64) ** 2
            right.plot(own["d"], normalized, "o-", color=colour, markersize=3, label=f"T = {t:g}")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xticks(dims, [str(d) for d in dims])
        right.minorticks_off()
        right.set_xlabel("dimension d")
        right.set_ylabel("$R_T \\sqrt{T} / d^2$")
        right.legend(loc="best", frameon=False, ncols=1 + (iterations.size > 6))
        _draw_local_slopes(slope_axis, slopes.sort_values("d"), verdict)
        check = cell_title(
            title_prefix,
            f"rate check: {verdict['method']} on {verdict['problem']}",
            f"K = {verdict['K']}",
            f"{verdict['scoring']} ({verdict['role']})",
        )
        figure.suptitle(
            f"{check}: {verdict['verdict']}"
            f"{'' if bool(verdict['control_ok']) else ' (control misbehaved)'}\n"
            f"a = {fitted[1]:.2f} (UCL {float(verdict['a_ucl']):.2f}), "
            f"b = {fitted[2]:.2f} (UCL {float(verdict['b_ucl']):.2f})",
            fontsize=8,
        )
        figure_legend(figure, handles, max_columns=len(handles))
    return figure


def make_rate_figures(
    gaps: pd.DataFrame,
    verdicts: pd.DataFrame,
    local_slopes: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    title_prefix: str = "",
) -> list[Path]:
    """Write one three-panel figure per verdict row as PDF and PNG.

    Args:
        gaps: :func:`casbo_bench.analysis.rates.average_gaps` rows.
        verdicts: the verdicts of :func:`casbo_bench.analysis.rates.judge_rate_checks`.
        local_slopes: its local slopes.
        out_dir: the folder to write to (created if missing).
        title_prefix: the start of every title (the config's name).

    Returns:
        The written paths, two per verdict row.
    """
    if verdicts.empty:
        raise ValueError("there are no rate verdicts to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for _, verdict in verdicts.iterrows():
        own, slopes = gaps, local_slopes
        for key in CHECK_KEYS:
            own = own[own[key] == verdict[key]]
            slopes = slopes[slopes[key] == verdict[key]]
        stem = _stem(
            "rate", verdict["method"], verdict["problem"], f"K{verdict['K']}", verdict["scoring"]
        )
        paths += save_figure(rate_figure(own, verdict, slopes, title_prefix), out, stem)
    return paths
