"""The toolbox's matrices: error consistency of every two observers per non-parametric dataset (models in the order
of the plot definitions, then each human subject), and confusion matrices per dataset, condition and observer
(the models and the pooled humans: percent of each presented category answered as each decision). With many models
the figures show the `top` models most error-consistent with the human subjects on the dataset; the metrics JSON
holds every observer's numbers."""
from __future__ import annotations

import math

from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.datasets import DATASETS, SINGLE_CONDITION
from genfast.metrics.rawdata import is_human
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions, Style
from genfast.plots.needs import require
from genfast.plots.style import FONT_SIZE, family_legend, new_figure, observer_styles, text_colour

MATRIX_TOP = 40
"""Models an error-consistency matrix shows by default (with every human subject)."""
CONFUSION_TOP = 6
"""Models a figure of confusion matrices shows by default (with the pooled humans)."""
NO_RESPONSE = "na"
"""The toolbox's first row of every confusion matrix: trials without a decision."""
_CELL = 0.2  # inches per error-consistency cell
_PANEL = 2.0  # inches per confusion matrix
_COLOURBAR = 1.0  # inches right of the confusion matrices for their colour bar


def top_models(summary: Summary, dataset: str, models: list[str], top: int | None) -> list[str]:
    """The `top` of `models` (None: all) most error-consistent with the human subjects on `dataset` (most accurate
    without subjects), in the order of `models`."""
    if top is not None and top < 1:
        raise ValueError(f"top must be a positive number of models, got {top}")
    if top is None or len(models) <= top:
        return list(models)
    if summary.humans:
        by_dataset = summary.humanlike_by_dataset["error_consistency"]
        score = {m: by_dataset.get((m, dataset), -math.inf) for m in models}
    else:
        score = {m: summary.accuracy[dataset].get(m, -math.inf) for m in models}
    kept = set(sorted(models, key=lambda m: -score[m])[:top])
    return [m for m in models if m in kept]


def _shown(summary: Summary, dataset: str, top: int | None, models: list[str] | None,
           definitions: PlotDefinitions | None) -> tuple[dict[str, Style], list[str], str]:
    """The styles of the models and the humans, the shown models of `dataset` (top_models, in legend order), and
    a note for the title when some are left out."""
    styles = observer_styles(summary.models if models is None else models, definitions)
    present = set(summary.accuracy[dataset].dropna().index)
    in_dataset = [m for m in styles if m != HUMANS and m in present]
    shown = top_models(summary, dataset, in_dataset, top)
    ranked = "most error-consistent with the subjects" if summary.humans else "most accurate"
    note = "" if len(shown) == len(in_dataset) else \
        f"; the {len(shown)} of {len(in_dataset)} models {ranked} (all in the metrics JSON)"
    return styles, shown, note


