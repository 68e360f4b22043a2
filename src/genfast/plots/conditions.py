"""Numbers against distortion level, one small panel per parametric dataset (the toolbox's accuracy, entropy and
error-consistency line plots): each model, the pooled humans, and the range of the individual subjects."""
from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.datasets import DATASETS
from genfast.metrics.rawdata import is_human
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.needs import require
from genfast.plots.style import EDGE_COLOUR, FONT_SIZE, legend_entries, new_figure, observer_styles, outside_legend

CHANCE = 1 / 16
MAX_ENTROPY = math.log2(16)
"""Response entropy of an observer answering the 16 classes uniformly (bits)."""


@dataclass(frozen=True)
class ConditionMetric:
    """How the toolbox draws one number per (observer, dataset, condition) against condition."""

    ylabel: str
    ylim: tuple[float, float]  # extended below where a value is lower (error consistency can be below -0.2)
    reference: float  # a dotted horizontal line (chance, or independent observers)
    reference_label: str
    needs_humans: bool = False


METRICS: dict[str, ConditionMetric] = {
    "accuracy": ConditionMetric("Classification accuracy", (0.0, 1.0), CHANCE, "chance, 1/16"),
    "entropy": ConditionMetric("Response distr. entropy [bits]", (0.0, MAX_ENTROPY), MAX_ENTROPY,
                               "uniform responses, 4 bits"),
    "error_consistency": ConditionMetric("Error consistency (kappa)", (-0.2, 1.0), 0.0, "independent observers, 0",
                                         needs_humans=True),
}
"""The metrics drawn against condition: the toolbox's SixteenClassAccuracy, Entropy and ErrorConsistency plots
(labels, y limits and dotted lines as it draws them)."""


def _spec(metric: str) -> ConditionMetric:
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    return METRICS[metric]


def by_condition(summary: Summary, metric: str) -> pd.DataFrame:
    """`metric` (a key of METRICS) per (dataset, condition, observer): columns dataset, condition, observer, value."""
    _spec(metric)
    if metric == "accuracy":
        frame = summary.accuracy_by_condition
    elif metric == "entropy":
        frame = summary.entropy_by_condition
    else:
        frame = summary.humanlike_by_condition.reset_index()
    return frame[["dataset", "condition", "observer", metric]].rename(columns={metric: "value"})


def plot_by_condition(summary: Summary, metric: str, models: list[str] | None = None, columns: int = 4,
                      definitions: PlotDefinitions | None = None) -> Figure:
    """A grid of panels, one per parametric dataset present, of `metric` (a key of METRICS); conditions in the
    toolbox's order (increasing distortion), labelled with their levels; the metric's dotted reference line; the
    band spans the individual human subjects; the legend below the grid. Styles from `definitions`."""
    spec = _spec(metric)
    require(summary, f"{metric.replace('_', ' ')} plot", "parametric", *(("humans",) if spec.needs_humans else ()))
    datasets = [d for d in summary.datasets if DATASETS[d].parametric]
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions)
    table = by_condition(summary, metric)
    rows = math.ceil(len(datasets) / columns)
    ncols = min(columns, len(datasets))
    figure = new_figure((3.3 * ncols, 2.9 * rows + 0.6))
    axes = figure.subplots(rows, ncols, squeeze=False, sharey=True)
    margin = 0.01 * spec.ylim[1]  # the toolbox's: markers at the limits stay whole
    for ax, dataset in zip(axes.flat, datasets):
        info = DATASETS[dataset]
        x = np.arange(len(info.conditions))
        in_dataset = table.loc[table["dataset"] == dataset]

        def values(observer_rows: pd.DataFrame) -> np.ndarray:
            by_key = observer_rows.set_index("condition")["value"]
            return by_key.reindex(list(info.condition_keys)).to_numpy(dtype=float)

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
                        markeredgecolor=EDGE_COLOUR, markeredgewidth=0.5, label=style.label)
        ax.axhline(spec.reference, color="0.5", linestyle=":", linewidth=1)
        ax.set_xticks(x, [c.label for c in info.conditions], rotation=45 if len(x) > 4 else 0, fontsize=FONT_SIZE)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel(info.xlabel, fontsize=FONT_SIZE)
        ax.set_ylim(min(spec.ylim[0], in_dataset["value"].min()) - margin, spec.ylim[1] + margin)  # min: NaN-safe
        ax.grid(axis="y", color="0.92")
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(spec.ylabel)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    figure.suptitle(f"{spec.ylabel} against distortion level (dotted: {spec.reference_label})", y=0.995)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    outside_legend(figure, *legend_entries(figure), below=True)
    return figure


def plot_accuracy_by_condition(summary: Summary, models: list[str] | None = None, columns: int = 4,
                               definitions: PlotDefinitions | None = None) -> Figure:
    """16-class accuracy against condition (the toolbox's accuracy plot); see plot_by_condition."""
    return plot_by_condition(summary, "accuracy", models, columns, definitions)


def plot_entropy_by_condition(summary: Summary, models: list[str] | None = None, columns: int = 4,
                              definitions: PlotDefinitions | None = None) -> Figure:
    """Response entropy against condition (the toolbox's entropy plot; humans: mean over subjects)."""
    return plot_by_condition(summary, "entropy", models, columns, definitions)


def plot_error_consistency_by_condition(summary: Summary, models: list[str] | None = None, columns: int = 4,
                                        definitions: PlotDefinitions | None = None) -> Figure:
    """Error consistency with the human subjects against condition (the toolbox's error-consistency line plot:
    a model's mean over subjects; humans: each subject's mean against the others, averaged)."""
    return plot_by_condition(summary, "error_consistency", models, columns, definitions)
