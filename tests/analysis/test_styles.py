"""Figures everyone can read: one style per method, told apart under deuteranopia, legends
inside every figure, bands described the same way (:mod:`casbo_bench.analysis.styles`)."""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.backends.backend_pdf import PdfFile, RendererPdf
from matplotlib.figure import Figure

from casbo_bench.analysis.figures import (
    convergence_figure,
    save_figure,
    win_matrix_figure,
)
from casbo_bench.analysis.molecule_figures import score_figure
from casbo_bench.analysis.rate_figures import rate_figure
from casbo_bench.analysis.rates import RateCheck, RateRule, judge_rate_checks
from casbo_bench.analysis.styles import (
    METHOD_STYLES,
    SPARE_STYLES,
    Style,
    band_description,
    clipped_artists,
    method_styles,
)
from casbo_bench.optimizers import available_optimizers

from .colour_difference import ciede2000, deuteranopia_lab
from .synthetic import synthetic_traces
from .test_rates import synthetic_gaps

REPOSITORY = Path(__file__).resolve().parents[2]

# Sharma, Wu and Dalal (2005), Table 1: L1 a1 b1, L2 a2 b2, Delta E_00.
SHARMA_PAIRS = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""

MIN_DIFFERENCE = 10.0
"""CIEDE2000 two methods' colours must keep after deuteranopia unless they differ in both
marker and line style."""


def default_methods() -> list[str]:
    config = yaml.safe_load((REPOSITORY / "config" / "config.yaml").read_text())
    return [method["label"] for method in config["methods"]]


def registered_labels() -> list[str]:
    """Every optimizer name and every method label of the shipped and test configs."""
    labels = set(available_optimizers())
    for path in [*(REPOSITORY / "config").glob("*.yaml"), REPOSITORY / "tests/workflow/tiny.yaml"]:
        labels |= set(re.findall(r"label: ([a-z0-9][a-z0-9_-]*)", path.read_text()))
    return sorted(labels)


def simulated_differences(styles: Sequence[Style]) -> np.ndarray:
    lab = deuteranopia_lab([style.colour for style in styles])
    return ciede2000(lab[:, None, :], lab[None, :, :])


def problems_of(styles: dict[str, Style]) -> list[str]:
    """Pairs of methods a deuteranope cannot tell apart: colours closer than
    :data:`MIN_DIFFERENCE` after the simulation, and a marker or a line style shared."""
    names = list(styles)
    differences = simulated_differences(list(styles.values()))
    found = []
    for i, j in itertools.combinations(range(len(names)), 2):
        a, b = styles[names[i]], styles[names[j]]
        both = a.marker != b.marker and a.linestyle != b.linestyle
        if differences[i, j] < MIN_DIFFERENCE and not both:
            found.append(f"{names[i]} / {names[j]}: Delta E00 {differences[i, j]:.1f}")
    return found


def test_ciede2000_reproduces_the_published_test_pairs() -> None:
    rows = np.array([line.split() for line in SHARMA_PAIRS.split("\n") if line], dtype=float)
    assert rows.shape == (34, 7)
    forward = ciede2000(rows[:, :3], rows[:, 3:6])
    backward = ciede2000(rows[:, 3:6], rows[:, :3])
    np.testing.assert_allclose(forward, rows[:, 6], rtol=0, atol=1e-4)
    np.testing.assert_allclose(backward, forward, rtol=0, atol=1e-12)


def test_deuteranopia_merges_red_and_green_and_keeps_blue_and_yellow() -> None:
    """The simulation does what it is for: a red-green pair collapses, blue-yellow does not."""
    normal = ciede2000(*deuteranopia_lab(["#000000", "#000000"]))
    assert normal == 0.0
    red_green = ciede2000(*deuteranopia_lab(["#E41A1C", "#4DAF4A"]))
    blue_yellow = ciede2000(*deuteranopia_lab(["#0072B2", "#F0E442"]))
    assert red_green < 10 < blue_yellow


def test_the_default_methods_each_have_their_fixed_style() -> None:
    methods = default_methods()
    assert len(methods) == 12  # ten ask/tell methods and the steering smc and svdd
    styles = method_styles(methods)
    assert set(styles) == set(methods) <= set(METHOD_STYLES)
    triples = {(style.colour, style.marker, style.linestyle) for style in styles.values()}
    assert len(triples) == len(methods)
    assert problems_of(styles) == []


