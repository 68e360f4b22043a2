"""What observers answer, right or wrong: the entropy of the response distribution (Geirhos et al. 2018, the
toolbox's Entropy analysis) and confusion counts (its confusion matrices, as counts), per dataset and condition.

Entropy, as the toolbox computes it: over the categories presented to the observer in the condition, p_c is the
fraction of its trials answered c; H = -sum p_c log2 p_c over p_c > 1e-5 (responses that name no presented
category, such as 'na', count in the trials but in no p_c). The pooled humans get the mean over subjects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.rawdata import is_human

_KEYS = ["dataset", "condition", "observer"]
_NO_RESPONSE = "na"
_NEGLIGIBLE = 1e-5  # the toolbox leaves out response fractions at or below this


def _plain(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[[*_KEYS, "category", "object_response"]].astype(str)


def entropy_by_condition(trials: pd.DataFrame) -> pd.DataFrame:
    """Response entropy in bits per (dataset, condition, observer), plus HUMANS (the mean over subjects).

    Columns dataset, condition, observer, entropy.
    """
    plain = _plain(trials)
    size = plain.groupby(_KEYS).size().rename("trials")
    answers = plain.groupby([*_KEYS, "object_response"]).size().rename("answers").reset_index()
    presented = plain[[*_KEYS, "category"]].drop_duplicates().rename(columns={"category": "object_response"})
    presented = presented.loc[presented["object_response"] != _NO_RESPONSE]
    hits = answers.merge(presented, on=[*_KEYS, "object_response"]).join(size, on=_KEYS)
    p = (hits["answers"] / hits["trials"]).to_numpy(dtype=float)
    hits["term"] = np.where(p > _NEGLIGIBLE, -p * np.log2(p), 0.0)  # p > 0: every row is an answer given
    entropy = hits.groupby(_KEYS)["term"].sum().reindex(size.index, fill_value=0.0).rename("entropy").reset_index()
    humans = entropy.loc[entropy["observer"].map(is_human)]
    if len(humans):
        pooled = humans.groupby(["dataset", "condition"], sort=False)["entropy"].mean().reset_index()
        entropy = pd.concat([entropy, pooled.assign(observer=HUMANS)], ignore_index=True)
    return entropy


def confusion_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """How often each presented category got each response, per (dataset, condition, observer), plus HUMANS (all
    subjects' trials pooled, as the toolbox pools them). Non-zero counts only.

    Columns dataset, condition, observer, category, object_response, count.
    """
    plain = _plain(trials)
    columns = ["category", "object_response"]
    counts = plain.groupby([*_KEYS, *columns]).size().rename("count").reset_index()
    humans = plain.loc[plain["observer"].map(is_human)]
    if len(humans):
        pooled = humans.groupby(["dataset", "condition", *columns]).size().rename("count").reset_index()
        counts = pd.concat([counts, pooled.assign(observer=HUMANS)[counts.columns]], ignore_index=True)
    return counts
