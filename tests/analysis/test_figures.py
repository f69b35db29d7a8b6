from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from casbo_bench.analysis.ert import DEFAULT_RULE
from casbo_bench.analysis.figures import (
    METHOD_COLOURS,
    PNG_DPI,
    SINGLE_COLUMN_IN,
    TWO_COLUMN_IN,
    convergence_figure,
    ecdf_figure,
    evaluation_grid,
    make_figures,
    method_palette,
    win_matrix_figure,
)
from casbo_bench.analysis.styles import METHOD_STYLES, method_styles
from casbo_bench.analysis.views import matched_win_matrix, runtime_ecdf
from casbo_bench.schemas.trace import validate_trace

from .synthetic import synthetic_traces


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """Three methods, one problem, two d, two (K, scoring), three seeds."""
    return synthetic_traces(problems=("sphere",), dims=(2, 5), seeds=(0, 1, 2))


@pytest.fixture(scope="module")
def written(small: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_figures(small, tmp_path_factory.mktemp("figures"))


def test_writes_non_empty_pdf_and_png(written: list[Path]) -> None:
    names = sorted(path.name for path in written)
    assert names == sorted(
        f"{stem}.{suffix}"
        for stem in (
            "convergence_sphere_K1_final",
            "convergence_sphere_K3_cumulative",
            "win_matrix",
            "ecdf",
        )
        for suffix in ("pdf", "png")
    )
    for path in written:
        content = path.read_bytes()
        assert len(content) > 1000
        assert content.startswith(b"%PDF" if path.suffix == ".pdf" else b"\x89PNG")


def test_paper_sizes(written: list[Path]) -> None:
    by_name = {path.name: path for path in written}
    convergence = imread(by_name["convergence_sphere_K1_final.png"])
    assert convergence.shape[1] == round(TWO_COLUMN_IN * PNG_DPI)  # two panels: d = 2, 5
    matrix = imread(by_name["win_matrix.png"])
    assert matrix.shape[1] == round(SINGLE_COLUMN_IN * PNG_DPI)


def test_same_traces_give_the_same_pdf(small: pd.DataFrame, tmp_path: Path) -> None:
    one = small[(small["K"] == 1) & (small["d"] == 2)]
    first = make_figures(one, tmp_path / "a")
    second = make_figures(one, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        if a.suffix == ".pdf":
            assert a.read_bytes() == b.read_bytes()


def test_loss_axis_scales(small: pd.DataFrame) -> None:
    styles = method_styles(small["method"].unique())
    one = small[small["K"] == 1]
    positive = convergence_figure(one, styles)
    assert {ax.get_yscale() for ax in positive.axes} == {"log"}
    assert {ax.get_xscale() for ax in positive.axes} == {"log"}
    negative = synthetic_traces(problems=("sphere",), dims=(2,), seeds=(0, 1, 2), offset=-50.0)
    figure = convergence_figure(negative[negative["K"] == 1], styles)
    assert figure.axes[0].get_yscale() == "symlog"


def test_one_line_per_method_in_its_style(small: pd.DataFrame) -> None:
    figure = convergence_figure(small[small["K"] == 1], method_styles(small["method"].unique()))
    for ax in figure.axes:
        lines = {
            line.get_label(): (line.get_color(), line.get_marker(), line.get_linestyle())
            for line in ax.get_lines()
        }
        expected = {
            name: (style.colour, style.marker, style.linestyle)
            for name, style in METHOD_STYLES.items()
            if name in ("casbo", "cmaes", "random")
        }
        assert lines == expected


def test_titles_name_the_config_and_the_cell(small: pd.DataFrame) -> None:
    one = small[small["K"] == 3]
    figure = convergence_figure(
        one, method_styles(one["method"].unique()), title_prefix="default · plain"
    )
    assert figure.get_suptitle() == "default · plain\nsphere, K = 3, cumulative score"
    assert [ax.get_title() for ax in figure.axes] == ["d = 2", "d = 5"]
    (legend,) = figure.legends
    assert legend.get_title().get_text() == (
        "line: median over seeds; band: 95% bootstrap CI of the median"
    )


def test_palette_is_the_colour_of_each_style() -> None:
    alone = method_palette(["casbo"])
    everyone = method_palette(["random", "zeta", "casbo", "alpha", "cmaes"])
    assert alone["casbo"] == everyone["casbo"] == METHOD_COLOURS["casbo"]
    assert list(everyone) == ["casbo", "cmaes", "random", "alpha", "zeta"]
    styles = method_styles(everyone)
    assert everyone == {name: style.colour for name, style in styles.items()}


def test_evaluation_grid() -> None:
    grid = evaluation_grid(100_000)
    assert grid[0] == 1 and grid[-1] == 100_000
    assert (np.diff(grid) > 0).all() and grid.size <= 60
    np.testing.assert_array_equal(evaluation_grid(5), [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="budget"):
        evaluation_grid(0)


def test_empty_traces_are_refused(small: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no traces"):
        make_figures(small.iloc[:0], tmp_path)


def _capped(traces: pd.DataFrame, method: str, cap: int) -> pd.DataFrame:
    own = traces["method"] == method
    kept = traces[~own | (traces["evaluation"] <= cap)].copy()
    kept.loc[kept["method"] == method, "budget"] = cap
    return validate_trace(kept.reset_index(drop=True), source="capped")


def test_ecdf_figure_draws_the_table(small: pd.DataFrame) -> None:
    traces = _capped(small, "random", 10)
    styles = method_styles(traces["method"].unique())
    ecdf = runtime_ecdf(traces, DEFAULT_RULE, seed=0)
    figure = ecdf_figure(ecdf, styles, DEFAULT_RULE)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0.0, 1.0)
    lines = {line.get_color(): line for line in ax.get_lines()}
    assert set(lines) == {styles[name].colour for name in ("casbo", "cmaes", "random")}
    # each curve is its method's rows of the table, ending at its own budget
    random = lines[styles["random"].colour]
    np.testing.assert_array_equal(
        random.get_xdata(), ecdf.loc[ecdf["method"] == "random", "evaluations"]
    )
    assert max(random.get_xdata()) == 10
    assert "median initial gap" in figure.get_suptitle()


def test_win_matrix_is_drawn_at_matched_budgets(small: pd.DataFrame) -> None:
    traces = _capped(small, "random", 10)
    palette = method_styles(traces["method"].unique())
    figure = win_matrix_figure(traces, palette)
    ax = figure.axes[0]
    assert "matched budgets" in figure.get_suptitle()
    order = list(palette)
    matrix = matched_win_matrix(traces, order).fraction.to_numpy()
    shown = [float(text.get_text()) for text in ax.texts]
    expected = [value for value in matrix.ravel() if np.isfinite(value)]
    np.testing.assert_allclose(shown, np.round(expected, 2))
