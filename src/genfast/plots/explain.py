"""The reconstruction grid of `genfast explain` (Jaini, Clark & Geirhos 2024's illusion figures): what the model
reconstructs of one image under each class, with each class's error, winner first."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from genfast.plots.style import FONT_SIZE, new_figure

if TYPE_CHECKING:
    from genfast.explanation import Explanation

CELL = 1.2
"""Inches per image of the grid."""


def _show(ax: Axes, image: np.ndarray) -> None:
    """One [H, W, C] image in [0, 1], pixels as squares, no ticks."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_explanation(explanation: Explanation, rows: int | None = None) -> Figure:
    """A row per class, by score (winner first; the best `rows` of them, None: all); columns: the input and z_t at
    each level (top row only: every class denoises the same z_t), then the class's x̂0 at each level, titled with
    its error there. Row labels name the class and its score."""
    if rows is not None and rows < 1:
        raise ValueError(f"rows must be a positive number of classes to draw, got {rows!r}")
    e = explanation
    order = e.ranking[:rows]
    scores = e.scores
    levels = len(e.t)
    figure = new_figure((CELL * (1 + 2 * levels), CELL * len(order) + 0.8))
    axes = figure.subplots(len(order), 1 + 2 * levels, squeeze=False)
    _show(axes[0, 0], e.image)
    axes[0, 0].set_title("input", fontsize=FONT_SIZE)
    for level, t in enumerate(e.t):
        _show(axes[0, 1 + level], e.noisy[level])
        axes[0, 1 + level].set_title(f"$z_t$, t={t:g}", fontsize=FONT_SIZE)
    for row, k in enumerate(order):
        if row:
            for ax in axes[row, : 1 + levels]:
                ax.set_axis_off()
        for level, t in enumerate(e.t):
            ax = axes[row, 1 + levels + level]
            _show(ax, e.reconstructions[level, k])
            header = f"$\\hat{{x}}_0$, t={t:g}\n" if row == 0 else ""
            ax.set_title(f"{header}error {e.errors[level, k]:.3g}", fontsize=FONT_SIZE)
        winner = " (winner)" if row == 0 else ""
        axes[row, 1 + levels].set_ylabel(f"{e.classes[k]}{winner}\nscore {scores[k]:.3g}", fontsize=FONT_SIZE)
    figure.suptitle(f"{e.model}: reconstructions under each class ({e.method}, {e.error_space} {e.loss} error)",
                    fontsize=FONT_SIZE + 1)
    figure.tight_layout()
    return figure
