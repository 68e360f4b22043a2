"""The model-vs-human benchmark: OOD accuracy and the three "most human-like" metrics, aggregated as the
toolbox does, and its two ranked tables.

- OOD accuracy of an observer: per dataset, the accuracy over its benchmark conditions (all trials pooled),
  then the unweighted mean over datasets.
- Human-likeness of an observer: accuracy difference, observed and error consistency against every human
  subject (not itself) per (dataset, condition), then the mean over conditions, over subjects, over datasets.
- The pooled "humans" observer: accuracy on all subjects' trials pooled; human-likeness averaged over all
  pairs of distinct subjects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from genfast.metrics.consistency import correctness_matrix, pairwise_consistency
from genfast.metrics.datasets import dataset_info
from genfast.metrics.rawdata import is_human

HUMANS = "humans"
"""Name of the pooled human observer in every table."""
HUMANLIKE_METRICS: tuple[str, ...] = ("accuracy_difference", "observed_consistency", "error_consistency")


def benchmark_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials that count for the benchmark: excluded conditions of parametric datasets removed."""
    keep = np.ones(len(trials), dtype=bool)
    conditions = trials["condition"].astype(str)
    for dataset in trials["dataset"].astype(str).unique():
        info = dataset_info(dataset)
        if info.parametric:
            in_dataset = (trials["dataset"] == dataset).to_numpy()
            keep &= ~in_dataset | conditions.isin(info.benchmark_conditions).to_numpy()
    return trials.loc[keep]


def observers(trials: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(models, humans) found in `trials`, each sorted by name."""
    names = sorted(trials["observer"].astype(str).unique())
    return [n for n in names if not is_human(n)], [n for n in names if is_human(n)]


def accuracy_by_dataset(trials: pd.DataFrame, benchmark: bool = True) -> pd.DataFrame:
    """Accuracy per (observer, dataset), plus the pooled humans; with `benchmark`, on benchmark conditions."""
    selected = benchmark_trials(trials) if benchmark else trials
    plain = selected.assign(observer=selected["observer"].astype(str), dataset=selected["dataset"].astype(str))
    per_observer = plain.groupby(["observer", "dataset"])["correct"].mean()
    humans = plain.loc[plain["observer"].map(is_human)]
    if len(humans):
        pooled = humans.groupby("dataset")["correct"].mean()
        pooled.index = pd.MultiIndex.from_product([[HUMANS], pooled.index], names=["observer", "dataset"])
        per_observer = pd.concat([per_observer, pooled])
    return per_observer.unstack("dataset")


def ood_accuracy(trials: pd.DataFrame) -> pd.Series:
    """OOD accuracy per observer (and the pooled humans): unweighted mean of per-dataset benchmark accuracy."""
    return accuracy_by_dataset(trials).mean(axis=1, skipna=True).rename("ood_accuracy")


def humanlike_pairs(trials: pd.DataFrame, benchmark: bool = True) -> pd.DataFrame:
    """One row per (dataset, benchmark condition, observer, human subject other than the observer); every
    condition without `benchmark`.

    Columns: dataset, condition, observer, human, accuracy_difference, observed_consistency,
    error_consistency. Observers are every model and every human subject.
    """
    rows = []
    for dataset, in_dataset in (benchmark_trials(trials) if benchmark else trials).groupby("dataset", observed=True):
        table = correctness_matrix(in_dataset)
        names = list(table.columns)
        human_columns = [j for j, n in enumerate(names) if is_human(n)]
        for condition, block in table.groupby(level="condition", sort=False):
            pair = pairwise_consistency(block.to_numpy())
            for i, name in enumerate(names):
                for j in human_columns:
                    if i != j:
                        rows.append((str(dataset), condition, name, names[j], pair["accuracy_difference"][i, j],
                                     pair["observed"][i, j], pair["error_consistency"][i, j]))
    columns = ["dataset", "condition", "observer", "human", *HUMANLIKE_METRICS]
    return pd.DataFrame(rows, columns=columns)


def humanlike_by_dataset(pairs: pd.DataFrame) -> pd.DataFrame:
    """humanlike_pairs averaged over conditions, then over human subjects: rows (observer, dataset).

    HUMANS gets, per dataset, the mean over all pairs of distinct subjects. Columns HUMANLIKE_METRICS.
    """
    metrics = list(HUMANLIKE_METRICS)
    per_subject = pairs.groupby(["observer", "human", "dataset"], sort=False)[metrics].mean()
    per_dataset = per_subject.groupby(level=["observer", "dataset"], sort=False).mean()
    human_rows = per_subject.loc[per_subject.index.get_level_values("observer").map(is_human)]
    if len(human_rows):
        pooled = human_rows.groupby(level="dataset", sort=False).mean()
        pooled.index = pd.MultiIndex.from_product([[HUMANS], pooled.index], names=["observer", "dataset"])
        per_dataset = pd.concat([per_dataset, pooled])
    return per_dataset


def humanlike_by_condition(pairs: pd.DataFrame) -> pd.DataFrame:
    """humanlike_pairs averaged over human subjects: rows (observer, dataset, condition), the toolbox's error
    consistency against condition. HUMANS gets the mean over subjects of each subject's mean against the others."""
    metrics = list(HUMANLIKE_METRICS)
    per_condition = pairs.groupby(["observer", "dataset", "condition"], sort=False)[metrics].mean()
    human_rows = per_condition.loc[per_condition.index.get_level_values("observer").map(is_human)]
    if len(human_rows):
        pooled = human_rows.groupby(level=["dataset", "condition"], sort=False).mean()
        pooled.index = pd.MultiIndex.from_tuples([(HUMANS, *key) for key in pooled.index],
                                                 names=["observer", "dataset", "condition"])
        per_condition = pd.concat([per_condition, pooled])
    return per_condition


def humanlike(pairs: pd.DataFrame) -> pd.DataFrame:
    """The toolbox's human-likeness per observer (and HUMANS): humanlike_by_dataset averaged over datasets."""
    return humanlike_by_dataset(pairs).groupby(level="observer").mean()


def _model_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table.loc[[name for name in table.index if name != HUMANS and not is_human(name)]]


def accuracy_ranking(ood: pd.Series) -> pd.DataFrame:
    """The toolbox's OOD-accuracy table: models (not humans) by OOD accuracy, best first, with rank."""
    table = _model_rows(ood.to_frame("ood_accuracy"))
    table["rank"] = table["ood_accuracy"].rank(ascending=False)
    return table.sort_values(["rank"], kind="stable")


def humanlike_ranking(table: pd.DataFrame) -> pd.DataFrame:
    """The toolbox's most-human-like table: models ranked on each metric and by the mean of the three ranks."""
    ranked = _model_rows(table).copy()
    ranked["accuracy_difference_rank"] = ranked["accuracy_difference"].rank(ascending=True)
    ranked["observed_consistency_rank"] = ranked["observed_consistency"].rank(ascending=False)
    ranked["error_consistency_rank"] = ranked["error_consistency"].rank(ascending=False)
    ranked["mean_rank"] = ranked[["accuracy_difference_rank", "observed_consistency_rank",
                                  "error_consistency_rank"]].mean(axis=1)
    return ranked.sort_values(["mean_rank"], kind="stable")
