"""Figures of model-vs-human results (matplotlib, Agg backend), the toolbox's and genfast's: shape bias per
category; accuracy, entropy and error consistency against distortion level; the benchmark's bar and scatter plots;
error-consistency and confusion matrices; consistency with humans; a report that gathers them with the tables; a
per-image audit page. `plot(raw_data_or_summary, figures=...)` draws them by name (see FIGURES)."""
from __future__ import annotations

from genfast.plots.audit import write_audit
from genfast.plots.benchmark import plot_benchmark_bars, plot_benchmark_scatter, plot_dataset_accuracy_bars
from genfast.plots.conditions import (plot_accuracy_by_condition, plot_by_condition, plot_entropy_by_condition,
                                      plot_error_consistency_by_condition)
from genfast.plots.consistency import plot_consistency
from genfast.plots.explain import plot_explanation
from genfast.plots.figures import FIGURES, make_figures, plot
from genfast.plots.matrices import plot_confusion_matrices, plot_error_consistency_matrix
from genfast.plots.report import write_report
from genfast.plots.shape_bias import plot_shape_bias, plot_shape_bias_boxplot

__all__ = ["FIGURES", "make_figures", "plot", "plot_accuracy_by_condition", "plot_benchmark_bars",
           "plot_benchmark_scatter", "plot_by_condition", "plot_confusion_matrices", "plot_consistency",
           "plot_dataset_accuracy_bars", "plot_entropy_by_condition", "plot_error_consistency_by_condition",
           "plot_error_consistency_matrix", "plot_explanation", "plot_shape_bias", "plot_shape_bias_boxplot",
           "write_audit", "write_report"]
