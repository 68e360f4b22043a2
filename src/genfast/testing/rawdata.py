"""Random model-vs-human raw data in genfast's layout, for any number of models and human subjects: each observer is
right with its own probability (lower at stronger distortions), otherwise it answers the texture class
(cue-conflict) or a random class; every observer sees the same images."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from genfast.metrics.datasets import SHAPE_BIAS_DATASET, dataset_info
from genfast.metrics.rawdata import HUMAN_PREFIX, REQUIRED_COLUMNS, is_human

CLASSES: tuple[str, ...] = ("airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock",
                            "dog", "elephant", "keyboard", "knife", "oven", "truck")


def write_fake_raw_data(raw_data: str | Path, models: Sequence[str], subjects: int = 2,
                        datasets: Sequence[str] = ("contrast", SHAPE_BIAS_DATASET), images: int = 16,
                        seed: int = 0) -> list[Path]:
    """Write `<raw_data>/<dataset>/<dataset>_<observer>_session-1.csv` for `models` and `subjects` human subjects
    (subject-01, ...), `images` per condition (image i shows class i mod 16); return the files written."""
    rng = np.random.default_rng(seed)
    observers = [*models, *(f"{HUMAN_PREFIX}{s:02d}" for s in range(1, subjects + 1))]
    skill = dict(zip(observers, rng.uniform(0.3, 0.95, len(observers))))
    written = []
    for dataset in datasets:
        info = dataset_info(dataset)
        conditions = info.condition_keys or ("0",)
        for observer in observers:
            rows: list[list[object]] = [list(REQUIRED_COLUMNS)]
            for level, condition in enumerate(conditions):
                p_right = skill[observer] * (1 - 0.7 * level / max(len(conditions) - 1, 1))
                draws = rng.random(images)
                for i in range(images):
                    category, texture = CLASSES[i % 16], CLASSES[(i + 3) % 16]
                    image = (f"{category}{i}-{texture}{i}.png" if dataset == SHAPE_BIAS_DATASET
                             else f"n0{i:07d}_{i}.png")
                    response = (category if draws[i] < p_right else
                                texture if draws[i] < p_right + (1 - p_right) / 2 else CLASSES[rng.integers(16)])
                    rows.append([observer, 1, len(rows), "NaN", response, category, condition,
                                 f"{len(rows):04d}_{dataset}_{condition}_{category}_{image}"])
            separator = "_" if is_human(observer) else "-"  # the toolbox's file names
            path = Path(raw_data) / dataset / f"{dataset}_{observer}_session{separator}1.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as f:
                csv.writer(f).writerows(rows)
            written.append(path)
    return written
