"""Accuracy against distortion level, one small panel per parametric dataset: humans (pooled, with the range
of individual subjects) and each model."""
from __future__ import annotations

import math

from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.datasets import DATASETS
from genfast.metrics.rawdata import is_human
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.style import FONT_SIZE, legend_entries, new_figure, observer_styles, outside_legend

CHANCE = 1 / 16


def plot_accuracy_by_condition(summary: Summary, models: list[str] | None = None, columns: int = 4,
                               definitions: PlotDefinitions | None = None) -> Figure:
    """A grid of panels, one per parametric dataset present; conditions in the toolbox's order (increasing
    distortion), labelled with their levels; dotted line at chance (1/16); the legend below the grid. Styles from
    `definitions`."""
    models = summary.models if models is None else models
    datasets = [d for d in summary.datasets if DATASETS[d].parametric]
    if not datasets:
        raise ValueError("accuracy plot: the raw data has no parametric dataset")
    styles = observer_styles(models, definitions)
    table = summary.accuracy_by_condition
    rows = math.ceil(len(datasets) / columns)
    ncols = min(columns, len(datasets))
    figure = new_figure((3.3 * ncols, 2.9 * rows + 0.6))
    axes = figure.subplots(rows, ncols, squeeze=False, sharey=True)
    for ax, dataset in zip(axes.flat, datasets):
        info = DATASETS[dataset]
        x = np.arange(len(info.conditions))
        in_dataset = table.loc[table["dataset"] == dataset]

        def values(observer_rows: pd.DataFrame) -> np.ndarray:
            by_condition = observer_rows.set_index("condition")["accuracy"]
            return by_condition.reindex(list(info.condition_keys)).to_numpy(dtype=float)

        subjects = in_dataset.loc[in_dataset["observer"].map(is_human)]
        if len(subjects):
            per_subject = pd.DataFrame([values(group) for _, group in subjects.groupby("observer")])
            ax.fill_between(x, per_subject.min().to_numpy(), per_subject.max().to_numpy(),
                            color=styles[HUMANS].colour, alpha=0.15, linewidth=0, label="human subjects (range)")
        for name in styles:
            rows_of = in_dataset.loc[in_dataset["observer"] == name]
            if len(rows_of):
                style = styles[name]
                ax.plot(x, values(rows_of), marker=style.marker, color=style.colour, markersize=5, linewidth=1.2,
                        label=style.label)
        ax.axhline(CHANCE, color="0.5", linestyle=":", linewidth=1)
        ax.set_xticks(x, [c.label for c in info.conditions], rotation=45 if len(x) > 4 else 0, fontsize=FONT_SIZE)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel(info.xlabel, fontsize=FONT_SIZE)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", color="0.92")
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("Accuracy")
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    figure.suptitle("Accuracy against distortion level (16-class; dotted: chance)", y=0.995)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    outside_legend(figure, *legend_entries(figure), below=True)
    return figure
