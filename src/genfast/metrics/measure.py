"""`measure`: every metric of a raw-data folder in one call, for a notebook (what `genfast metrics` computes)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from genfast.metrics.rawdata import RawData, is_human, load_raw_data
from genfast.metrics.summary import Summary, summarise


def select_models(trials: pd.DataFrame, models: Sequence[str] | None) -> pd.DataFrame:
    """`trials` with only the named models (and every human); ValueError naming unknown models."""
    if models is None:
        return trials
    names = trials["observer"].astype(str)
    found = set(names.unique())
    unknown = [m for m in models if m not in found]
    if unknown:
        available = sorted(n for n in found if not is_human(n))
        raise ValueError(f"models: no raw data for {', '.join(unknown)}; available: {', '.join(available)}")
    return trials.loc[names.isin(list(models)) | names.map(is_human)]


def summarise_models(trials: pd.DataFrame, imagenet: pd.DataFrame | None = None,
                     models: Sequence[str] | None = None) -> Summary:
    """summarise the trials (and ImageNet-validation trials) of `models` (None: all) and every human subject."""
    if imagenet is not None and models is not None:
        imagenet = imagenet.loc[imagenet["observer"].isin(list(models))]
    return summarise(select_models(trials, models), imagenet)


def measure(raw_data: str | Path | RawData, models: Sequence[str] | None = None,
            datasets: Sequence[str] | None = None, complete_only: bool = False) -> Summary:
    """Every metric of the `models` (None: all) and the human subjects of a raw-data folder (any layout
    `load_raw_data` reads, or a RawData), on `datasets` (None: all found); `complete_only` leaves out partial
    models. The numbers of `genfast metrics` and `genfast report --models`."""
    if isinstance(raw_data, RawData):
        if datasets is not None:
            raise ValueError("measure: datasets select files to read; pass the raw-data folder, not a RawData")
        raw = raw_data
    else:
        raw = load_raw_data(raw_data, datasets)
    if complete_only:
        raw = raw.without_partial_models()
    return summarise_models(raw.trials, raw.imagenet, models)