def test_methods_sharing_a_marker_or_line_style_stay_apart_in_colour() -> None:
    """The default methods' colours are distinct after the simulation, well above the
    threshold even where two methods share their line style (the same scope); the two
    steering methods reuse two of the ten colours, with a marker and a line style of their
    own."""
    styles = method_styles(default_methods())
    names = list(styles)
    differences = simulated_differences(list(styles.values()))
    sharing = [
        differences[i, j]
        for i, j in itertools.combinations(range(len(names)), 2)
        if styles[names[i]].marker == styles[names[j]].marker
        or styles[names[i]].linestyle == styles[names[j]].linestyle
    ]
    assert sharing and min(sharing) >= 14.0
    pairs = list(itertools.combinations(range(len(names)), 2))
    same = [(i, j) for i, j in pairs if styles[names[i]].colour == styles[names[j]].colour]
    assert {frozenset((names[i], names[j])) for i, j in same} == {
        frozenset(("cmaes", "smc")),
        frozenset(("xnes", "svdd")),
    }
    for i, j in same:
        assert styles[names[i]].marker != styles[names[j]].marker
        assert styles[names[i]].linestyle != styles[names[j]].linestyle
    assert min(differences[i, j] for i, j in pairs if (i, j) not in same) >= 14.0


def test_every_pair_of_the_forty_styles_is_told_apart() -> None:
    """The fixed and the spare styles together, so any set of up to 42 methods."""
    everyone = {f"fixed {name}": style for name, style in METHOD_STYLES.items()}
    everyone |= {f"spare {index}": style for index, style in enumerate(SPARE_STYLES)}
    assert len(set(everyone.values())) == len(everyone) == 42
    assert problems_of(everyone) == []


def test_any_twelve_registered_labels_are_told_apart() -> None:
    labels = registered_labels()
    assert {"casbo", "casbo-mean-only", "casbo-decay", "cmaes-joint"} <= set(labels)
    rng = np.random.default_rng(13)
    for size in [*range(2, 13)] * 20:
        chosen = [str(label) for label in rng.choice(labels, size=size, replace=False)]
        styles = method_styles(chosen)
        assert list(styles) == [name for name in METHOD_STYLES if name in chosen] + sorted(
            set(chosen) - set(METHOD_STYLES)
        )
        assert len(set(styles.values())) == size
        assert problems_of(styles) == []
        for name in set(chosen) & set(METHOD_STYLES):
            assert styles[name] == METHOD_STYLES[name]


def test_styles_repeat_only_beyond_the_spares(caplog: pytest.LogCaptureFixture) -> None:
    many = [f"variant-{index:02d}" for index in range(len(SPARE_STYLES))]
    assert len(set(method_styles(many).values())) == len(SPARE_STYLES)
    with caplog.at_level(logging.WARNING):
        styles = method_styles([*many, "variant-99"])
    assert "some styles repeat" in caplog.text
    assert styles["variant-99"] == styles["variant-00"]


# Every figure kind with the ten default methods, with ten long labels, and with two methods.
LONG_LABELS = [f"{name}-with-a-long-descriptive-label" for name in default_methods()]


def method_traces(labels: Sequence[str], dims: Sequence[int], offset: float = 0.0) -> pd.DataFrame:
    """Synthetic traces of ``labels`` (three base curves, rescaled per method)."""
    base = synthetic_traces(problems=("sphere",), dims=dims, seeds=(0, 1, 2), offset=offset)
    frames = []
    for index, label in enumerate(labels):
        frame = base[base["method"] == ("casbo", "cmaes", "random")[index % 3]].copy()
        factor = 1.0 + index / 3
        frame[["loss", "best_so_far"]] = frame[["loss", "best_so_far"]] * factor
        frame["method"] = label
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def convergence(labels: Sequence[str], dims: Sequence[int]) -> Figure:
    traces = method_traces(labels, dims)
    one = traces[traces["K"] == 3]
    return convergence_figure(one, method_styles(labels), title_prefix="default · sequential")


def win_matrix(labels: Sequence[str]) -> Figure:
    return win_matrix_figure(
        method_traces(labels, (2,)), method_styles(labels), "default · sequential"
    )


