"""Which images cost a model its error consistency with the human subjects: a per-image decomposition of the
toolbox's error consistency (Geirhos, Meding & Wichmann 2020), for auditing a model image by image.

The benchmark's error consistency of a model on a dataset is the mean over its benchmark conditions c and human
subjects s of kappa_cs = 1 - (1 - c_obs) / (1 - c_exp), where 1 - c_obs is the fraction of the condition's n_c
images on which the model and s differ in correctness (one right, the other wrong) and c_exp comes from their
accuracies in c. So its shortfall 1 - kappa splits exactly over the images: image i of condition c costs

    cost_i = 1 / (C S n_c) * sum over subjects s that differ from the model on i of 1 / (1 - c_exp_cs),

and the costs of a dataset's images sum to 1 - (the model's error consistency on it). An image costs nothing when
every subject agrees with the model on whether it is right; it costs most when the model is wrong and every
subject right, or right where every subject is wrong, and more in a condition where such a difference is less
expected (the model and the subjects both nearly always right, say).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from genfast.metrics.benchmark import benchmark_trials
from genfast.metrics.consistency import correctness_matrix, pairwise_consistency
from genfast.metrics.rawdata import is_human

AUDIT_COLUMNS: tuple[str, ...] = ("condition", "image_id", "imagename", "category", "response", "correct",
                                  "humans_right", "humans", "human_responses", "disagreement", "cost")
"""Columns of image_costs: the image (condition, image_id, the model's imagename, true category), the model's
response and whether it is right, how many of how many subjects were right and what they answered (a dict, most
frequent first, ties by name), the fraction of subjects whose correctness differs from the model's, and the cost."""


def _counts(responses: pd.Series) -> dict[str, int]:
    """How often each response was given, most frequent first, ties by name."""
    return dict(sorted(Counter(map(str, responses)).items(), key=lambda item: (-item[1], item[0])))


def image_costs(trials: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    """Every image of `dataset`'s benchmark conditions with its cost to `model`'s error consistency (see the
    module), most costly first; ties keep the consistency code's order of (condition, image_id). Columns
    AUDIT_COLUMNS.

    Images are matched across observers as genfast.metrics.consistency matches them; ValueError naming the
    dataset when it has no trials of `model` or no human subjects."""
    selected = benchmark_trials(trials.loc[trials["dataset"].astype(str) == dataset])
    if selected.empty:
        raise ValueError(f"dataset {dataset!r}: no trials in its benchmark conditions")
    table = correctness_matrix(selected)
    subjects = [name for name in table.columns if is_human(name)]
    if model not in table.columns:
        raise ValueError(f"dataset {dataset!r}: no raw data of model {model!r}")
    if not subjects:
        raise ValueError(f"dataset {dataset!r}: no human subjects to compare model {model!r} with")
    model_right = table[model].to_numpy()
    humans_right = table[subjects].to_numpy()
    differ = model_right[:, None] != humans_right
    conditions = table.index.get_level_values("condition")
    cost = np.zeros(len(table))
    names = conditions.unique()
    for condition in names:
        rows = np.asarray(conditions == condition)
        block = np.column_stack([model_right[rows], humans_right[rows]])
        unexpected = 1.0 - pairwise_consistency(block)["expected"][0, 1:]  # 0 only where no subject differs
        weights = np.divide(differ[rows], unexpected, out=np.zeros(differ[rows].shape), where=differ[rows])
        cost[rows] = weights.sum(axis=1) / (len(names) * len(subjects) * rows.sum())

    plain = selected.assign(observer=selected["observer"].astype(str), condition=selected["condition"].astype(str))
    own = plain.loc[plain["observer"] == model].set_index(["condition", "image_id"]).reindex(table.index)
    answers = (plain.loc[plain["observer"].map(is_human)].groupby(["condition", "image_id"], observed=True)
               ["object_response"].agg(_counts))
    frame = pd.DataFrame({
        "condition": conditions.astype(str), "image_id": table.index.get_level_values("image_id").astype(str),
        "imagename": own["imagename"].astype(str).to_numpy(), "category": own["category"].astype(str).to_numpy(),
        "response": own["object_response"].astype(str).to_numpy(), "correct": model_right,
        "humans_right": humans_right.sum(axis=1), "humans": len(subjects),
        "human_responses": answers.reindex(table.index).to_numpy(), "disagreement": differ.mean(axis=1),
        "cost": cost})
    return frame.sort_values("cost", ascending=False, kind="stable").reset_index(drop=True)
