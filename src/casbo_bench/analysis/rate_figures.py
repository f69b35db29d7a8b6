"""Figures of the rate check: the average gap against T and the normalized gap against d.

One figure per rate check (method x problem x K x scoring), ``rate_<method>_<problem>_K<K>_
<scoring>`` as PDF and PNG, two panels side by side:

- left: ``R_T`` against T, log-log, one colour per d: the seed mean (markers) with the
  individual seeds (faint), the fitted ``exp(c) T^a d^b`` (dashed) and the reference
  ``C d^2 / sqrt(T)`` with C fitted at the smallest d and T (dotted), which the
  pre-registered rule lets the largest d and T exceed by at most ``bound_factor``;
- right: the normalized gap ``R_T sqrt(T) / d^2`` against d, one line per T: flat or
  falling lines are what the bound's shape predicts, rising lines violate it.

The title carries the check's role and verdict. Styling follows
:mod:`casbo_bench.analysis.figures` (paper sizes, fonts >= 7 pt, no pyplot).

>>> paths = make_rate_figures(gaps, verdicts, "paper_figures/default/rate_checks")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from casbo_bench.analysis.figures import PAPER_STYLE, TWO_COLUMN_IN, save_figure
from casbo_bench.analysis.rates import CHECK_KEYS, mean_gaps


def _stem(*parts: object) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(part)) for part in parts)


def rate_figure(gaps: pd.DataFrame, verdict: pd.Series) -> Figure:
    """The two-panel figure of one check.

    Args:
        gaps: the :func:`casbo_bench.analysis.rates.average_gaps` rows of this check.
        verdict: its row of :func:`casbo_bench.analysis.rates.rate_verdicts`.
    """
    means = mean_gaps(gaps)
    dims = sorted(int(d) for d in means["d"].unique())
    iterations = np.asarray(sorted(int(t) for t in means["T"].unique()), dtype=np.float64)
    dense = np.geomspace(iterations[0], iterations[-1], 50)
    d_colours = sns.color_palette("crest", len(dims)).as_hex()
    t_colours = sns.color_palette("flare", iterations.size).as_hex()
    fitted = (float(verdict["intercept"]), float(verdict["a_hat"]), float(verdict["b_hat"]))
    constant = float(verdict["C"])
    with mpl.rc_context(PAPER_STYLE):
        figure = Figure(figsize=(TWO_COLUMN_IN, 3.0), layout="constrained")
        left, right = figure.subplots(1, 2)
        for d, colour in zip(dims, d_colours, strict=True):
            own = means[means["d"] == d]
            for _, seed in gaps[gaps["d"] == d].groupby("seed"):
                left.plot(seed["T"], seed["gap"], color=colour, alpha=0.25, linewidth=0.6)
            left.plot(own["T"], own["mean_gap"], "o", color=colour, markersize=3.5)
            c, a, b = fitted
            left.plot(dense, np.exp(c) * dense**a * d**b, "--", color=colour, linewidth=1.0)
            left.plot(dense, constant * d**2 / np.sqrt(dense), ":", color=colour, linewidth=1.0)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("iterations T")
        left.set_ylabel("average gap $R_T$")
        handles = [
            Line2D([], [], color=colour, marker="o", markersize=3.5, linestyle="", label=f"d = {d}")
            for d, colour in zip(dims, d_colours, strict=True)
        ]
        handles += [
            Line2D([], [], color="0.3", linestyle="--", label=f"fit $T^{{{fitted[1]:.2f}}}$"),
            Line2D([], [], color="0.3", linestyle=":", label="$C d^2/\\sqrt{T}$"),
        ]
        figure.legend(
            handles=handles, loc="outside lower center", frameon=False, ncols=len(handles)
        )
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
        right.legend(loc="best", frameon=False)
        figure.suptitle(
            f"{verdict['method']} on {verdict['problem']} (K = {verdict['K']}, "
            f"{verdict['scoring']}; {verdict['role']}): {verdict['verdict']}, "
            f"a = {fitted[1]:.2f} (UCL {float(verdict['a_ucl']):.2f}), "
            f"b = {fitted[2]:.2f} (UCL {float(verdict['b_ucl']):.2f})",
            fontsize=8,
        )
    return figure


def make_rate_figures(
    gaps: pd.DataFrame, verdicts: pd.DataFrame, out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write one two-panel figure per verdict row as PDF and PNG.

    Args:
        gaps: :func:`casbo_bench.analysis.rates.average_gaps` rows.
        verdicts: :func:`casbo_bench.analysis.rates.rate_verdicts` rows.
        out_dir: the folder to write to (created if missing).

    Returns:
        The written paths, two per verdict row.
    """
    if verdicts.empty:
        raise ValueError("there are no rate verdicts to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for _, verdict in verdicts.iterrows():
        own = gaps
        for key in CHECK_KEYS:
            own = own[own[key] == verdict[key]]
        stem = _stem(
            "rate", verdict["method"], verdict["problem"], f"K{verdict['K']}", verdict["scoring"]
        )
        paths += save_figure(rate_figure(own, verdict), out, stem)
    return paths