def molecule_scores(labels: Sequence[str], task: str = "mol-qed") -> Figure:
    # QED: losses below 0 (scores above); a target task: distances above 0.
    traces = method_traces(labels, (2,), offset=-5.0 if task == "mol-qed" else 0.0)
    traces = traces[traces["K"] == 1].assign(problem=task)
    # one call and 21 denoiser evaluations per rollout, as an ask/tell molecule run
    traces = traces.assign(calls=traces["evaluation"], denoiser_evals=21 * traces["evaluation"])
    return score_figure(traces, task, title_prefix="default")


def test_a_target_task_draws_the_distance_to_the_target_on_a_log_axis() -> None:
    """QED is drawn as the score (maximized, linear axis); mol-gap, whose score is
    ``-|gap - target|``, as the distance ``best_so_far`` on a log axis, positive throughout."""
    labels = ["casbo", "random"]
    score_axis = molecule_scores(labels).axes[0]
    distance_axis = molecule_scores(labels, "mol-gap").axes[0]
    assert score_axis.get_yscale() == "linear"
    assert score_axis.get_ylabel() == "best-so-far score"
    assert distance_axis.get_yscale() == "log"
    assert distance_axis.get_ylabel() == "best-so-far distance to the target (log scale)"
    for line in distance_axis.get_lines():
        assert (np.asarray(line.get_ydata()) > 0).all()


def rate(labels: Sequence[str]) -> Figure:
    gaps = synthetic_gaps(-0.6, 1.5, seeds=4, method=labels[0])
    rule = RateRule(0.1, 0.25, 2.0, n_resamples=100, calibration_replicates=0)
    results = judge_rate_checks(gaps, [RateCheck(labels[0], "sphere", "claim")], rule)
    return rate_figure(gaps, results.verdicts.iloc[0], results.local_slopes, "default")


FIGURES: dict[str, Callable[[Sequence[str]], Figure]] = {
    "convergence, one panel": lambda labels: convergence(labels, (2,)),
    "convergence, two panels": lambda labels: convergence(labels, (2, 5)),
    "convergence, two rows": lambda labels: convergence(labels, (2, 3, 4, 5, 6)),
    "win matrix": win_matrix,
    "molecule scores": molecule_scores,
    "rate check": rate,
}


def pdf_clipped(figure: Figure) -> list[str]:
    """:func:`clipped_artists` measured by the PDF backend's renderer (72 dpi, points)."""
    dpi = figure.dpi
    figure.set_dpi(72)
    try:
        width, height = figure.get_size_inches() * 72
        document = PdfFile(io.BytesIO())
        document.newPage(width, height)
        return clipped_artists(figure, renderer=RendererPdf(document, 72, height, width))
    finally:
        figure.set_dpi(dpi)


@pytest.mark.parametrize(
    "labels",
    [default_methods(), LONG_LABELS, ["casbo", "random"]],
    ids=["default", "long", "two"],
)
@pytest.mark.parametrize("kind", list(FIGURES))
def test_no_legend_or_title_sticks_out_of_any_figure(kind: str, labels: list[str]) -> None:
    figure = FIGURES[kind](labels)
    assert clipped_artists(figure) == []
    assert pdf_clipped(figure) == []
    legends = list(figure.legends) + [ax.get_legend() for ax in figure.axes if ax.get_legend()]
    if kind != "win matrix":
        assert legends, "the figure has a legend"
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1
        assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1


@pytest.mark.parametrize("kind", ["convergence, two panels", "molecule scores"])
def test_bands_are_described_in_the_same_words(kind: str) -> None:
    figure = FIGURES[kind](default_methods())
    (legend,) = figure.legends
    assert legend.get_title().get_text() == band_description(0.95)
    assert "95% bootstrap CI of the median" in band_description(0.95)
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == default_methods()
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    for name, style in METHOD_STYLES.items():
        assert lines[name].get_color() == style.colour
        assert lines[name].get_marker() == style.marker


def test_a_clipped_legend_is_reported_when_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    figure = Figure(figsize=(2.0, 2.0))
    figure.subplots().plot([0, 1], [0, 1], label="a label far too long for a figure this narrow")
    figure.legend(loc="center left", bbox_to_anchor=(0.8, 0.5))
    assert any(problem.startswith("legend") for problem in clipped_artists(figure))
    assert any(problem.startswith("legend") for problem in pdf_clipped(figure))
    with caplog.at_level(logging.WARNING):
        save_figure(figure, tmp_path, "clipped")
    assert "clipped: legend" in caplog.text
