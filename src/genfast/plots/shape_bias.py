"""The shape-bias plots of Geirhos et al. (2019) as the toolbox draws them: per shape category, the fraction of
shape decisions among cue-conflict decisions that follow shape or texture, each model against the humans; and a
box plot of each observer's 16 per-category shape biases."""
from __future__ import annotations

from matplotlib.figure import Figure
import numpy as np

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.needs import require
from genfast.plots.style import (EDGE_COLOUR, FONT_SIZE, family_legend, legend_entries, new_figure, observer_styles,
                                 outside_legend, text_colour)


def plot_shape_bias(summary: Summary, models: list[str] | None = None,
                    definitions: PlotDefinitions | None = None) -> Figure:
    """Categories on the y axis (ordered by the humans' shape bias), fraction of shape decisions on the x axis
    from 1 (shape, left) to 0 (texture, right); one marker per observer and category, a vertical line at
    each observer's overall shape bias; the legend right of the axes. Styles from `definitions`."""
    require(summary, "shape-bias plot", "cue-conflict")
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions)
    names = [name for name in styles if name in summary.shape_bias]
    per_category = summary.shape_bias_by_category
    order_by = HUMANS if HUMANS in per_category.index else names[0]
    categories = list(per_category.loc[order_by].sort_values(ascending=True, kind="stable").index)
    y = np.arange(len(categories))

    figure = new_figure((7.5, 0.42 * len(categories) + 2.2))
    ax = figure.subplots()
    for boundary in y[:-1] + 0.5:
        ax.axhline(boundary, color="0.85", linewidth=0.6, linestyle=":", zorder=0)
    for name in names:
        style = styles[name]
        overall = summary.shape_bias[name].shape_bias
        ax.axvline(overall, color=style.colour, linewidth=1.2, alpha=0.8, zorder=1)
        values = per_category.loc[name, categories].to_numpy(dtype=float)
        ax.scatter(values, y, s=70, marker=style.marker, color=style.colour, edgecolors=(0.3, 0.3, 0.3, 0.4),
                   linewidths=0.4, zorder=3, clip_on=False, label=f"{style.label} ({overall:.2f})")
    ax.set_xlim(1.03, -0.03)  # markers at exactly 0 or 1 stay clear of the spines
    ax.set_ylim(-0.6, len(categories) - 0.4)
    ax.set_yticks(y, categories)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel("Fraction of 'shape' decisions")
    top = ax.secondary_xaxis("top", functions=(lambda x: 1 - x, lambda x: 1 - x))
    top.set_xlabel("Fraction of 'texture' decisions")
    top.set_xticks(np.linspace(0, 1, 11))
    ax.set_ylabel("Shape category")
    ax.set_title("Shape bias on cue-conflict images")
    figure.tight_layout()
    outside_legend(figure, *legend_entries(figure), title="observer (shape bias)")
    return figure


def plot_shape_bias_boxplot(summary: Summary, models: list[str] | None = None,
                            definitions: PlotDefinitions | None = None) -> Figure:
    """The toolbox's shape-bias box plot: a box per observer (in legend order, the humans last) over its
    per-category shape biases (humans: per category, the mean over subjects), no outliers drawn, boxes and
    labels in the observer's colour; the family legend right of the axes."""
    require(summary, "shape-bias box plot", "cue-conflict")
    styles = observer_styles(summary.models if models is None else models, definitions)
    per_category = summary.shape_bias_by_category
    values = {name: per_category.loc[name] for name in styles if name != HUMANS and name in per_category.index}
    if len(summary.subjects_shape_bias_by_category):
        values[HUMANS] = summary.subjects_shape_bias_by_category
    names = list(values)
    figure = new_figure((max(6.0, 0.22 * len(names) + 1.5), 4.5))
    ax = figure.subplots()
    boxes = ax.boxplot([values[n].dropna().to_numpy(dtype=float) for n in names], patch_artist=True,
                       showfliers=False, widths=0.6, medianprops={"color": "0.15"})
    for box, name in zip(boxes["boxes"], names):
        box.set(facecolor=styles[name].colour, edgecolor=EDGE_COLOUR[:3], linewidth=0.6)
    ax.set_xticks(np.arange(1, len(names) + 1), [styles[n].label for n in names], rotation=90, fontsize=FONT_SIZE)
    for tick, name in zip(ax.get_xticklabels(), names):
        tick.set_color(text_colour(styles[name].colour))
    ax.set_ylabel("shape bias")
    ax.set_ylim(-0.02, 1.02)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("Shape bias over the categories (humans: mean over subjects)", fontsize=10)
    figure.tight_layout()
    family_legend(figure, styles, names)
    return figure
