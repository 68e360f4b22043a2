"""Every model-vs-human number for every observer of a raw-data folder, in one object that the `metrics`
command prints and writes as JSON and that the `report` command draws."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from genfast.metrics.benchmark import (HUMANLIKE_METRICS, HUMANS, accuracy_by_dataset, accuracy_ranking,
                                       benchmark_trials, humanlike_by_condition, humanlike_by_dataset,
                                       humanlike_pairs, humanlike_ranking, observers, ood_accuracy)
from genfast.metrics.consistency import error_consistency_matrix
from genfast.metrics.datasets import DATASETS, SHAPE_BIAS_DATASET
from genfast.metrics.rawdata import is_human, missing_datasets
from genfast.metrics.responses import confusion_counts, entropy_by_condition
from genfast.metrics.shape_bias import ShapeBias, shape_bias, shape_bias_by_category

SCHEMA_VERSION = 2
"""Version of the layout of Summary.to_json (files without `schema_version` are version 1)."""


@dataclass(frozen=True)
class Summary:
    """All metrics of a set of trials. Frames are indexed by observer; HUMANS is the pooled human observer.

    A partial model lacks a dataset that the trials hold: it is ranked apart from the complete models, since its
    means cover fewer datasets.
    """

    datasets: list[str]
    models: list[str]
    humans: list[str]
    accuracy: pd.DataFrame  # observer x dataset, all conditions
    ood_accuracy_by_dataset: pd.DataFrame  # observer x dataset, benchmark conditions only
    ood_accuracy: pd.Series  # observer: unweighted mean over datasets of the benchmark accuracy
    humanlike: pd.DataFrame  # observer x HUMANLIKE_METRICS (empty without human subjects)
    humanlike_by_dataset: pd.DataFrame  # (observer, dataset) x HUMANLIKE_METRICS
    shape_bias: dict[str, ShapeBias]  # empty without cue-conflict data
    shape_bias_by_category: pd.DataFrame  # observer x shape category
    accuracy_by_condition: pd.DataFrame  # columns dataset, condition, observer, accuracy (every condition)
    humanlike_by_condition: pd.DataFrame  # (observer, dataset, condition) x HUMANLIKE_METRICS, every condition
    entropy_by_condition: pd.DataFrame  # columns dataset, condition, observer, entropy (bits)
    confusion: pd.DataFrame  # columns dataset, condition, observer, category, object_response, count
    error_consistency_matrices: dict[str, pd.DataFrame]  # non-parametric dataset: observers x observers
    missing_datasets: dict[str, list[str]]  # partial model: the datasets it lacks
    imagenet_accuracy: pd.Series  # model: top-1 accuracy on the toolbox's imagenet_validation (often empty)

    @property
    def observers(self) -> list[str]:
        """Models, then human subjects, then the pooled humans (when there are any)."""
        return self.models + self.humans + ([HUMANS] if self.humans else [])

    @property
    def complete_models(self) -> list[str]:
        """The models that have every dataset."""
        return [m for m in self.models if m not in self.missing_datasets]

    @property
    def partial_models(self) -> list[str]:
        """The models that lack a dataset (see missing_datasets)."""
        return [m for m in self.models if m in self.missing_datasets]

    @property
    def subjects_shape_bias_by_category(self) -> pd.Series:
        """Per shape category, the mean over the human subjects of each one's shape bias (the humans of the
        toolbox's shape-bias box plot); empty without subjects' cue-conflict trials."""
        subjects = [h for h in self.humans if h in self.shape_bias_by_category.index]
        return self.shape_bias_by_category.loc[subjects].mean(axis=0) if subjects else pd.Series(dtype=float)

    def accuracy_table(self, partial: bool = False) -> pd.DataFrame:
        """The OOD-accuracy benchmark table: the complete models ranked, or (`partial`) the partial ones apart."""
        return accuracy_ranking(self.ood_accuracy.reindex(self.partial_models if partial else self.complete_models))

    def humanlike_table(self, partial: bool = False) -> pd.DataFrame:
        """The most-human-like benchmark table (ranked on each metric and by mean rank), as accuracy_table."""
        group = self.partial_models if partial else self.complete_models
        return humanlike_ranking(self.humanlike.loc[[m for m in group if m in self.humanlike.index]])

    def to_json(self) -> dict[str, Any]:
        """Every number of every table and figure, keyed by observer (NaN and missing values become null; a
        partial model's ranks are among the partial models), the error-consistency matrices, SCHEMA_VERSION."""
        ood = self.ood_accuracy
        acc_rank = pd.concat([self.accuracy_table(p)["rank"] for p in (False, True)])
        human_rank = pd.concat([self.humanlike_table(p) for p in (False, True)])
        per_condition = pd.concat([
            self.accuracy_by_condition.set_index(["observer", "dataset", "condition"]),
            self.entropy_by_condition.set_index(["observer", "dataset", "condition"]),
            self.humanlike_by_condition], axis=1)
        by_condition = _nested(_in_condition_order(per_condition.reset_index()), ["observer", "dataset", "condition"],
                               ["accuracy", "entropy", *HUMANLIKE_METRICS])
        by_dataset = _nested(self.humanlike_by_dataset.reset_index(), ["observer", "dataset"], HUMANLIKE_METRICS)
        confusion = _nested(_in_condition_order(self.confusion),
                            ["observer", "dataset", "condition", "category", "object_response"], ["count"], int)
        out: dict[str, Any] = {}
        for name in self.observers:
            kind = "humans" if name == HUMANS else "human" if is_human(name) else "model"
            entry: dict[str, Any] = {
                "kind": kind,
                "accuracy": _numbers(self.accuracy.loc[name]) if name in self.accuracy.index else {},
                "ood_accuracy_by_dataset": _numbers(self.ood_accuracy_by_dataset.loc[name])
                if name in self.ood_accuracy_by_dataset.index else {},
                "ood_accuracy": _number(ood.get(name)),
            }
            if kind == "model":
                entry["complete"] = name not in self.missing_datasets
                entry["missing_datasets"] = self.missing_datasets.get(name, [])
            if name in self.humanlike.index:
                entry.update({m: _number(self.humanlike.loc[name, m]) for m in HUMANLIKE_METRICS})
            if name in self.shape_bias:
                result = self.shape_bias[name]
                entry["shape_bias"] = _number(result.shape_bias)
                entry["shape_hits"], entry["texture_hits"] = result.shape_hits, result.texture_hits
                entry["shape_bias_by_category"] = _numbers(self.shape_bias_by_category.loc[name])
                if name == HUMANS:
                    entry["shape_bias_by_category_subject_mean"] = _numbers(self.subjects_shape_bias_by_category)
            if name in acc_rank.index:
                entry["ood_accuracy_rank"] = float(acc_rank[name])
            if name in human_rank.index:
                entry.update({c: float(human_rank.loc[name, c]) for c in human_rank.columns if c.endswith("rank")})
            entry["humanlike_by_dataset"] = by_dataset.get(name, {})
            entry["by_condition"] = by_condition.get(name, {})
            entry["confusion"] = confusion.get(name, {})
            out[name] = entry
        matrices = {dataset: {"observers": list(matrix.index),
                              "error_consistency": [[_number(v) for v in row] for row in matrix.to_numpy()]}
                    for dataset, matrix in self.error_consistency_matrices.items()}
        return {"schema_version": SCHEMA_VERSION, "datasets": self.datasets, "observers": out,
                "imagenet_validation_accuracy": _numbers(self.imagenet_accuracy),
                "error_consistency_matrices": matrices}


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _numbers(row: pd.Series) -> dict[str, float | None]:
    return {str(k): _number(v) for k, v in row.items() if not pd.isna(v)}


def _nested(frame: pd.DataFrame, keys: list[str], values: list[str] | tuple[str, ...],
            number: Callable[[Any], float | int | None] = _number) -> dict[str, Any]:
    """Rows of `frame` as nested dicts keyed by the `keys` columns in turn; the leaves are the `values` columns
    that are not NaN, as `number` makes them (one value: the number itself)."""
    out: dict[str, Any] = {}
    for row in frame[[*keys, *values]].itertuples(index=False):
        node = out
        for key in row[:len(keys) - 1]:
            node = node.setdefault(str(key), {})
        numbers = {name: number(v) for name, v in zip(values, row[len(keys):]) if not pd.isna(v)}
        node[str(row[len(keys) - 1])] = numbers[values[0]] if len(values) == 1 else numbers
    return out


def _in_condition_order(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (columns dataset, condition) sorted as the toolbox lists datasets and conditions (stable)."""
    datasets = list(DATASETS)
    position = {(d, c): (i, j) for i, d in enumerate(datasets) for j, c in enumerate(DATASETS[d].condition_keys)}
    order = [position.get((str(d), str(c)), (datasets.index(str(d)), 0))  # one condition: SINGLE_CONDITION
             for d, c in zip(frame["dataset"], frame["condition"])]
    return frame.iloc[sorted(range(len(frame)), key=order.__getitem__)]


def summarise(trials: pd.DataFrame, imagenet: pd.DataFrame | None = None) -> Summary:
    """Compute every metric for every observer of `trials` (a frame from read_raw_data), and the top-1 accuracy
    of the models of `imagenet` (RawData.imagenet)."""
    if len(trials) == 0:
        raise ValueError("summarise: no trials")
    present = set(trials["dataset"].astype(str).unique())
    datasets = [name for name in DATASETS if name in present]
    models, humans = observers(trials)
    has_humans = bool(humans)
    every_condition = humanlike_pairs(trials, benchmark=False) if has_humans else pd.DataFrame()
    if len(every_condition):
        by_dataset = humanlike_by_dataset(benchmark_trials(every_condition))  # its rows have dataset, condition
        by_condition = humanlike_by_condition(every_condition)
    else:
        by_dataset, by_condition = (pd.DataFrame(columns=list(HUMANLIKE_METRICS), dtype=float,
                                                 index=pd.MultiIndex.from_tuples([], names=names))
                                    for names in (["observer", "dataset"], ["observer", "dataset", "condition"]))
    matrices = {dataset: error_consistency_matrix(trials.loc[trials["dataset"] == dataset])
                for dataset in datasets if has_humans and not DATASETS[dataset].parametric}

    shape: dict[str, ShapeBias] = {}
    by_category: dict[str, dict[str, float]] = {}
    cue = trials.loc[trials["dataset"] == SHAPE_BIAS_DATASET]
    if len(cue):
        groups = {name: cue.loc[cue["observer"] == name] for name in models + humans}
        groups = {name: group for name, group in groups.items() if len(group)}  # not every observer has it
        if has_humans:
            groups[HUMANS] = cue.loc[cue["observer"].astype(str).map(is_human)]
        for name, group in groups.items():
            shape[name] = shape_bias(group)
            by_category[name] = shape_bias_by_category(group)

    return Summary(
        datasets=datasets, models=models, humans=humans,
        accuracy=_ordered(accuracy_by_dataset(trials, benchmark=False), datasets),
        ood_accuracy_by_dataset=_ordered(accuracy_by_dataset(trials, benchmark=True), datasets),
        ood_accuracy=ood_accuracy(trials),
        humanlike=by_dataset.groupby(level="observer").mean(), humanlike_by_dataset=by_dataset, shape_bias=shape,
        shape_bias_by_category=pd.DataFrame.from_dict(by_category, orient="index"),
        accuracy_by_condition=_accuracy_by_condition(trials), humanlike_by_condition=by_condition,
        entropy_by_condition=entropy_by_condition(trials), confusion=confusion_counts(trials),
        error_consistency_matrices=matrices, missing_datasets=missing_datasets(trials),
        imagenet_accuracy=_imagenet_accuracy(imagenet),
    )


def _imagenet_accuracy(imagenet: pd.DataFrame | None) -> pd.Series:
    if imagenet is None or len(imagenet) == 0:
        return pd.Series(dtype=float)
    plain = imagenet.assign(observer=imagenet["observer"].astype(str))
    return plain.groupby("observer")["correct"].mean().sort_values(ascending=False, kind="stable")


def _ordered(table: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    return table.reindex(columns=[d for d in datasets if d in table.columns])


def _accuracy_by_condition(trials: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (dataset, condition, observer), with the pooled humans, for accuracy-vs-distortion plots."""
    plain = trials[["dataset", "condition", "observer", "correct"]].astype(
        {"dataset": str, "condition": str, "observer": str})
    per_observer = plain.groupby(["dataset", "condition", "observer"])["correct"].mean()
    humans = plain.loc[plain["observer"].map(is_human)]
    frames = [per_observer.reset_index()]
    if len(humans):
        pooled = humans.groupby(["dataset", "condition"])["correct"].mean().reset_index()
        frames.append(pooled.assign(observer=HUMANS))
    return pd.concat(frames, ignore_index=True).rename(columns={"correct": "accuracy"})
