"""How human-like each model's decisions are: accuracy difference, observed and error consistency with the
human subjects, as horizontal bars (mean over datasets, one row per model, so that many models stay legible) with
one dot per dataset; humans against each other for reference."""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch
import numpy as np

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.style import FONT_SIZE, new_figure, observer_styles, outside_legend

_PANELS = (("error_consistency", "Error consistency (kappa)"),
           ("observed_consistency", "Observed consistency"),
           ("accuracy_difference", "Accuracy difference\n(lower is more human-like)"))
_ROW_HEIGHT = 0.2  # inches per observer


def plot_consistency(summary: Summary, models: list[str] | None = None,
                     definitions: PlotDefinitions | None = None) -> Figure:
    """Three panels side by side, one row per model (best error consistency on top) and humans-vs-humans at the
    bottom; bars coloured by family (legend right of the panels); styles and names from `definitions`."""
    if summary.humanlike.empty:
        raise ValueError("consistency plot: the raw data has no human subjects to compare with")
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions)
    table = summary.humanlike
    ranked = sorted((m for m in models if m in table.index), key=lambda m: -table.loc[m, "error_consistency"])
    names = ranked + ([HUMANS] if HUMANS in table.index else [])
    by_dataset = summary.humanlike_by_dataset
    y = np.arange(len(names))
    figure = new_figure((11.0, _ROW_HEIGHT * len(names) + 1.4))
    axes = figure.subplots(1, len(_PANELS), sharey=True)
    rng = np.random.default_rng(0)  # jitter of the per-dataset dots only
    colours = [styles[n].colour for n in names]
    for ax, (metric, title) in zip(axes, _PANELS):
        values = table.loc[names, metric].to_numpy(dtype=float)
        ax.barh(y, values, color=colours, height=0.72, edgecolor="0.35", linewidth=0.4)
        for i, name in enumerate(names):
            per_dataset = by_dataset.loc[name, metric].to_numpy(dtype=float)
            ax.scatter(per_dataset, i + rng.uniform(-0.22, 0.22, per_dataset.size), s=6, color="0.15",
                       alpha=0.55, zorder=3, linewidths=0)
            ax.annotate(f"{values[i]:.3f}", (max(values[i], 0.0), i), xytext=(2, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=FONT_SIZE - 1, zorder=4)
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=FONT_SIZE)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="0.92")
        ax.set_axisbelow(True)
        ax.margins(x=0.12)  # room for the value labels
    axes[0].set_yticks(y, [styles[n].label for n in names])
    axes[0].set_ylim(len(names) - 0.5, -0.5)  # best on top
    figure.suptitle("Agreement with human subjects. Bars: mean over datasets; dots: single datasets; "
                    "humans: each subject against the others", fontsize=10)
    figure.tight_layout()
    families = {style.family: style.colour for name, style in styles.items() if name in names}
    outside_legend(figure, [Patch(facecolor=c, edgecolor="0.35", linewidth=0.4) for c in families.values()],
                   list(families), title="family")
    return figure
