"""One look for every figure: observers styled by the plot definitions (colour by family, marker by model), legends
outside the axes, figures made without pyplot (no global state, no window) and drawn by the Agg canvas."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Collection, Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch
import numpy as np

from genfast.metrics.tables import PARTIAL
from genfast.plots.definitions import TOOLBOX_DEFINITIONS, Colour, PlotDefinitions, Style

DPI = 150
"""Resolution of the PNG files."""
FONT_SIZE = 8
"""Points: legends, tick labels and annotations of crowded figures (readable at the figure's printed size)."""
EDGE_COLOUR = (0.3, 0.3, 0.3, 0.4)
"""Thin grey outline of markers and bars, so that light colours (the toolbox's supervised models) stay visible."""
PARTIAL_HATCH = "////"
"""Hatching of a partial model's bars (in EDGE_COLOUR, on the model's colour made lighter, so that it shows on any)."""
_TEXT_LUMINANCE = 150 / 255  # the toolbox writes its light grey (230, 230, 230) models as (150, 150, 150) text
_PARTIAL_LIGHTER = 0.5  # a partial model's bar: its colour this fraction of the way to white


def observer_styles(models: list[str], definitions: PlotDefinitions | None = None,
                    partial: Collection[str] = ()) -> dict[str, Style]:
    """Styles of `models` and of the pooled humans, in legend order (`definitions`: None for the toolbox's). A figure
    of means over datasets passes its `partial` models (Summary.partial_models: their means cover fewer datasets):
    they are labelled PARTIAL, as in the tables, and marked `partial` (see partial_last, value_bars)."""
    styles = (TOOLBOX_DEFINITIONS if definitions is None else definitions).styles(models)
    return {name: replace(style, label=style.label + PARTIAL, partial=True) if name in partial else style
            for name, style in styles.items()}


def partial_last(names: Sequence[str], styles: dict[str, Style]) -> list[str]:
    """`names` (ranked) with the partial models after the others, each group in its own order: ranked apart, as the
    tables rank them."""
    return sorted(names, key=lambda name: styles[name].partial)


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas, independent of pyplot and of the user's backend."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def outside_legend(figure: Figure, handles: Sequence[Artist], labels: Sequence[str], title: str | None = None,
                   below: bool = False) -> Legend:
    """A legend outside every axes of `figure`: right of them, top-aligned, in as many columns as the figure's
    height needs, or (`below`) under them in as many columns as its width allows. Call it after the layout;
    save_figure keeps it."""
    def place(columns: int) -> Legend:
        return figure.legend(handles, labels, loc="upper center" if below else "upper left",
                             bbox_to_anchor=(0.5, 0.0) if below else (1.0, 1.0), ncols=columns, frameon=False,
                             fontsize=FONT_SIZE, title=title, title_fontsize=FONT_SIZE + 1, alignment="left",
                             borderaxespad=0.2)

    legend = place(1)
    box = legend.get_window_extent(figure.canvas.get_renderer())
    if below:
        spacing = legend.columnspacing * FONT_SIZE * figure.dpi / 72
        columns = max(1, min(len(labels), math.floor((figure.bbox.width + spacing) / (box.width + spacing))))
    else:
        columns = math.ceil(box.height / figure.bbox.height)
    if columns > 1:
        legend.remove()
        legend = place(columns)
    return legend


def legend_entries(figure: Figure) -> tuple[list[Artist], list[str]]:
    """The labelled artists of every axes of `figure`, each label once, in the order the axes first show them."""
    entries: dict[str, Artist] = {}
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def save_figure(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png (DPI) and `name`.pdf into `out_dir`, legends included; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    figure.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    return paths


def text_colour(colour: Colour) -> Colour:
    """`colour` for text and thin lines on white: colours lighter than the toolbox's (150, 150, 150) text grey are
    darkened to its luminance (the toolbox's light grey (230, 230, 230) becomes (150, 150, 150))."""
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    if luminance <= _TEXT_LUMINANCE:
        return colour
    return tuple(c * _TEXT_LUMINANCE / luminance for c in colour)  # type: ignore[return-value]


def value_bars(ax: Axes, values: np.ndarray, styles: Sequence[Style]) -> None:
    """Horizontal bars, one per row (first row on top) in its observer's colour, each labelled with its value (three
    decimals); a partial model's bar lighter and hatched (PARTIAL_HATCH), a dotted line above the first one when
    complete rows come before it (partial_last)."""
    y = np.arange(len(values))
    bars = ax.barh(y, values, color=[style.colour for style in styles], height=0.72, edgecolor=EDGE_COLOUR[:3],
                   linewidth=0.4)
    for bar, style in zip(bars, styles):
        if style.partial:
            bar.set_facecolor(tuple(c + (1 - c) * _PARTIAL_LIGHTER for c in style.colour))
            bar.set_hatch(PARTIAL_HATCH)
    first_partial = next((i for i, style in enumerate(styles) if style.partial), 0)
    if first_partial:
        ax.axhline(first_partial - 0.5, color="0.5", linestyle=":", linewidth=0.8)
    for i, value in enumerate(values):
        ax.annotate(f"{value:.3f}", (max(value, 0.0), i), xytext=(2, 0), textcoords="offset points", ha="left",
                    va="center", fontsize=FONT_SIZE - 1, zorder=4)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_ylim(len(values) - 0.5, -0.5)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)


def family_legend(figure: Figure, styles: dict[str, Style], names: Sequence[str]) -> Legend:
    """A legend of the families of `names` (a patch in each family's colour, in the order of `styles`), and a hatched
    patch when a partial model is among them, right of the axes; call it after the layout."""
    shown = set(names)
    families = {style.family: style.legend_colour for name, style in styles.items() if name in shown}
    handles = [Patch(facecolor=c, edgecolor=EDGE_COLOUR[:3], linewidth=0.4) for c in families.values()]
    labels = list(families)
    if any(styles[name].partial for name in names):
        handles.append(Patch(facecolor="white", edgecolor=EDGE_COLOUR[:3], linewidth=0.4, hatch=PARTIAL_HATCH))
        labels.append(f"{PARTIAL.strip()}: lacks a dataset, ranked apart")
    return outside_legend(figure, handles, labels, title="family")
