"""What a figure needs from the raw data (human subjects, models, a kind of dataset), checked in one place: the
plot functions raise a one-line ValueError naming the figure, `make_figures` leaves out what cannot be drawn."""
from __future__ import annotations

from typing import Callable

from genfast.metrics.datasets import DATASETS
from genfast.metrics.summary import Summary

NONPARAMETRIC_ACCURACY_DATASETS: tuple[str, ...] = ("edge", "silhouette", "sketch", "stylized")
"""The datasets of the toolbox's per-dataset accuracy bar plots (its nonparametric-benchmark-barplot)."""

NEEDS: dict[str, tuple[Callable[[Summary], bool], str]] = {
    "models": (lambda s: bool(s.models), "the raw data has no models"),
    "humans": (lambda s: bool(s.humans), "the raw data has no human subjects to compare with"),
    "parametric": (lambda s: any(DATASETS[d].parametric for d in s.datasets),
                   "the raw data has no parametric dataset"),
    "cue-conflict": (lambda s: bool(s.shape_bias), "no cue-conflict data in the raw data"),
    "non-parametric": (lambda s: any(not DATASETS[d].parametric for d in s.datasets),
                       "the raw data has no non-parametric dataset"),
    "accuracy-bar datasets": (lambda s: any(d in s.datasets for d in NONPARAMETRIC_ACCURACY_DATASETS),
                              f"the raw data has none of {', '.join(NONPARAMETRIC_ACCURACY_DATASETS)}"),
}


def missing(summary: Summary, needs: tuple[str, ...]) -> str | None:
    """Why `summary` cannot give a figure that needs each of `needs` (keys of NEEDS), or None when it can."""
    for need in needs:
        present, reason = NEEDS[need]
        if not present(summary):
            return reason
    return None


def require(summary: Summary, what: str, *needs: str) -> None:
    """ValueError '`what`: reason' unless `summary` has each of `needs` (keys of NEEDS)."""
    reason = missing(summary, needs)
    if reason is not None:
        raise ValueError(f"{what}: {reason}")
