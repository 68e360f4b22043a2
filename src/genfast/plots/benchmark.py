"""The benchmark's figures as the toolbox draws them: a bar plot per benchmark metric (OOD accuracy, accuracy
difference, observed and error consistency; every model and the pooled humans, best first), a bar plot of the
accuracy per non-parametric dataset, and the six scatter plots of one benchmark metric against another. In the
figures of means over datasets a partial model (lacking a dataset) is labelled PARTIAL, its bar hatched and ranked
after the others, as the tables rank it apart."""
from __future__ import annotations

import itertools
import math

from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from genfast.metrics.benchmark import HUMANLIKE_METRICS, HUMANS
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions, Style
from genfast.plots.needs import require
from genfast.plots.style import (EDGE_COLOUR, FONT_SIZE, family_legend, legend_entries, new_figure,
                                 observer_styles, outside_legend, partial_last, value_bars)

BENCHMARK_METRICS: dict[str, tuple[str, bool]] = {
    "ood_accuracy": ("OOD accuracy", False),
    "accuracy_difference": ("accuracy difference", True),
    "observed_consistency": ("observed consistency", False),
    "error_consistency": ("error consistency", False),
}
"""Each benchmark metric: its axis label (the toolbox's name) and whether lower is better."""
SCATTER_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.combinations(BENCHMARK_METRICS, 2))
"""The toolbox's six scatter plots (x, y): every pair of benchmark metrics, in its order."""
_ROW_HEIGHT = 0.2  # inches per bar
_ACCURACY_DIFFERENCE_LIMIT = 0.15  # the toolbox's axis limit of the accuracy-difference bars


def benchmark_values(summary: Summary, models: list[str] | None = None) -> pd.DataFrame:
    """The benchmark numbers of `models` (None: all) and of the pooled humans: rows observer, columns
    BENCHMARK_METRICS (NaN where a number is missing, e.g. consistency without human subjects)."""
    models = summary.models if models is None else models
    rows = [*models, *([HUMANS] if summary.humans else [])]
    table = pd.DataFrame({"ood_accuracy": summary.ood_accuracy.reindex(rows)}, index=rows)
    for metric in HUMANLIKE_METRICS:
        table[metric] = summary.humanlike[metric].reindex(rows) if metric in summary.humanlike else math.nan
    return table


def _metric(metric: str) -> tuple[str, bool]:
    if metric not in BENCHMARK_METRICS:
        raise ValueError(f"benchmark metric {metric!r} is not one of {', '.join(BENCHMARK_METRICS)}")
    return BENCHMARK_METRICS[metric]


def _bar_figure(values: pd.Series, styles: dict[str, Style], metric: str, title: str) -> Figure:
    """One horizontal bar per observer of `values` (of `metric`), best on top (the toolbox's order; partial models
    ranked apart, after the others), coloured by family; value axis from min(0, lowest) to the highest rounded up
    to a tenth (accuracy difference: to at least 0.15, the toolbox's limit)."""
    label, lower_is_better = _metric(metric)
    ranked = values.dropna().sort_values(ascending=lower_is_better, kind="stable")
    names = partial_last(list(ranked.index), styles)
    ranked = ranked[names]
    figure = new_figure((6.5, _ROW_HEIGHT * len(names) + 1.3))
    ax = figure.subplots()
    value_bars(ax, ranked.to_numpy(dtype=float), [styles[n] for n in names])
    top = max(0.0, math.ceil(ranked.max() * 10) / 10)
    if metric == "accuracy_difference":
        top = max(top, _ACCURACY_DIFFERENCE_LIMIT)
    ax.set_xlim(min(0.0, ranked.min()), top)
    ax.set_yticks(np.arange(len(names)), [styles[n].label for n in names])
    ax.set_xlabel(label)
    ax.set_title(f"{title} ({'lower' if lower_is_better else 'higher'} is better)", fontsize=10)
    figure.tight_layout()
    family_legend(figure, styles, names)
    return figure


