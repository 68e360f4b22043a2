"""One look for every figure: humans in the toolbox's red with diamonds, each model its own colour and
marker; figures are made without pyplot (no global state, no window) and drawn by the Agg canvas."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genfast.metrics.benchmark import HUMANS

HUMAN_COLOUR = (165 / 255, 30 / 255, 55 / 255)
_MODEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                  "#17becf", "#393b79")
_MODEL_MARKERS = ("o", "s", "^", "v", "P", "X", "*", "<", ">", "h")


@dataclass(frozen=True)
class Style:
    """How one observer is drawn."""

    colour: tuple[float, float, float] | str
    marker: str
    label: str


def observer_styles(models: list[str]) -> dict[str, Style]:
    """Styles for `models` (in order: colour and marker cycle independently) and for the pooled humans."""
    styles = {HUMANS: Style(HUMAN_COLOUR, "D", "humans")}
    for i, name in enumerate(models):
        styles[name] = Style(_MODEL_COLOURS[i % len(_MODEL_COLOURS)], _MODEL_MARKERS[i % len(_MODEL_MARKERS)], name)
    return styles


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas, independent of pyplot and of the user's backend."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png (150 dpi) and `name`.pdf into `out_dir`; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    figure.savefig(paths[0], dpi=150, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    return paths