def plot_error_consistency_matrix(summary: Summary, dataset: str, models: list[str] | None = None,
                                  top: int | None = MATRIX_TOP, definitions: PlotDefinitions | None = None) -> Figure:
    """Error consistency of every two observers of `dataset` over all its trials (the toolbox's matrix): the `top`
    models (None: all) in legend order, then every human subject; colour from -1 (blue) through 0 (white) to 1
    (red); tick labels in each observer's colour, the family legend at the right."""
    require(summary, "error-consistency matrix", "humans")
    if dataset not in summary.error_consistency_matrices:
        raise ValueError(f"error-consistency matrix: dataset {dataset!r} has none (only the non-parametric datasets "
                         f"with human subjects: {', '.join(summary.error_consistency_matrices) or 'none here'})")
    matrix = summary.error_consistency_matrices[dataset]
    styles, shown, note = _shown(summary, dataset, top, models, definitions)
    names = shown + [s for s in matrix.index if is_human(s)]
    values = matrix.loc[names, names].to_numpy(dtype=float)
    side = _CELL * len(names)
    figure = new_figure((side + 4.0, side + 2.0))
    ax = figure.subplots()
    image = ax.imshow(values, cmap="RdBu_r", norm=Normalize(-1.0, 1.0), interpolation="nearest")
    ax.set_xticks(np.arange(len(names)) + 0.5, minor=True)
    ax.set_yticks(np.arange(len(names)) + 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    labels = [styles[n].label if n in styles else n for n in names]
    colours = [text_colour(styles[HUMANS if is_human(n) else n].colour) for n in names]
    ax.set_xticks(np.arange(len(names)), labels, rotation=90, fontsize=FONT_SIZE)
    ax.set_yticks(np.arange(len(names)), labels, fontsize=FONT_SIZE)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for tick, colour in zip(ticks, colours):
            tick.set_color(colour)
    ax.spines[:].set_visible(False)
    figure.colorbar(image, ax=ax, shrink=0.5, label="Error consistency (kappa)")
    ax.set_title(f"Error consistency on {dataset}{note}", fontsize=10)
    figure.tight_layout()
    family_legend(figure, styles, [*shown, HUMANS])
    return figure


def confusion_percent(summary: Summary, dataset: str,
                      observers: list[str] | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """The toolbox's confusion matrices of `observers` (None: all) on `dataset`, keyed by (condition, observer):
    rows the decisions (NO_RESPONSE, then every category presented or answered in the dataset, sorted), columns the
    presented categories (sorted), each column in percent of its trials (from Summary.confusion, the counts)."""
    counts = summary.confusion.loc[summary.confusion["dataset"] == dataset]
    presented = sorted(counts["category"].unique())
    decisions = [NO_RESPONSE, *sorted(set(presented) | set(counts["object_response"].unique()) - {NO_RESPONSE})]
    if observers is not None:
        counts = counts.loc[counts["observer"].isin(observers)]
    tables = counts.pivot_table(index=["condition", "observer", "object_response"], columns="category",
                                values="count", aggfunc="sum", fill_value=0)
    percent = {}
    for key, table in tables.groupby(level=["condition", "observer"], sort=False):
        table = table.droplevel(["condition", "observer"]).reindex(index=decisions, columns=presented, fill_value=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            percent[key] = 100.0 * table / table.sum(axis=0)
    return percent


def plot_confusion_matrices(summary: Summary, dataset: str, models: list[str] | None = None,
                            top: int | None = CONFUSION_TOP, definitions: PlotDefinitions | None = None) -> Figure:
    """The toolbox's confusion matrices of `dataset`: one panel per observer (the `top` models in legend order,
    then the pooled humans) and condition (a row per observer, a column per condition; a one-condition dataset
    wraps observers four to a row); from white (0%) to the humans' red (100%)."""
    if dataset not in summary.datasets:
        raise ValueError(f"confusion matrices: dataset {dataset!r} is not in the raw data (found: "
                         f"{', '.join(summary.datasets)})")
    styles, shown, note = _shown(summary, dataset, top, models, definitions)
    observers = shown + ([HUMANS] if summary.humans else [])
    info = DATASETS[dataset]
    conditions = list(zip(info.condition_keys, (c.label for c in info.conditions))) or [(SINGLE_CONDITION, "")]
    panels = [(o, c) for o in observers for c in conditions]
    columns = len(conditions) if len(conditions) > 1 else min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    left, bottom, top, gap, title = 0.85, 0.9, 0.5, 0.15, 0.3  # inches: margins, space between and above panels
    width = left + columns * _PANEL + (columns - 1) * gap + _COLOURBAR
    height = bottom + rows * _PANEL + (rows - 1) * title + top
    figure = new_figure((width, height))
    axes = figure.subplots(rows, columns, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - _COLOURBAR / width, "bottom": bottom / height, "top": 1 - top / height,
        "wspace": gap / _PANEL, "hspace": title / _PANEL})
    colour_map = LinearSegmentedColormap.from_list("confusion", ["white", styles[HUMANS].colour])
    tables = confusion_percent(summary, dataset, observers)
    empty = next(iter(tables.values())) * np.nan  # an observer without trials in a condition: a blank panel
    for i, (ax, (observer, (condition, level))) in enumerate(zip(axes.flat, panels)):
        table = tables.get((condition, observer), empty)
        image = ax.imshow(table.to_numpy(dtype=float), cmap=colour_map, norm=Normalize(0.0, 100.0),
                          interpolation="nearest", aspect="auto")
        ax.tick_params(length=0)
        if i % columns == 0:
            ax.set_yticks(np.arange(table.shape[0]), list(table.index), fontsize=FONT_SIZE - 1)
            ax.set_ylabel("Decision", fontsize=FONT_SIZE)
        else:
            ax.set_yticks([])
        if i + columns >= len(panels):  # no panel below
            ax.set_xticks(np.arange(table.shape[1]), list(table.columns), rotation=90, fontsize=FONT_SIZE - 1)
            ax.set_xlabel("Presented category", fontsize=FONT_SIZE)
        else:
            ax.set_xticks([])
        blank = " (no trials)" if (condition, observer) not in tables else ""
        ax.set_title(f"{styles[observer].label}" + (f", {level}" if level else "") + blank, fontsize=FONT_SIZE - 1,
                     color=text_colour(styles[observer].colour))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    levels = f"; panels: observer, {info.xlabel.lower()}" if info.parametric else ""
    figure.suptitle(f"Confusion matrices on {dataset}: percent of each presented category's trials per decision"
                    f"{levels}{note}", fontsize=10,
                    y=1 - 0.15 / height)
    bar = figure.add_axes((1 - 0.7 * _COLOURBAR / width, 0.3, 0.12 / width, 0.4))
    figure.colorbar(image, cax=bar, label="percent of presented category")
    return figure
