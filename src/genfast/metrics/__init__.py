"""model-vs-human metrics: raw-data CSVs, accuracy, shape bias, OOD accuracy, error consistency, response entropy,
confusion counts, the toolbox's benchmark tables (Geirhos et al. 2021, bethgelab/model-vs-human) and each image's
cost to a model's error consistency; `measure(raw_data, models, datasets)` computes them all in one call."""
from __future__ import annotations

from genfast.metrics.accuracy import accuracy, accuracy_difference
from genfast.metrics.audit import image_costs
from genfast.metrics.benchmark import (HUMANS, accuracy_by_dataset, accuracy_ranking, benchmark_trials, humanlike,
                                       humanlike_by_condition, humanlike_by_dataset, humanlike_pairs,
                                       humanlike_ranking, ood_accuracy)
from genfast.metrics.consistency import (Consistency, consistency, correctness_matrix, error_consistency,
                                         error_consistency_matrix, pairwise_consistency)
from genfast.metrics.datasets import (DATASETS, PARAMETRIC_DATASETS, DatasetInfo, canonical_condition,
                                      dataset_info)
from genfast.metrics.measure import measure, select_models, summarise_models
from genfast.metrics.rawdata import (RawData, image_id, is_human, load_raw_data, missing_datasets, read_csv,
                                     read_performances, read_raw_data)
from genfast.metrics.responses import confusion_counts, entropy_by_condition
from genfast.metrics.shape_bias import ShapeBias, shape_bias, shape_bias_by_category, texture_category
from genfast.metrics.summary import Summary, summarise

__all__ = [
    "DATASETS", "HUMANS", "PARAMETRIC_DATASETS", "Consistency", "DatasetInfo", "RawData", "ShapeBias", "Summary",
    "accuracy", "accuracy_by_dataset", "accuracy_difference", "accuracy_ranking", "benchmark_trials",
    "canonical_condition", "confusion_counts", "consistency", "correctness_matrix", "dataset_info",
    "entropy_by_condition", "error_consistency", "error_consistency_matrix", "humanlike", "humanlike_by_condition",
    "humanlike_by_dataset", "humanlike_pairs", "humanlike_ranking", "image_costs", "image_id", "is_human",
    "load_raw_data", "measure", "missing_datasets", "ood_accuracy", "pairwise_consistency", "read_csv",
    "read_performances", "read_raw_data", "select_models", "shape_bias", "shape_bias_by_category", "summarise",
    "summarise_models", "texture_category",
]