def plot_benchmark_bars(summary: Summary, metric: str, models: list[str] | None = None,
                        definitions: PlotDefinitions | None = None) -> Figure:
    """The toolbox's benchmark bar plot of `metric` (a key of BENCHMARK_METRICS): the mean over datasets of every
    model and of the pooled humans, best on top, then the partial models (hatched, ranked apart); styles and names
    from `definitions`."""
    label = _metric(metric)[0]
    require(summary, f"{label} bar plot", "models", *(("humans",) if metric in HUMANLIKE_METRICS else ()))
    styles = observer_styles(summary.models if models is None else models, definitions, summary.partial_models)
    values = benchmark_values(summary, models)[metric]
    return _bar_figure(values, styles, metric, f"Benchmark: {label}, mean over datasets")


def plot_dataset_accuracy_bars(summary: Summary, dataset: str, models: list[str] | None = None,
                               definitions: PlotDefinitions | None = None) -> Figure:
    """The toolbox's accuracy bar plot of one dataset (its nonparametric-benchmark-barplot): every model and the
    pooled humans that have it, best on top (no partial mark: the accuracy is of this dataset alone)."""
    if dataset not in summary.datasets:
        raise ValueError(f"dataset {dataset!r} is not in the raw data (found: {', '.join(summary.datasets)})")
    require(summary, f"{dataset} accuracy bar plot", "models")
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions)
    names = [*models, *([HUMANS] if summary.humans else [])]
    values = summary.ood_accuracy_by_dataset[dataset].reindex(names)
    return _bar_figure(values, styles, "ood_accuracy", f"{dataset}: accuracy")


def plot_benchmark_scatter(summary: Summary, models: list[str] | None = None,
                           definitions: PlotDefinitions | None = None) -> Figure:
    """The toolbox's six scatter plots, one panel per pair of SCATTER_PAIRS: a marker per model and for the pooled
    humans; y from min(0, lowest) (OOD accuracy vs error consistency: -0.03) to the highest rounded up to a tenth;
    dashed, what independent observers would give: observed consistency c_exp = a h + (1 - a)(1 - h) at OOD
    accuracy a with the humans' h, error consistency 0. The legend right of the panels (partial models labelled
    PARTIAL)."""
    require(summary, "benchmark scatter plot", "models", "humans")
    styles = observer_styles(summary.models if models is None else models, definitions, summary.partial_models)
    table = benchmark_values(summary, [name for name in styles if name != HUMANS])  # in legend order
    human_accuracy = float(table.loc[HUMANS, "ood_accuracy"])
    figure = new_figure((11.0, 7.0))
    axes = figure.subplots(2, 3)
    for ax, (x_metric, y_metric) in zip(axes.flat, SCATTER_PAIRS):
        shown = table[[x_metric, y_metric]].dropna()
        for name, (x, y) in shown.iterrows():
            style = styles[name]
            ax.plot(x, y, linestyle="none", marker=style.marker, color=style.colour, markersize=6,
                    markeredgecolor=EDGE_COLOUR, markeredgewidth=0.5, label=style.label, clip_on=False, zorder=3)
        expected_ec = (x_metric, y_metric) == ("ood_accuracy", "error_consistency")
        ax.set_ylim(min(-0.03 if expected_ec else 0.0, shown[y_metric].min()),
                    math.ceil(shown[y_metric].max() * 10) / 10)
        if x_metric == "ood_accuracy" and y_metric in ("observed_consistency", "error_consistency"):
            left, right = ax.get_xlim()
            a = np.linspace(left, right, 100)
            expected = a * human_accuracy + (1 - a) * (1 - human_accuracy) if not expected_ec else 0 * a
            ax.plot(a, expected, linestyle="dashed", color="gray", linewidth=0.8)
            middle = (left + right) / 2
            y_text = 0.01 if expected_ec else middle * human_accuracy + (1 - middle) * (1 - human_accuracy) - 0.03
            ax.text(middle, y_text, "expected", color="gray", ha="center", fontsize=FONT_SIZE)
            ax.set_xlim(left, right)
        ax.set_xlabel(BENCHMARK_METRICS[x_metric][0])
        ax.set_ylabel(BENCHMARK_METRICS[y_metric][0])
        ax.tick_params(labelsize=FONT_SIZE)
        ax.spines[["top", "right"]].set_visible(False)
    figure.suptitle("Benchmark metrics against each other (mean over datasets; dashed: independent observers)",
                    fontsize=10)
    figure.tight_layout()
    outside_legend(figure, *legend_entries(figure))
    return figure
