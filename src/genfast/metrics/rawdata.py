"""Read model-vs-human raw-data CSVs (one observer, one dataset per file) into one tidy DataFrame.

A file `<dataset>_<observer>_session-1.csv` (models) or `<dataset>_subject-NN_session_1.csv` (humans) has the
header `subj,session,trial,rt,object_response,category,condition,imagename` (any case). The observer is named
by the file, not by the `subj` column (the toolbox writes `simclr_resnet50x1` in files named
`simclr-resnet50x1`). Images are matched across observers by `image_id`, the toolbox's file-name suffix.

Two layouts are read: genfast's (`raw-data/<dataset>/...`, as `genfast evaluate` writes it) and the toolbox's
(bethgelab/model-vs-human: the same dataset folders, plus what its `Evaluate` writes next to them:
`performances/<model>.csv`, one accuracy per dataset and metric, and `imagenet_validation/`, model trials on
the 1000-class ImageNet validation images). The toolbox's performances are checked against the trials, its
ImageNet trials give a clean top-1 accuracy shown apart from the benchmark.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from genfast.metrics.datasets import DATASETS, SINGLE_CONDITION, canonical_condition, dataset_info

REQUIRED_COLUMNS: tuple[str, ...] = ("subj", "session", "trial", "rt", "object_response", "category",
                                     "condition", "imagename")
# Columns of the frame read_csv and read_raw_data return.
COLUMNS: tuple[str, ...] = ("dataset", "observer", "condition", "image_id", "imagename", "category",
                            "object_response", "correct", "rt", "trial", "file")

_CATEGORICAL = ("dataset", "observer", "condition", "category", "object_response", "file")
IMAGENET_VALIDATION = "imagenet_validation"
"""The toolbox's ImageNet validation dataset: model trials only, 1000 classes, not part of the benchmark."""
PERFORMANCES = "performances"
"""The toolbox's folder of per-model accuracies, `<model>.csv` with PERFORMANCE_COLUMNS (not trials)."""
PERFORMANCE_COLUMNS: tuple[str, ...] = ("subj", "dataset_name", "metric_name", "performance")
TOP1 = "accuracy (top-1)"
_AGREE = 1e-9  # a performance agrees with the trials' accuracy within this
_FILE_NAME = re.compile(rf"^(?P<dataset>{IMAGENET_VALIDATION}|[^_]+)_(?P<observer>.+)_session[-_](?P<session>\d+)"
                        r"\.csv$")
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


def _read_table(path: Path, required: tuple[str, ...], rows: str) -> pd.DataFrame:
    """A CSV as strings with lower-case column names; ValueError naming the file unless it has `required` columns
    and at least one row (`rows` names them in the message)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: empty file (expected a header and {rows})") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed CSV: {exc}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; header must contain {','.join(required)}")
    if raw.empty:
        raise ValueError(f"{path}: no {rows} after the header")
    return raw


def read_csv(path: str | Path) -> pd.DataFrame:
    """One raw-data CSV as a frame with COLUMNS; ValueError naming the file for any malformed content.

    A file of IMAGENET_VALIDATION has one condition, SINGLE_CONDITION (the toolbox writes NaN).
    """
    path = Path(path)
    dataset, observer = parse_file_name(path)
    if dataset != IMAGENET_VALIDATION:
        try:
            dataset_info(dataset)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    raw = _read_table(path, REQUIRED_COLUMNS, "trials")
    for column in ("object_response", "category", "imagename"):
        blank = raw[column].str.strip() == ""
        if blank.any():
            line = int(np.flatnonzero(blank.to_numpy())[0]) + 2
            raise ValueError(f"{path}: line {line}: empty {column!r} (truncated or malformed row)")
    if dataset == IMAGENET_VALIDATION:
        conditions = dict.fromkeys(raw["condition"].unique(), SINGLE_CONDITION)
    else:
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


def read_performances(path: str | Path) -> pd.DataFrame:
    """One toolbox `performances/<model>.csv` as rows (model, dataset, metric, performance, file); the model is
    the file's name with '_' as '-', as the toolbox names it in raw-data files. ValueError naming the file."""
    path = Path(path)
    raw = _read_table(path, PERFORMANCE_COLUMNS, "values")
    values = pd.to_numeric(raw["performance"], errors="coerce")
    if values.isna().any():
        line = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
        raise ValueError(f"{path}: line {line}: performance {raw['performance'].iloc[line - 2]!r} is not a number")
    return pd.DataFrame({"model": path.stem.replace("_", "-"), "dataset": raw["dataset_name"].str.strip(),
                         "metric": raw["metric_name"].str.strip(), "performance": values.astype(float),
                         "file": str(path)})


