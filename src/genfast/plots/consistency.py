"""How human-like each model's decisions are: accuracy difference, observed and error consistency with the
human subjects, as horizontal bars (mean over datasets, one row per model, so that many models stay legible) with
one dot per dataset; humans against each other for reference; partial models (lacking a dataset) labelled PARTIAL,
hatched and ranked after the others."""
from __future__ import annotations

from matplotlib.figure import Figure
import numpy as np

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.summary import Summary
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.needs import require
from genfast.plots.style import family_legend, new_figure, observer_styles, partial_last, value_bars

_PANELS = (("error_consistency", "Error consistency (kappa)"),
           ("observed_consistency", "Observed consistency"),
           ("accuracy_difference", "Accuracy difference\n(lower is more human-like)"))
_ROW_HEIGHT = 0.2  # inches per observer


def plot_consistency(summary: Summary, models: list[str] | None = None,
                     definitions: PlotDefinitions | None = None) -> Figure:
    """Three panels side by side, one row per model (best error consistency on top), humans-vs-humans below them,
    then the partial models (ranked apart, hatched); bars coloured by family (legend right of the panels); styles
    and names from `definitions`."""
    require(summary, "consistency plot", "humans")
    models = summary.models if models is None else models
    styles = observer_styles(models, definitions, summary.partial_models)
    table = summary.humanlike
    ranked = sorted((m for m in models if m in table.index), key=lambda m: -table.loc[m, "error_consistency"])
    names = partial_last(ranked + ([HUMANS] if HUMANS in table.index else []), styles)
    by_dataset = summary.humanlike_by_dataset
    figure = new_figure((11.0, _ROW_HEIGHT * len(names) + 1.4))
    axes = figure.subplots(1, len(_PANELS), sharey=True)
    rng = np.random.default_rng(0)  # jitter of the per-dataset dots only
    shown = [styles[n] for n in names]
    for ax, (metric, title) in zip(axes, _PANELS):
        value_bars(ax, table.loc[names, metric].to_numpy(dtype=float), shown)
        for i, name in enumerate(names):
            per_dataset = by_dataset.loc[name, metric].to_numpy(dtype=float)
            ax.scatter(per_dataset, i + rng.uniform(-0.22, 0.22, per_dataset.size), s=6, color="0.15",
                       alpha=0.55, zorder=3, linewidths=0)
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.12)  # room for the value labels
    axes[0].set_yticks(np.arange(len(names)), [styles[n].label for n in names])
    figure.suptitle("Agreement with human subjects. Bars: mean over datasets; dots: single datasets; "
                    "humans: each subject against the others", fontsize=10)
    figure.tight_layout()
    family_legend(figure, styles, names)
    return figure
