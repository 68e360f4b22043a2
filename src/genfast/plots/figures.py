"""Every figure genfast draws, by name (the toolbox's plot types, and genfast's own consistency summary), and
`plot`, the toolbox's `plot(plot_types, ...)` for a notebook: figures of a raw-data folder or a Summary."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from matplotlib.figure import Figure

from genfast.metrics.measure import measure
from genfast.metrics.summary import Summary
from genfast.plots.benchmark import (BENCHMARK_METRICS, plot_benchmark_bars, plot_benchmark_scatter,
                                     plot_dataset_accuracy_bars)
from genfast.plots.conditions import (plot_accuracy_by_condition, plot_entropy_by_condition,
                                      plot_error_consistency_by_condition)
from genfast.plots.consistency import plot_consistency
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.matrices import plot_confusion_matrices, plot_error_consistency_matrix
from genfast.plots.needs import NONPARAMETRIC_ACCURACY_DATASETS, missing
from genfast.plots.shape_bias import plot_shape_bias, plot_shape_bias_boxplot
from genfast.plots.style import save_figure

Draw = Callable[[Summary, PlotDefinitions | None], dict[str, tuple[str, Figure]]]


@dataclass(frozen=True)
class FigureFamily:
    """A kind of figure: what it needs of the raw data (keys of genfast.plots.needs.NEEDS) and how to draw it, as
    one or more figures keyed by file name, each with its title."""

    needs: tuple[str, ...]
    draw: Draw


class Drawn(NamedTuple):
    """One figure drawn: its file name (no suffix), its title in the summary page, the figure."""

    name: str
    title: str
    figure: Figure


def _single(name: str, title: str, plot: Callable[..., Figure]) -> Draw:
    return lambda summary, definitions: {name: (title, plot(summary, definitions=definitions))}


def _benchmark_bars(summary: Summary, definitions: PlotDefinitions | None) -> dict[str, tuple[str, Figure]]:
    return {f"benchmark-{metric.replace('_', '-')}": (f"Benchmark: {label}",
                                                      plot_benchmark_bars(summary, metric, definitions=definitions))
            for metric, (label, _) in BENCHMARK_METRICS.items() if metric == "ood_accuracy" or summary.humans}


def _dataset_accuracy_bars(summary: Summary, definitions: PlotDefinitions | None) -> dict[str, tuple[str, Figure]]:
    return {f"accuracy-{dataset}": (f"Accuracy on {dataset}",
                                    plot_dataset_accuracy_bars(summary, dataset, definitions=definitions))
            for dataset in NONPARAMETRIC_ACCURACY_DATASETS if dataset in summary.datasets}


def _error_consistency_matrices(summary: Summary,
                                definitions: PlotDefinitions | None) -> dict[str, tuple[str, Figure]]:
    return {f"error-consistency-matrix-{dataset}": (f"Error-consistency matrix: {dataset}",
                                                    plot_error_consistency_matrix(summary, dataset,
                                                                                  definitions=definitions))
            for dataset in summary.error_consistency_matrices}


def _confusion_matrices(summary: Summary, definitions: PlotDefinitions | None) -> dict[str, tuple[str, Figure]]:
    return {f"confusion-matrix-{dataset}": (f"Confusion matrices: {dataset}",
                                            plot_confusion_matrices(summary, dataset, definitions=definitions))
            for dataset in summary.datasets}


FIGURES: dict[str, FigureFamily] = {
    "shape-bias": FigureFamily(("cue-conflict",), lambda summary, definitions: {
        "shape-bias": ("Shape bias per category", plot_shape_bias(summary, definitions=definitions)),
        "shape-bias-boxplot": ("Shape bias per category, as box plots",
                               plot_shape_bias_boxplot(summary, definitions=definitions))}),
    "accuracy-by-condition": FigureFamily(("parametric",), _single(
        "accuracy-by-condition", "Accuracy against distortion level", plot_accuracy_by_condition)),
    "entropy-by-condition": FigureFamily(("parametric",), _single(
        "entropy-by-condition", "Response entropy against distortion level", plot_entropy_by_condition)),
    "error-consistency-by-condition": FigureFamily(("parametric", "humans"), _single(
        "error-consistency-by-condition", "Error consistency against distortion level",
        plot_error_consistency_by_condition)),
    "consistency": FigureFamily(("models", "humans"), _single(
        "consistency", "Consistency with human subjects", plot_consistency)),
    "benchmark-bars": FigureFamily(("models",), _benchmark_bars),
    "dataset-accuracy-bars": FigureFamily(("models", "accuracy-bar datasets"), _dataset_accuracy_bars),
    "benchmark-scatter": FigureFamily(("models", "humans"), _single(
        "benchmark-scatter", "Benchmark metrics against each other", plot_benchmark_scatter)),
    "error-consistency-matrices": FigureFamily(("humans", "non-parametric"), _error_consistency_matrices),
    "confusion-matrices": FigureFamily((), _confusion_matrices),
}
"""Every figure family, in the order of the summary page. The toolbox's plot types: shape-bias (its per-category
plot and box plot), accuracy, entropy, error-consistency-lineplot, benchmark-barplot, nonparametric-benchmark-barplot,
scatterplot, error-consistency and confusion-matrix are shape-bias, accuracy-by-condition, entropy-by-condition,
error-consistency-by-condition, benchmark-bars, dataset-accuracy-bars, benchmark-scatter,
error-consistency-matrices and confusion-matrices; consistency is genfast's summary of the three human-likeness
metrics."""


def draw(summary: Summary, definitions: PlotDefinitions | None = None,
         figures: Sequence[str] | None = None) -> list[Drawn]:
    """The figures of the families `figures` (keys of FIGURES; None: every one the data allow), styled by
    `definitions` (None: the toolbox's). ValueError naming an unknown family or what a requested one lacks."""
    if figures is None:
        families = [name for name, family in FIGURES.items() if missing(summary, family.needs) is None]
    else:
        families = list(dict.fromkeys(figures))
        unknown = [name for name in families if name not in FIGURES]
        if unknown:
            raise ValueError(f"figures: unknown {', '.join(map(repr, unknown))}; known: {', '.join(FIGURES)}")
        for name in families:
            reason = missing(summary, FIGURES[name].needs)
            if reason is not None:
                raise ValueError(f"figures: cannot draw {name!r}: {reason}")
    return [Drawn(file, title, figure) for name in families
            for file, (title, figure) in FIGURES[name].draw(summary, definitions).items()]


def make_figures(summary: Summary, definitions: PlotDefinitions | None = None,
                 figures: Sequence[str] | None = None) -> dict[str, Figure]:
    """`draw` as {file name: figure}."""
    return {drawn.name: drawn.figure for drawn in draw(summary, definitions, figures)}


def plot(data: Summary | str | Path, figures: Sequence[str] | None = None, models: Sequence[str] | None = None,
         datasets: Sequence[str] | None = None, definitions: PlotDefinitions | None = None,
         out_dir: str | Path | None = None) -> dict[str, Figure]:
    """The figures `figures` (keys of FIGURES; None: all the data allow) of `data`: a Summary, or a raw-data folder
    read as `genfast.metrics.measure(data, models, datasets)`; each also saved as PNG and PDF into `out_dir`."""
    if isinstance(data, Summary):
        if models is not None or datasets is not None:
            raise ValueError("plot: models and datasets select from raw data; pass a raw-data folder, or pass them "
                             "to genfast.metrics.measure")
        summary = data
    else:
        summary = measure(data, models, datasets)
    drawn = make_figures(summary, definitions, figures)
    if out_dir is not None:
        for name, figure in drawn.items():
            save_figure(figure, Path(out_dir), name)
    return drawn