def missing_datasets(trials: pd.DataFrame) -> dict[str, list[str]]:
    """The partial models of `trials`: each model lacking a dataset that `trials` hold, with the datasets it lacks."""
    have = trials.groupby(["observer", "dataset"], observed=True).size().index
    present = {str(d) for d in have.get_level_values("dataset")}
    datasets = [d for d in DATASETS if d in present]
    by_model: dict[str, set[str]] = {}
    for observer, dataset in have:
        if not is_human(str(observer)):
            by_model.setdefault(str(observer), set()).add(str(dataset))
    return {model: [d for d in datasets if d not in got] for model, got in sorted(by_model.items())
            if len(got) < len(datasets)}


@dataclass(frozen=True)
class RawData:
    """A raw-data folder as read: benchmark trials, ImageNet-validation trials and the toolbox's performances
    (both possibly empty), one line for each thing read, skipped (with why) or inconsistent, and the BLAKE2b
    digest of every file read."""

    path: Path
    trials: pd.DataFrame  # COLUMNS
    imagenet: pd.DataFrame  # COLUMNS, dataset IMAGENET_VALIDATION
    performances: pd.DataFrame  # model, dataset, metric, performance, file
    read: list[str]
    skipped: list[str]
    warnings: list[str]
    digests: dict[str, str]  # file read: hashlib.blake2b of its bytes, hex

    def inputs(self) -> dict[str, Any]:
        """What was read, skipped and warned about, and the digest of each file read (the JSON's `inputs`)."""
        return {"read": self.read, "skipped": self.skipped, "warnings": self.warnings, "blake2b": self.digests}

    def without_partial_models(self) -> RawData:
        """The same data without the models that lack a dataset (listed in `skipped`); ValueError if none is left."""
        missing = missing_datasets(self.trials)
        if not missing:
            return self
        models = {str(o) for o in self.trials["observer"].unique() if not is_human(str(o))}
        lacks = "; ".join(f"{m} lacks {', '.join(d)}" for m, d in missing.items())
        if models <= set(missing):
            raise ValueError(f"{self.path}: no complete model ({lacks}); choose datasets every model has "
                             f"with --datasets")
        return replace(
            self, trials=self.trials.loc[~self.trials["observer"].isin(list(missing))],
            imagenet=self.imagenet.loc[~self.imagenet["observer"].isin(list(missing))],
            skipped=[*self.skipped, *(f"partial model {m} (--complete-only; lacks {', '.join(d)})"
                                      for m, d in missing.items())])


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of read_csv as one; ValueError naming the files when an observer's image appears in several."""
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="category" if c in _CATEGORICAL else object) for c in COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    for column in _CATEGORICAL:  # concat turns categoricals with different categories back into objects
        frame[column] = frame[column].astype("category")
    key = ["dataset", "observer", "condition", "image_id"]
    repeated = frame.duplicated(subset=key)
    if repeated.any():
        row = frame.loc[repeated.idxmax()]
        earlier = frame.loc[(frame[key] == row[key]).all(axis=1), "file"]
        raise ValueError(f"image {row['image_id']!r} of observer {row['observer']!r} appears in several files: "
                         f"{', '.join(sorted(set(earlier)))}")
    return frame


def _find_files(path: Path) -> tuple[list[Path], list[Path], list[str]]:
    """(raw-data CSVs, performance CSVs, skipped entries with why) of a file, a dataset folder or a raw-data folder."""
    if path.is_file():
        return [path], [], []
    folders: list[Path] = []
    skipped: list[str] = []
    if any(path.glob("*.csv")):
        folders.append(path)
    else:
        for entry in sorted(path.iterdir()):
            if entry.name.startswith("."):
                skipped.append(f"{entry} (hidden)")
            elif not entry.is_dir():
                skipped.append(f"{entry} (not a folder)")
            elif not any(entry.glob("*.csv")):
                skipped.append(f"{entry} (no CSV files)")
            else:
                folders.append(entry)
    trials = [f for d in folders if d.name != PERFORMANCES for f in sorted(d.glob("*.csv"))]
    performances = [f for d in folders if d.name == PERFORMANCES for f in sorted(d.glob("*.csv"))]
    return trials, performances, skipped


