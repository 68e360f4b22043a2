"""One look for every figure: observers styled by the plot definitions (colour by family, marker by model);
figures made without pyplot (no global state, no window) and drawn by the Agg canvas."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genfast.plots.definitions import TOOLBOX_DEFINITIONS, PlotDefinitions, Style

DPI = 150
"""Resolution of the PNG files."""


def observer_styles(models: list[str], definitions: PlotDefinitions | None = None) -> dict[str, Style]:
    """Styles of `models` and of the pooled humans, in legend order (`definitions`: None for the toolbox's)."""
    return (TOOLBOX_DEFINITIONS if definitions is None else definitions).styles(models)


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas, independent of pyplot and of the user's backend."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png (DPI) and `name`.pdf into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    figure.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    return paths
