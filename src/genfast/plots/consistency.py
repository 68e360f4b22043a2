"""How human-like each model's decisions are: accuracy difference, observed and error consistency with the
human subjects, as bars (mean over datasets) with one dot per dataset; humans against each other for
reference."""
from __future__ import annotations

from matplotlib.figure import Figure
import numpy as np

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.style import new_figure, observer_styles

_PANELS = (("error_consistency", "Error consistency (kappa)"),
           ("observed_consistency", "Observed consistency"),
           ("accuracy_difference", "Accuracy difference (lower is more human-like)"))


def plot_consistency(summary: Summary, models: list[str] | None = None,
                     definitions: PlotDefinitions | None = None) -> Figure:
    """Three panels, one bar per model plus humans-vs-humans, ordered by error consistency; styles and names
    from `definitions`."""
    if summary.humanlike.empty:
        raise ValueError("consistency plot: the raw data has no human subjects to compare with")
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions)
    table = summary.humanlike
    ranked = sorted((m for m in models if m in table.index), key=lambda m: -table.loc[m, "error_consistency"])
    names = ranked + ([HUMANS] if HUMANS in table.index else [])
    by_dataset = summary.humanlike_by_dataset
    x = np.arange(len(names))
    figure = new_figure((max(10.0, 1.1 * len(names) * len(_PANELS) + 2), 4.6))
    axes = figure.subplots(1, len(_PANELS))
    rng = np.random.default_rng(0)  # jitter of the per-dataset dots only
    for ax, (metric, title) in zip(axes, _PANELS):
        colours = [styles[n].colour for n in names]
        ax.bar(x, table.loc[names, metric], color=colours, alpha=0.75, width=0.7)
        for i, name in enumerate(names):
            per_dataset = by_dataset.loc[name, metric].to_numpy(dtype=float)
            ax.scatter(i + rng.uniform(-0.18, 0.18, per_dataset.size), per_dataset, s=10, color="0.15",
                       alpha=0.55, zorder=3, linewidths=0)
            value = table.loc[name, metric]
            ax.annotate(f"{value:.3f}", (i, max(value, 0.0)), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xticks(x, [styles[n].label for n in names], rotation=30, ha="right")
        ax.set_title(title, fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="0.92")
        ax.set_axisbelow(True)
    figure.suptitle("Agreement with human subjects. Bars: mean over datasets; dots: single datasets; "
                    "humans: each subject against the others")
    figure.tight_layout()
    return figure
