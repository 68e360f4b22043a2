"""Figures of model-vs-human results (matplotlib, Agg backend): shape bias per category, accuracy against
distortion level, consistency with humans, and a one-page report that gathers them with the tables."""
from __future__ import annotations

from genfast.plots.accuracy import plot_accuracy_by_condition
from genfast.plots.consistency import plot_consistency
from genfast.plots.report import write_report
from genfast.plots.shape_bias import plot_shape_bias

__all__ = ["plot_accuracy_by_condition", "plot_consistency", "plot_shape_bias", "write_report"]
