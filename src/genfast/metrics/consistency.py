"""Trial-by-trial agreement between two observers on the same images (Geirhos, Meding & Wichmann 2020).

observed consistency c_obs = mean(correct_1 == correct_2); expected consistency of two independent observers
with accuracies p1, p2: c_exp = p1 p2 + (1 - p1)(1 - p2); error consistency is Cohen's kappa
(c_obs - c_exp) / (1 - c_exp), defined as 1 when c_obs == 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from genfast.metrics.accuracy import accuracy_difference

ArrayOrFloat = TypeVar("ArrayOrFloat", float, np.ndarray)


@dataclass(frozen=True)
class Consistency:
    """Agreement of two observers on one set of images."""

    accuracy_1: float
    accuracy_2: float
    observed: float
    expected: float
    error_consistency: float

    @property
    def accuracy_difference(self) -> float:
        return accuracy_difference(self.accuracy_1, self.accuracy_2)


def error_consistency(observed: ArrayOrFloat, expected: ArrayOrFloat) -> ArrayOrFloat:
    """Cohen's kappa (c_obs - c_exp) / (1 - c_exp), elementwise; 1 where the observers agree on every trial."""
    obs = np.asarray(observed, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    for name, value in (("observed", obs), ("expected", exp)):
        if np.any((value < 0.0) | (value > 1.0)):
            raise ValueError(f"{name} consistency must lie in [0, 1], got {value}")
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(obs == 1.0, 1.0, (obs - exp) / (1.0 - exp))
    return float(kappa) if kappa.ndim == 0 else kappa


def pairwise_consistency(correct: np.ndarray) -> dict[str, np.ndarray]:
    """All pairs of observers at once: `correct` is bool [images, observers], aligned image by image.

    Returns "accuracy" [O] and "observed", "expected", "error_consistency", "accuracy_difference" [O, O].
    """
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2 or c.shape[0] == 0:
        raise ValueError(f"pairwise_consistency needs a non-empty [images, observers] array, got shape {c.shape}")
    n = c.shape[0]
    right = c.astype(np.int64)
    agree = right.T @ right + (1 - right).T @ (1 - right)  # integer counts: c_obs == 1 is exact
    observed = agree / n
    p = right.sum(axis=0) / n
    expected = np.clip(np.outer(p, p) + np.outer(1.0 - p, 1.0 - p), 0.0, 1.0)
    return {"accuracy": p, "observed": observed, "expected": expected,
            "error_consistency": error_consistency(observed, expected),
            "accuracy_difference": np.subtract.outer(p, p) ** 2}


def consistency(correct_1: np.ndarray, correct_2: np.ndarray) -> Consistency:
    """Consistency of two observers from their per-trial correctness, aligned image by image."""
    c1 = np.asarray(correct_1, dtype=bool)
    c2 = np.asarray(correct_2, dtype=bool)
    if c1.shape != c2.shape or c1.ndim != 1 or c1.size == 0:
        raise ValueError(f"consistency needs two equally long, non-empty 1-d arrays; got shapes {c1.shape} "
                         f"and {c2.shape}")
    pair = pairwise_consistency(np.stack([c1, c2], axis=1))
    return Consistency(float(pair["accuracy"][0]), float(pair["accuracy"][1]), float(pair["observed"][0, 1]),
                       float(pair["expected"][0, 1]), float(pair["error_consistency"][0, 1]))


def error_consistency_matrix(trials: pd.DataFrame) -> pd.DataFrame:
    """Error consistency of every two observers of one dataset over all its trials (the toolbox's error-consistency
    matrices): observers x observers, 1 on the diagonal."""
    table = correctness_matrix(trials)
    kappa = pairwise_consistency(table.to_numpy())["error_consistency"]
    return pd.DataFrame(kappa, index=list(table.columns), columns=list(table.columns))


def correctness_matrix(trials: pd.DataFrame) -> pd.DataFrame:
    """Correctness of every observer of one dataset: rows (condition, image_id), one bool column per observer.

    ValueError naming the files when observers did not see the same images, since they are compared
    image by image.
    """
    datasets = trials["dataset"].astype(str).unique()
    if len(datasets) != 1:
        raise ValueError(f"correctness_matrix wants the trials of one dataset, got {', '.join(datasets)}")
    plain = trials.assign(observer=trials["observer"].astype(str), condition=trials["condition"].astype(str))
    table = plain.pivot(index=["condition", "image_id"], columns="observer", values="correct")
    missing = table.isna().sum()
    if missing.any():
        complete = missing.index[missing == 0]
        files = trials.groupby("observer", observed=True)["file"].first().astype(str)
        reference = files[complete[0]] if len(complete) else "the other observers"
        lacking = [f"{files[o]} ({n} images missing)" for o, n in missing.items() if n]
        raise ValueError(f"dataset {datasets[0]!r}: observers saw different images; compared to {reference}: "
                         f"{'; '.join(lacking)}")
    return table.astype(bool)