def _check_performances(performances: pd.DataFrame, trials: list[pd.DataFrame]) -> tuple[int, list[str]]:
    """(values checked, one warning per disagreement): each top-1 accuracy against the accuracy of its trials."""
    accuracy: dict[tuple[str, str], float] = {}
    for frame in trials:
        if len(frame):
            accuracy.update(frame.groupby(["observer", "dataset"], observed=True)["correct"].mean().to_dict())
    checked, warnings = 0, []
    for row in performances.itertuples(index=False):
        value = accuracy.get((row.model, row.dataset)) if row.metric == TOP1 else None
        if value is None:
            continue
        checked += 1
        if abs(value - row.performance) > _AGREE:
            warnings.append(f"{row.file}: {TOP1} on {row.dataset} is {row.performance:.6g} but the raw data of "
                            f"{row.model} give {value:.6g} (files from different runs?)")
    return checked, warnings


def load_raw_data(path: str | Path, datasets: Iterable[str] | None = None) -> RawData:
    """Everything under `path`: one CSV, one dataset folder, a raw-data folder in genfast's or the toolbox's
    layout, or a folder holding `raw-data/` (the toolbox's checkout, `genfast evaluate --out`).

    `datasets` restricts reading to those benchmark datasets (each must be known and present).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"raw data {path} does not exist")
    wanted = None if datasets is None else list(datasets)
    for name in wanted or ():
        dataset_info(name)
    read: list[str] = []
    if path.is_dir() and (path / "raw-data").is_dir():
        read.append(f"{path}: the raw data in {path / 'raw-data'}")
        path = path / "raw-data"
    files, performance_files, skipped = _find_files(path)
    imagenet_files = [f for f in files if parse_file_name(f)[0] == IMAGENET_VALIDATION]
    files = [f for f in files if f not in imagenet_files]
    if wanted is not None:
        files = [f for f in files if parse_file_name(f)[0] in wanted]
        found = {parse_file_name(f)[0] for f in files}
        absent = [name for name in wanted if name not in found]
        if absent:
            raise ValueError(f"{path}: no raw data for dataset(s) {', '.join(absent)}")
        skipped += [f"{f} (not among --datasets)" for f in imagenet_files]
        imagenet_files = []
    if not files:
        raise ValueError(f"{path}: no raw-data CSV files (<dataset>_<observer>_session-1.csv) found")
    trials = _combine([read_csv(f) for f in files])
    imagenet = _combine([read_csv(f) for f in imagenet_files])
    read.append(f"{len(files)} raw-data file(s) in {len({f.parent for f in files})} folder(s) of {path}")
    if imagenet_files:
        read.append(f"{len(imagenet_files)} {IMAGENET_VALIDATION} file(s) ({imagenet_files[0].parent}): top-1 "
                    f"accuracy of {imagenet['observer'].nunique()} model(s) on clean ImageNet validation images, "
                    f"shown apart (1000 classes, no human data: not part of the benchmark)")
    performances = pd.concat([read_performances(f) for f in performance_files], ignore_index=True) \
        if performance_files else pd.DataFrame(columns=["model", "dataset", "metric", "performance", "file"])
    warnings: list[str] = []
    if performance_files:
        checked, warnings = _check_performances(performances, [trials, imagenet])
        read.append(f"{len(performance_files)} toolbox {PERFORMANCES} file(s) ({performance_files[0].parent}), "
                    f"{len(performances)} value(s), summaries rather than trials: {checked} top-1 accuracies "
                    f"checked against the trials read ({checked - len(warnings)} agree), "
                    f"{len(performances) - checked} not checkable (top-5, or no trials read for them)")
    digests = {str(f): hashlib.blake2b(f.read_bytes()).hexdigest() for f in [*files, *imagenet_files,
                                                                            *performance_files]}
    return RawData(path, trials, imagenet, performances, read, skipped, warnings, digests)


def read_raw_data(path: str | Path, datasets: Iterable[str] | None = None) -> pd.DataFrame:
    """The benchmark trials of every observer under `path` (see load_raw_data; `datasets` restricts them)."""
    return load_raw_data(path, datasets).trials
