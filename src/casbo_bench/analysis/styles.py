"""How every figure shows a method, its bands and its legend: the one place of the styles.

**One style per method.** :func:`method_styles` gives each method a :class:`Style`, a
(colour, marker, line style) triple that is unique among the methods drawn and the same in
every figure of every kind (convergence curves, molecule scores, and any figure to come):

- the default config's ten methods have fixed styles (:data:`METHOD_STYLES`): ten colours,
  ten markers, and the line style of the method's scope, solid for methods that search every
  injected noise and dashed for those that search the initial latent only;
- any other label takes the first free *spare* style in sorted order of the labels passed
  (pass every method of a run, so a label keeps its style across the run's figures). A spare
  style pairs one of the ten colours with a marker and a line style no fixed method uses
  (:data:`SPARE_KINDS`), so there are 30 spares; beyond 40 methods styles repeat, with a
  warning.

Readable under colour-vision deficiency, by construction: the ten colours (from the
Okabe-Ito and Paul Tol palettes) stay at least 14 CIEDE2000 units apart after a simulated
deuteranopia (colorspacious ``sRGB1+CVD``, deuteranomaly at severity 100); two methods of one
colour differ in both marker and line style. So any two styles differ by CIEDE2000 >= 10
after the simulation, or in both marker and line style (tests/analysis/test_styles.py checks
every pair of the 40 styles).

**One description of the bands.** Every band drawn around a median curve is a percentile
bootstrap confidence interval of the median over seeds (never an interquartile range), and
every figure says so in the same words, :func:`band_description`, as its legend's title.

**Legends inside the figure.** :func:`figure_legend` puts the legend below the panels (a
figure legend under constrained layout) with as many columns as fit the figure's width;
:func:`clipped_artists` lists what a drawn figure lets stick out of its own box, which
:func:`casbo_bench.analysis.figures.save_figure` checks for every figure it writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.transforms import BboxBase

logger = logging.getLogger(__name__)

LineStyle = Literal["-", "--", ":", "-."] | tuple[float, tuple[float, ...]]
"""A matplotlib line style: a name (``"-"``, ``"--"``, ...) or ``(offset, on-off sequence)``."""

SOLID: LineStyle = "-"
DASHED: LineStyle = "--"
STEERED: LineStyle = (0.0, (4.0, 1.5, 1.0, 1.5))
"""The line styles of the fixed methods: solid searches every noise, dashed the latent only,
dash-dot the steering methods (which run the sampler one step at a time)."""

MARKER_SIZE = 3.0
"""Marker size in points (the figures' lines are 1.2 pt wide)."""

MARKER_SPACING = 0.12
"""Markers are placed every this fraction of the axes' diagonal along a line (matplotlib's
float ``markevery``: equal visual spacing on linear and log axes alike)."""

BLUE, CYAN, INDIGO, OCHRE = "#0077BB", "#33BBEE", "#332288", "#CCBB44"
BLUISH_GREEN, GREY, PINK = "#009E73", "#666666", "#CC79A7"
VERMILION, GREEN, BLACK = "#D55E00", "#117733", "#000000"

COLOURS: tuple[str, ...] = (
    BLUE,
    CYAN,
    INDIGO,
    OCHRE,
    BLUISH_GREEN,
    GREY,
    PINK,
    VERMILION,
    GREEN,
    BLACK,
)
"""The ten colours (Paul Tol's vibrant blue, cyan, muted indigo, bright yellow darkened to
ochre, muted green; Okabe-Ito's bluish green, reddish purple, vermilion, black; a 40% grey),
pairwise at least 14 CIEDE2000 units apart after a simulated deuteranopia, and at least 29
from the white background."""


@dataclass(frozen=True)
class Style:
    """How one method is drawn.

    Attributes:
        colour: a ``#rrggbb`` colour.
        marker: a matplotlib marker.
        linestyle: a matplotlib line style.
    """

    colour: str
    marker: str
    linestyle: LineStyle

    def line_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot`` for a curve in this style, markers spaced
        evenly along it (staggered by marker, so two curves on top of each other still show
        both markers)."""
        offset = MARKER_SPACING * (_MARKER_ORDER.index(self.marker) % 5) / 5
        return {
            "color": self.colour,
            "marker": self.marker,
            "linestyle": self.linestyle,
            "markersize": MARKER_SIZE,
            "markevery": (offset, MARKER_SPACING),
        }

    def handle(self, label: str) -> Line2D:
        """A legend entry: a short line with one marker, labelled ``label``."""
        return Line2D(
            [],
            [],
            color=self.colour,
            marker=self.marker,
            linestyle=self.linestyle,
            markersize=MARKER_SIZE,
            label=label,
        )


METHOD_STYLES: dict[str, Style] = {
    "casbo": Style(BLUE, "o", SOLID),
    "casbo-diag": Style(CYAN, "s", SOLID),
    "casbo-diag-1d": Style(INDIGO, "D", SOLID),
    "casbo-latent": Style(PINK, "^", DASHED),
    "cmaes": Style(VERMILION, "p", DASHED),
    "cmaes-joint": Style(OCHRE, "P", SOLID),
    "xnes": Style(BLUISH_GREEN, "X", SOLID),
    "turbo": Style(GREEN, "h", DASHED),
    "random": Style(GREY, "v", SOLID),
    "random-latent": Style(BLACK, "*", DASHED),
    # Ten colours for twelve methods: the steering methods repeat two, with a marker and a
    # line style no other method has.
    "smc": Style(VERMILION, "8", STEERED),
    "svdd": Style(BLUISH_GREEN, "H", STEERED),
}
"""The default config's methods in plotting order, each with its fixed style."""

SPARE_KINDS: tuple[tuple[str, LineStyle], ...] = (
    ("<", ":"),
    (">", "-."),
    ("d", (0.0, (3.0, 1.0, 1.0, 1.0, 1.0, 1.0))),
)
"""(marker, line style) pairs of the spare styles: no fixed method uses any of these markers
or line styles, and no two pairs share either."""

_MARKER_ORDER: tuple[str, ...] = (
    *(style.marker for style in METHOD_STYLES.values()),
    *(marker for marker, _ in SPARE_KINDS),
)

SPARE_STYLES: tuple[Style, ...] = tuple(
    Style(colour, marker, linestyle) for marker, linestyle in SPARE_KINDS for colour in COLOURS
)
"""The styles of methods outside :data:`METHOD_STYLES`, in the order they are handed out."""


def method_styles(methods: Iterable[str]) -> dict[str, Style]:
    """Method -> :class:`Style`: the fixed methods first (in :data:`METHOD_STYLES`' order),
    then the others in sorted order, each with the next spare style.

    A fixed method's style never depends on the other methods; another label's depends on
    the labels outside the table that are passed with it, so pass every method of a run.
    """
    names = set(methods)
    styles = {name: style for name, style in METHOD_STYLES.items() if name in names}
    others = sorted(names - set(METHOD_STYLES))
    if len(others) > len(SPARE_STYLES):
        logger.warning(
            "%d methods outside the fixed styles, %d spare styles: some styles repeat",
            len(others),
            len(SPARE_STYLES),
        )
    for index, name in enumerate(others):
        styles[name] = SPARE_STYLES[index % len(SPARE_STYLES)]
    return styles


def band_description(confidence: float) -> str:
    """The words every figure uses for a median curve and its band (its legend's title)."""
    return f"line: median over seeds; band: {confidence:.0%} bootstrap CI of the median"


def figure_legend(
    figure: Figure, handles: Sequence[Artist], title: str | None = None, max_columns: int = 5
) -> Legend:
    """A legend below the panels of ``figure`` (constrained layout), in as many columns (at
    most ``max_columns``) as fit the figure's width; the figure grows by the legend's height,
    so the panels keep theirs.

    The legend is measured with the figure's renderer; one too wide even in one column is
    kept in one column (:func:`clipped_artists` then reports it).
    """
    renderer = _renderer(figure)
    columns = max(1, min(len(handles), max_columns))
    while True:
        legend = figure.legend(
            handles=list(handles),
            loc="outside lower center",
            ncols=columns,
            frameon=False,
            title=title,
        )
        extent = legend.get_window_extent(renderer)
        if columns == 1 or extent.width <= figure.bbox.width:
            break
        legend.remove()
        columns -= 1
    width, height = figure.get_size_inches()
    figure.set_size_inches(width, height + extent.height / figure.dpi)
    return legend


def _renderer(figure: Figure) -> Any:
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    return canvas.get_renderer()


def clipped_artists(figure: Figure, tolerance: float = 1.0, renderer: Any = None) -> list[str]:
    """What sticks out of ``figure``'s own box once it is drawn: each legend and, when some
    other artist (a title, a tick label) does, the figure's whole drawn extent.

    Args:
        figure: the figure, laid out as it will be saved.
        tolerance: slack in display units (pixels of the renderer).
        renderer: the renderer to draw with (default: the figure's Agg renderer, which
            measures text as the PDF and PNG writers do).

    Returns:
        One line per artist outside the figure (empty when nothing is clipped).
    """
    renderer = renderer if renderer is not None else _renderer(figure)
    figure.draw(renderer)
    box = figure.bbox
    legends = list(figure.legends) + [
        legend for ax in figure.axes if (legend := ax.get_legend()) is not None
    ]
    found = [
        f"legend {_describe(legend.get_window_extent(renderer))} outside the figure "
        f"{_describe(box)}"
        for legend in legends
        if not _inside(legend.get_window_extent(renderer), box, tolerance)
    ]
    drawn = figure.get_tightbbox(renderer).transformed(figure.dpi_scale_trans)
    if not _inside(drawn, box, tolerance):
        found.append(f"the drawn artists {_describe(drawn)} extend outside {_describe(box)}")
    return found


def _inside(inner: BboxBase, outer: BboxBase, tolerance: float) -> bool:
    return bool(
        inner.x0 >= outer.x0 - tolerance
        and inner.y0 >= outer.y0 - tolerance
        and inner.x1 <= outer.x1 + tolerance
        and inner.y1 <= outer.y1 + tolerance
    )


def _describe(box: BboxBase) -> str:
    return f"[{box.x0:.0f}, {box.x1:.0f}] x [{box.y0:.0f}, {box.y1:.0f}] px"
