"""Read model-vs-human raw-data CSVs (one observer, one dataset per file) into one tidy DataFrame.

A file `<dataset>_<observer>_session-1.csv` (models) or `<dataset>_subject-NN_session_1.csv` (humans) has the
header `subj,session,trial,rt,object_response,category,condition,imagename` (any case). The observer is named
by the file, not by the `subj` column (the toolbox writes `simclr_resnet50x1` in files named
`simclr-resnet50x1`). Images are matched across observers by `image_id`, the toolbox's file-name suffix.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from genfast.metrics.datasets import canonical_condition, dataset_info

REQUIRED_COLUMNS: tuple[str, ...] = ("subj", "session", "trial", "rt", "object_response", "category",
                                     "condition", "imagename")
# Columns of the frame read_csv and read_raw_data return.
COLUMNS: tuple[str, ...] = ("dataset", "observer", "condition", "image_id", "imagename", "category",
                            "object_response", "correct", "rt", "trial", "file")

_CATEGORICAL = ("dataset", "observer", "condition", "category", "object_response", "file")
_FILE_NAME = re.compile(r"^(?P<dataset>[^_]+)_(?P<observer>.+)_session[-_](?P<session>\d+)\.csv$")
HUMAN_PREFIX = "subject-"


def is_human(observer: str) -> bool:
    """Whether `observer` is a human subject (the toolbox's rule: the name starts with 'subject-')."""
    return observer.startswith(HUMAN_PREFIX)


def image_id(imagename: str) -> str:
    """The image-specific suffix of a trial's image name, which is the same for every observer.

    `0001_cl_s01_bw_boat_40_n02951358_5952.png` -> `n02951358_5952.png` (ImageNet ids keep their `n0` part);
    `0001_s5n_s01_0_bird_00_bird3-bird2.png` -> `bird3-bird2.png`; a name without `_` is its own id.
    """
    parts = imagename.split("_")
    if len(parts) == 1:
        return imagename
    if parts[-2].startswith("n0"):
        return f"{parts[-2]}_{parts[-1]}"
    return parts[-1]


def parse_file_name(path: str | Path) -> tuple[str, str]:
    """(dataset, observer) from a raw-data file name; ValueError if the name does not follow the convention."""
    name = Path(path).name
    match = _FILE_NAME.match(name)
    if match is None:
        raise ValueError(f"{path}: raw-data file names must look like <dataset>_<observer>_session-1.csv")
    return match["dataset"], match["observer"]


def read_csv(path: str | Path) -> pd.DataFrame:
    """One raw-data CSV as a frame with COLUMNS; ValueError naming the file for any malformed content."""
    path = Path(path)
    dataset, observer = parse_file_name(path)
    try:
        dataset_info(dataset)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file (expected a header and trials)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed CSV: {exc}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; header must contain "
                         f"{','.join(REQUIRED_COLUMNS)}")
    if raw.empty:
        raise ValueError(f"{path}: no trials after the header")
    for column in ("object_response", "category", "imagename"):
        blank = raw[column].str.strip() == ""
        if blank.any():
            line = int(np.flatnonzero(blank.to_numpy())[0]) + 2
            raise ValueError(f"{path}: line {line}: empty {column!r} (truncated or malformed row)")
    try:
        conditions = {c: canonical_condition(dataset, c) for c in raw["condition"].unique()}
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    rt = pd.to_numeric(raw["rt"], errors="coerce")  # models write NaN
    trial = pd.to_numeric(raw["trial"], errors="coerce")
    responses = raw["object_response"].str.strip()
    categories = raw["category"].str.strip()
    frame = pd.DataFrame({
        "dataset": dataset,
        "observer": observer,
        "condition": raw["condition"].map(conditions),
        "image_id": raw["imagename"].map(image_id),
        "imagename": raw["imagename"],
        "category": categories,
        "object_response": responses,
        "correct": (responses == categories).to_numpy(),
        "rt": rt.astype(float),
        "trial": trial,
        "file": str(path),
    })
    for column in _CATEGORICAL:
        frame[column] = frame[column].astype("category")
    duplicated = frame.duplicated(subset=["condition", "image_id"])
    if duplicated.any():
        row = frame.loc[duplicated.idxmax()]
        raise ValueError(f"{path}: image {row['image_id']!r} appears more than once in condition "
                         f"{row['condition']!r}")
    return frame


def read_raw_data(path: str | Path, datasets: Iterable[str] | None = None) -> pd.DataFrame:
    """All observers of all datasets under `path` (a raw-data folder, one dataset folder, or one CSV).

    `datasets` restricts reading to those dataset names (each must be known and present).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"raw data {path} does not exist")
    wanted = None if datasets is None else list(datasets)
    for name in wanted or ():
        dataset_info(name)
    if path.is_file():
        files = [path]
    elif any(path.glob("*.csv")):
        files = sorted(path.glob("*.csv"))
    else:
        files = sorted(p for d in sorted(path.iterdir()) if d.is_dir() for p in d.glob("*.csv"))
    if wanted is not None:
        files = [f for f in files if parse_file_name(f)[0] in wanted]
        found = {parse_file_name(f)[0] for f in files}
        absent = [name for name in wanted if name not in found]
        if absent:
            raise ValueError(f"{path}: no raw data for dataset(s) {', '.join(absent)}")
    if not files:
        raise ValueError(f"{path}: no raw-data CSV files (<dataset>_<observer>_session-1.csv) found")
    frame = pd.concat([read_csv(f) for f in files], ignore_index=True)
    for column in _CATEGORICAL:  # concat turns categoricals with different categories back into objects
        frame[column] = frame[column].astype("category")
    repeated = frame.duplicated(subset=["dataset", "observer", "condition", "image_id"])
    if repeated.any():
        row = frame.loc[repeated.idxmax()]
        earlier = frame.loc[(frame[["dataset", "observer", "condition", "image_id"]]
                             == row[["dataset", "observer", "condition", "image_id"]]).all(axis=1), "file"]
        raise ValueError(f"image {row['image_id']!r} of observer {row['observer']!r} appears in several files: "
                         f"{', '.join(sorted(set(earlier)))}")
    return frame
