"""`genfast metrics --json` holds every number a table or figure shows, with its schema version and the BLAKE2b
digest of each file read: the tables' cells and the figures' data (read back from the matplotlib objects) are
found in it (the toolbox's figures: test_plots_toolbox.py), and the per-condition consistency and entropy, the
confusion counts and the error-consistency matrices agree with the toolbox's formulas applied to the CSV rows
here. The raw data are random files written here."""
from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest

from genfast.cli import main
from genfast.metrics import DATASETS, HUMANS, consistency, is_human, load_raw_data, summarise
from genfast.metrics.summary import SCHEMA_VERSION, Summary
from genfast.metrics.tables import display_tables
from genfast.plots import plot_accuracy_by_condition, plot_consistency, plot_shape_bias
from genfast.plots.style import observer_styles
from genfast.testing.rawdata import write_fake_raw_data

MODELS = ["alpha", "beta-net", "sd2-base"]
DATASETS_USED = ("contrast", "rotation", "edge", "cue-conflict")


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("run") / "raw-data"
    written = write_fake_raw_data(root, MODELS, subjects=3, datasets=DATASETS_USED)
    (root / "notes.txt").write_text("not read\n")
    return root, written


@pytest.fixture(scope="module")
def data(raw_data: tuple[Path, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("json") / "metrics.json"
    assert main(["metrics", "--raw-data", str(raw_data[0]), "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def summary(raw_data: tuple[Path, list[Path]]) -> Summary:
    return summarise(load_raw_data(raw_data[0]).trials)


def test_schema_version_and_digests(data: dict[str, Any], raw_data: tuple[Path, list[Path]],
                                    tmp_path: Path) -> None:
    assert data["schema_version"] == SCHEMA_VERSION == 2
    root, written = raw_data
    assert data["inputs"]["blake2b"] == {str(p): hashlib.blake2b(p.read_bytes()).hexdigest() for p in written}
    assert data["inputs"]["skipped"] == [f"{root / 'notes.txt'} (not a folder)"]  # skipped: not hashed
    out = tmp_path / "edge.json"
    assert main(["metrics", "--raw-data", str(root), "--datasets", "edge", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["inputs"]["blake2b"]) == {str(p) for p in written if p.parent.name == "edge"}


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield float(value)


def test_every_table_cell_is_in_the_json(data: dict[str, Any], summary: Summary) -> None:
    numbers = set(_numbers(data))
    cells = 0
    for title, table in display_tables(summary):
        for value in table.to_numpy().ravel():
            if isinstance(value, (int, float, np.number)) and not math.isnan(value):
                assert float(value) in numbers, (title, value)
                cells += 1
    assert cells > 100


def test_every_figure_value_is_in_the_json(data: dict[str, Any], summary: Summary) -> None:
    observers = data["observers"]
    by_label = {style.label: name for name, style in observer_styles(summary.models).items()}

    accuracy = plot_accuracy_by_condition(summary)
    for ax in accuracy.axes:
        if not ax.get_visible():
            continue
        conditions = DATASETS[ax.get_title()].condition_keys
        lines = [line for line in ax.get_lines() if line.get_label() in by_label]
        assert len(lines) == len(MODELS) + 1
        for line in lines:
            entry = observers[by_label[line.get_label()]]["by_condition"][ax.get_title()]
            assert list(line.get_ydata()) == [entry[c]["accuracy"] for c in conditions]

    shape = plot_shape_bias(summary)
    ax = shape.axes[0]
    categories = [t.get_text() for t in ax.get_yticklabels()]
    labels = [t.get_text().rsplit(" (", 1)[0] for t in shape.legends[0].get_texts()]
    for label, points in zip(labels, ax.collections):
        entry = observers[by_label[label]]
        expected = [entry["shape_bias_by_category"].get(c, math.nan) for c in categories]  # NaN: not drawn
        np.testing.assert_array_equal(points.get_offsets()[:, 0], expected)
    verticals = [line.get_xdata()[0] for line in ax.get_lines()
                 if line.get_xdata()[0] == line.get_xdata()[1] and line.get_ydata()[0] != line.get_ydata()[1]]
    assert verticals == [observers[by_label[label]]["shape_bias"] for label in labels]

    bars = plot_consistency(summary)
    rows = [by_label[t.get_text()] for t in bars.axes[0].get_yticklabels()]
    for ax, metric in zip(bars.axes, ("error_consistency", "observed_consistency", "accuracy_difference")):
        assert [bar.get_width() for bar in ax.patches] == [observers[name][metric] for name in rows]
        for name, dots in zip(rows, ax.collections):
            per_dataset = [entry[metric] for entry in observers[name]["humanlike_by_dataset"].values()]
            assert sorted(dots.get_offsets()[:, 0]) == sorted(per_dataset)


def _rows(written: list[Path]) -> pd.DataFrame:
    """The CSV rows as written, with the observer and dataset of each file and the toolbox's condition key."""
    frames = []
    for path in written:
        dataset, observer = path.parent.name, path.name[len(path.parent.name) + 1:].rsplit("_session", 1)[0]
        with path.open(newline="") as f:
            rows = pd.DataFrame(list(csv.DictReader(f)))
        frames.append(rows.assign(dataset=dataset, observer=observer,
                                  condition=rows["condition"] if DATASETS[dataset].parametric else "all",
                                  image=rows["imagename"].str.split("_").str[-1]))
    return pd.concat(frames, ignore_index=True)


def _toolbox_entropy(rows: pd.DataFrame) -> float:
    """The toolbox's Entropy.analysis for one observer's rows of one condition."""
    entropy = 0.0
    for category in rows["category"].unique():
        p = (rows["object_response"] == category).sum() / len(rows)
        if category != "na" and p > 1e-5:
            entropy -= p * math.log2(p)
    return entropy


def test_per_condition_numbers_confusion_and_matrices(data: dict[str, Any],
                                                      raw_data: tuple[Path, list[Path]]) -> None:
    rows = _rows(raw_data[1])
    observers = data["observers"]
    subjects = sorted(o for o in rows["observer"].unique() if is_human(o))
    right = rows.assign(correct=rows["object_response"] == rows["category"]).sort_values("image")
    for (dataset, condition), block in right.groupby(["dataset", "condition"]):
        correct = {o: group["correct"].to_numpy() for o, group in block.groupby("observer")}
        for model in MODELS:
            entry = observers[model]["by_condition"][dataset][condition]
            assert entry["entropy"] == pytest.approx(_toolbox_entropy(block.loc[block["observer"] == model]))
            kappa = [consistency(correct[model], correct[s]).error_consistency for s in subjects]
            assert entry["error_consistency"] == pytest.approx(np.mean(kappa))
        pooled = observers[HUMANS]["by_condition"][dataset][condition]
        assert pooled["entropy"] == pytest.approx(np.mean([_toolbox_entropy(block.loc[block["observer"] == s])
                                                           for s in subjects]))
    keys = ["dataset", "condition", "category", "object_response"]
    counts = Counter(zip(rows["observer"], *(rows[k] for k in keys)))
    humans = Counter(zip(*(rows.loc[rows["observer"].map(is_human), k] for k in keys)))
    found = {(o, d, c, k, r): n for o, entry in observers.items()
             for d, conditions in entry["confusion"].items() for c, categories in conditions.items()
             for k, responses in categories.items() for r, n in responses.items()}
    assert found == {**counts, **{(HUMANS, *key): n for key, n in humans.items()}}
    assert all(isinstance(n, int) for n in found.values())
    matrices = data["error_consistency_matrices"]
    assert list(matrices) == ["edge", "cue-conflict"]  # the non-parametric datasets, as the toolbox draws them
    for dataset, matrix in matrices.items():
        block = right.loc[right["dataset"] == dataset]
        correct = {o: group["correct"].to_numpy() for o, group in block.groupby("observer")}
        assert matrix["observers"] == [*MODELS, *subjects]
        for i, a in enumerate(matrix["observers"]):
            for j, b in enumerate(matrix["observers"]):
                expected = consistency(correct[a], correct[b]).error_consistency
                assert matrix["error_consistency"][i][j] == pytest.approx(expected)
