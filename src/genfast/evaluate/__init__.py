"""model-vs-human evaluation: stimulus datasets, a resumable classification run and the toolbox's raw data."""
from __future__ import annotations

from genfast.evaluate.datasets import Dataset, Item, Skipped, find_datasets, load_dataset, load_datasets
from genfast.evaluate.rawdata import HEADER, Row, raw_data_path, sanitise_name, write_raw_data
from genfast.evaluate.run import DatasetResult, EvaluateConfig, evaluate
from genfast.vocabulary import DEFAULT_PROMPT, MVH_CLASSES

__all__ = ["DEFAULT_PROMPT", "HEADER", "MVH_CLASSES", "Dataset", "DatasetResult", "EvaluateConfig",
           "Item", "Row", "Skipped", "evaluate", "find_datasets", "load_dataset", "load_datasets", "raw_data_path",
           "sanitise_name", "write_raw_data"]
