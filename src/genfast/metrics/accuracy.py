"""Accuracy of an observer's decisions: the fraction of trials whose response is the presented category."""
from __future__ import annotations

import pandas as pd


def _require_trials(trials: pd.DataFrame, what: str) -> None:
    if len(trials) == 0:
        raise ValueError(f"{what}: no trials to compute it on")


def accuracy(trials: pd.DataFrame) -> float:
    """mean(object_response == category) over `trials` (a frame from read_raw_data, any subset)."""
    _require_trials(trials, "accuracy")
    return float(trials["correct"].mean())


def accuracy_difference(accuracy_1: float, accuracy_2: float) -> float:
    """The toolbox's accuracy difference between two observers: the squared difference (p1 - p2)^2."""
    return float((accuracy_1 - accuracy_2) ** 2)
