"""The toolbox's figures that genfast draws, on random raw data written here: every value drawn is read back from the
matplotlib objects (lines, bands, bars, points, images, tick labels) and found in the metrics JSON, laid out as
the toolbox lays it out (its order of observers and conditions, its labels, limits and reference lines). A partial
model (one lacking datasets) is marked and ranked apart in the figures of means over datasets, and absent from the
figures of a dataset it lacks."""
from __future__ import annotations

import json
import math
from pathlib import Path
import shutil
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
import numpy as np
import pytest

from genfast.cli import main
from genfast.metrics import DATASETS, HUMANS, Summary, load_raw_data, summarise
from genfast.metrics.tables import PARTIAL
from genfast.plots import (plot_accuracy_by_condition, plot_benchmark_bars, plot_benchmark_scatter,
                           plot_confusion_matrices, plot_consistency, plot_dataset_accuracy_bars,
                           plot_entropy_by_condition, plot_error_consistency_by_condition,
                           plot_error_consistency_matrix, plot_shape_bias, plot_shape_bias_boxplot)
from genfast.plots.benchmark import BENCHMARK_METRICS, SCATTER_PAIRS
from genfast.plots.style import PARTIAL_HATCH, observer_styles
from genfast.testing.rawdata import CLASSES, write_fake_raw_data

MODELS = ["alpha", "beta-net", "resnet50", "sd2-base"]
SUBJECTS = ["subject-01", "subject-02", "subject-03"]
DATASETS_USED = ("contrast", "rotation", "edge", "cue-conflict")
LABELS = {style.label: name for name, style in observer_styles(MODELS).items()}


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run") / "raw-data"
    write_fake_raw_data(root, MODELS, subjects=len(SUBJECTS), datasets=DATASETS_USED, images=48, seed=3)
    return root


@pytest.fixture(scope="module")
def summary(raw_data: Path) -> Summary:
    return summarise(load_raw_data(raw_data).trials)


@pytest.fixture(scope="module")
def observers(raw_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("json") / "metrics.json"
    assert main(["metrics", "--raw-data", str(raw_data), "--json", str(out)]) == 0
    return json.loads(out.read_text())["observers"]


def _marker_lines(ax: Any) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_marker() not in ("None", None, "")]


@pytest.mark.parametrize("plot, metric, ylabel, reference", [
    (plot_entropy_by_condition, "entropy", "Response distr. entropy [bits]", 4.0),
    (plot_error_consistency_by_condition, "error_consistency", "Error consistency (kappa)", 0.0)])
def test_numbers_against_condition(summary: Summary, observers: dict[str, Any], plot: Any, metric: str,
                                   ylabel: str, reference: float) -> None:
    figure = plot(summary)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["contrast", "rotation"]  # the parametric datasets
    assert panels[0].get_ylabel() == ylabel
    for ax in panels:
        keys = DATASETS[ax.get_title()].condition_keys
        assert [t.get_text() for t in ax.get_xticklabels()] == [c.label for c in DATASETS[ax.get_title()].conditions]
        lines = _marker_lines(ax)
        assert [line.get_label() for line in lines] == list(LABELS)  # every model, in legend order, humans last
        values = []
        for line in lines:
            entry = observers[LABELS[line.get_label()]]["by_condition"][ax.get_title()]
            values.append([entry[k][metric] for k in keys])
            assert list(line.get_ydata()) == values[-1]
        band = ax.collections[0].get_paths()[0].vertices  # the subjects' range
        subjects = np.array([[observers[s]["by_condition"][ax.get_title()][k][metric] for k in keys]
                             for s in SUBJECTS])
        for i in range(len(keys)):
            at = band[band[:, 0] == i, 1]
            assert (at.min(), at.max()) == (subjects[:, i].min(), subjects[:, i].max())
        dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert [tuple(line.get_ydata()) for line in dotted] == [(reference, reference)]
        assert ax.get_ylim()[0] <= min(min(v) for v in values)  # nothing is cut off below
    entropy_max = max(max(line.get_ydata()) for ax in panels for line in _marker_lines(ax))
    assert metric != "entropy" or entropy_max <= math.log2(16)


@pytest.mark.parametrize("metric", BENCHMARK_METRICS)
def test_benchmark_bars(summary: Summary, observers: dict[str, Any], metric: str) -> None:
    figure = plot_benchmark_bars(summary, metric)
    ax = figure.axes[0]
    rows = [LABELS[t.get_text()] for t in ax.get_yticklabels()]
    widths = [bar.get_width() for bar in ax.patches]
    assert sorted(rows) == sorted([*MODELS, HUMANS]) and widths == [observers[name][metric] for name in rows]
    lower_is_better = metric == "accuracy_difference"
    assert widths == sorted(widths, reverse=not lower_is_better)  # the toolbox's order: best first (on top)
    assert ax.get_xlabel() == BENCHMARK_METRICS[metric][0]
    assert ax.get_xlim()[1] == max(0.15 if lower_is_better else 0.0, math.ceil(max(widths) * 10) / 10)
    assert [t.get_text() for t in ax.texts] == [f"{w:.3f}" for w in widths]


def test_dataset_accuracy_bars(summary: Summary, observers: dict[str, Any]) -> None:
    ax = plot_dataset_accuracy_bars(summary, "edge").axes[0]
    rows = [LABELS[t.get_text()] for t in ax.get_yticklabels()]
    assert [bar.get_width() for bar in ax.patches] == [observers[n]["ood_accuracy_by_dataset"]["edge"] for n in rows]
    with pytest.raises(ValueError, match="^dataset 'sketch' is not in the raw data"):
        plot_dataset_accuracy_bars(summary, "sketch")


def test_benchmark_scatter(summary: Summary, observers: dict[str, Any]) -> None:
    figure = plot_benchmark_scatter(summary)
    assert len(figure.axes) == len(SCATTER_PAIRS) == 6
    human_accuracy = observers[HUMANS]["ood_accuracy"]
    for ax, (x_metric, y_metric) in zip(figure.axes, SCATTER_PAIRS):
        assert (ax.get_xlabel(), ax.get_ylabel()) == (BENCHMARK_METRICS[x_metric][0], BENCHMARK_METRICS[y_metric][0])
        points = _marker_lines(ax)
        assert [p.get_label() for p in points] == list(LABELS)
        for point in points:
            entry = observers[LABELS[point.get_label()]]
            assert (point.get_xdata()[0], point.get_ydata()[0]) == (entry[x_metric], entry[y_metric])
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        expected = {"observed_consistency": lambda a: a * human_accuracy + (1 - a) * (1 - human_accuracy),
                    "error_consistency": lambda a: 0 * a}
        if x_metric == "ood_accuracy" and y_metric in expected:
            (line,) = dashed
            np.testing.assert_allclose(line.get_ydata(), expected[y_metric](line.get_xdata()))
            assert [t.get_text() for t in ax.texts] == ["expected"]
        else:
            assert not dashed and not ax.texts
        lowest = -0.03 if (x_metric, y_metric) == ("ood_accuracy", "error_consistency") else 0.0
        ys = [observers[LABELS[p.get_label()]][y_metric] for p in points]
        assert ax.get_ylim() == (min(lowest, min(ys)), math.ceil(max(ys) * 10) / 10)


def test_error_consistency_matrix(summary: Summary, raw_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    assert main(["metrics", "--raw-data", str(raw_data), "--json", str(out)]) == 0
    matrices = json.loads(out.read_text())["error_consistency_matrices"]
    styles = observer_styles(MODELS)
    figure = plot_error_consistency_matrix(summary, "edge")
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [*(styles[m].label for m in styles if m != HUMANS), *SUBJECTS]  # the toolbox's order
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    order = [LABELS.get(label, label) for label in labels]
    stored = matrices["edge"]
    index = [stored["observers"].index(name) for name in order]
    np.testing.assert_array_equal(ax.images[0].get_array(), np.array(stored["error_consistency"])[np.ix_(index, index)])
    assert ax.images[0].norm.vmin == -1 and ax.images[0].norm.vmax == 1
    colours = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert colours["resnet50"] == pytest.approx((150 / 255,) * 3)  # the toolbox's darker grey for text
    assert colours["subject-02"] == styles[HUMANS].colour

    top = plot_error_consistency_matrix(summary, "edge", top=2).axes[0]
    by_subjects = {m: np.mean([stored["error_consistency"][stored["observers"].index(m)][stored["observers"].index(s)]
                               for s in SUBJECTS]) for m in MODELS}
    best = sorted(MODELS, key=lambda m: -by_subjects[m])[:2]
    assert [t.get_text() for t in top.get_yticklabels()] == [
        *(styles[m].label for m in styles if m in best), *SUBJECTS]
    assert "the 2 of 4 models most error-consistent" in top.get_title()
    with pytest.raises(ValueError, match="^error-consistency matrix: dataset 'contrast' has none"):
        plot_error_consistency_matrix(summary, "contrast")
    with pytest.raises(ValueError, match="^top must be a positive number of models, got 0$"):
        plot_error_consistency_matrix(summary, "edge", top=0)


def _panels(figure: Figure) -> dict[str, Any]:
    return {ax.get_title(): ax for ax in figure.axes if ax.get_visible() and ax.get_title()}


def test_confusion_matrices(summary: Summary, observers: dict[str, Any]) -> None:
    figure = plot_confusion_matrices(summary, "contrast")
    panels = _panels(figure)
    levels = [c.label for c in DATASETS["contrast"].conditions]
    assert list(panels) == [f"{label}, {level}" for label in LABELS for level in levels]  # observer x condition
    decisions, presented = ["na", *sorted(CLASSES)], sorted(CLASSES)
    first = panels[f"alpha, {levels[0]}"]
    assert [t.get_text() for t in first.get_yticklabels()] == decisions and first.get_ylabel() == "Decision"
    bottom = panels[f"humans, {levels[0]}"]
    assert [t.get_text() for t in bottom.get_xticklabels()] == presented
    assert bottom.get_xlabel() == "Presented category"
    for label, key in ((f"beta-net, {levels[1]}", ("beta-net", "c50")), (f"humans, {levels[5]}", (HUMANS, "c05"))):
        counts = observers[key[0]]["confusion"]["contrast"][key[1]]
        table = np.array([[counts.get(p, {}).get(d, 0) for p in presented] for d in decisions], dtype=float)
        image = panels[label].images[0]
        np.testing.assert_allclose(image.get_array(), 100 * table / table.sum(axis=0))
        assert (image.norm.vmin, image.norm.vmax) == (0, 100)
    edge = _panels(plot_confusion_matrices(summary, "edge", top=2))
    assert len(edge) == 3 and all(not title.endswith(",") for title in edge)  # one condition: no level
    with pytest.raises(ValueError, match="^confusion matrices: dataset 'sketch' is not in the raw data"):
        plot_confusion_matrices(summary, "sketch")


def test_without_subjects_the_top_models_are_the_most_accurate(raw_data: Path, observers: dict[str, Any]) -> None:
    trials = load_raw_data(raw_data).trials
    models_only = summarise(trials.loc[trials["observer"].isin(MODELS)])
    figure = plot_confusion_matrices(models_only, "edge", top=2)
    best = sorted(MODELS, key=lambda m: -observers[m]["accuracy"]["edge"])[:2]
    assert set(_panels(figure)) == {observer_styles(MODELS)[m].label for m in best}  # no humans panel
    assert "the 2 of 4 models most accurate" in figure.get_suptitle()


def test_shape_bias_boxplot(summary: Summary, observers: dict[str, Any]) -> None:
    ax = plot_shape_bias_boxplot(summary).axes[0]
    names = [LABELS[t.get_text()] for t in ax.get_xticklabels()]
    assert names == list(LABELS) and ax.get_ylabel() == "shape bias"  # legend order, humans last
    for name, box in zip(names, ax.patches):
        entry = observers[name]
        values = list((entry["shape_bias_by_category_subject_mean"] if name == HUMANS
                       else entry["shape_bias_by_category"]).values())
        heights = box.get_path().vertices[:, 1]
        assert (heights.min(), heights.max()) == pytest.approx(tuple(np.percentile(values, [25, 75])))
    for category, mean in observers[HUMANS]["shape_bias_by_category_subject_mean"].items():
        per_subject = [observers[s]["shape_bias_by_category"].get(category) for s in SUBJECTS]
        assert mean == pytest.approx(np.mean([v for v in per_subject if v is not None]))  # NaN: not in the JSON


# --- partial models: marked in the figures of means over datasets, absent where they lack the dataset ------------

PARTIAL_MODEL, LACKS = "beta-net", ("rotation", "edge")
PARTIAL_LABEL = observer_styles(MODELS)[PARTIAL_MODEL].label + PARTIAL


@pytest.fixture(scope="module")
def partial_summary(raw_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Summary:
    """The raw data above without beta-net's rotation and edge files."""
    root = tmp_path_factory.mktemp("partial") / "raw-data"
    left_out = {f"{dataset}_{PARTIAL_MODEL}_session-1.csv" for dataset in LACKS}
    shutil.copytree(raw_data, root, ignore=lambda folder, names: [n for n in names if n in left_out])
    summary = summarise(load_raw_data(root).trials)
    assert summary.missing_datasets == {PARTIAL_MODEL: list(LACKS)}
    return summary


def _texts(figure: Figure) -> list[str]:
    """Every tick label, title, line label and legend text of `figure`."""
    texts = [figure.get_suptitle()]
    for ax in figure.axes:
        texts += [t.get_text() for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]]
        texts += [ax.get_title(), *(line.get_label() for line in ax.get_lines())]
    return texts + [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def _check_ranked_apart(ax: Any, values: dict[str, float], lower_is_better: bool, last: list[str]) -> None:
    """The bars of `ax`: the observers of `values` best first, the partial model after them (and after `last`),
    hatched and lighter, below a dotted line; a plain ranking would not put it last."""
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == PARTIAL_LABEL and PARTIAL_MODEL not in labels
    rows = [LABELS[label] for label in labels[:-1]]
    complete = [name for name in rows if name not in last]
    best_first = sorted(complete, key=lambda name: values[name], reverse=not lower_is_better)
    assert rows == best_first + last
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == [values[name] for name in [*rows, PARTIAL_MODEL]]
    plain = sorted(values, key=lambda name: values[name], reverse=not lower_is_better)
    assert plain[-1] != PARTIAL_MODEL  # ranked with the others, it would not come last
    assert [bar.get_hatch() for bar in ax.patches] == [None] * len(rows) + [PARTIAL_HATCH]
    colour = observer_styles(MODELS)[PARTIAL_MODEL].colour
    shown = ax.patches[-1].get_facecolor()[:3]
    assert all(a >= b for a, b in zip(shown, colour)) and sum(shown) > sum(colour)  # lighter
    assert [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"] == [len(rows) - 0.5]


@pytest.mark.parametrize("metric", BENCHMARK_METRICS)
def test_benchmark_bars_rank_a_partial_model_apart(partial_summary: Summary, metric: str) -> None:
    figure = plot_benchmark_bars(partial_summary, metric)
    values = partial_summary.humanlike[metric] if metric != "ood_accuracy" else partial_summary.ood_accuracy
    _check_ranked_apart(figure.axes[0], {n: values[n] for n in [*MODELS, HUMANS]}, metric == "accuracy_difference",
                        last=[])
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[-1] == f"{PARTIAL.strip()}: lacks a dataset, ranked apart"
    assert PARTIAL_MODEL not in _texts(figure)


def test_consistency_plot_ranks_a_partial_model_apart(partial_summary: Summary) -> None:
    figure = plot_consistency(partial_summary)  # rows ranked by error consistency, the humans below the models
    table = partial_summary.humanlike
    _check_ranked_apart(figure.axes[0], table.loc[[*MODELS, HUMANS], "error_consistency"].to_dict(), False,
                        last=[HUMANS])
    for ax, metric in zip(figure.axes[1:], ("observed_consistency", "accuracy_difference")):
        assert [bar.get_hatch() for bar in ax.patches][-1] == PARTIAL_HATCH
        assert ax.patches[-1].get_width() == table.loc[PARTIAL_MODEL, metric]
    assert PARTIAL_MODEL not in _texts(figure)


def test_benchmark_scatter_labels_a_partial_model(partial_summary: Summary) -> None:
    figure = plot_benchmark_scatter(partial_summary)
    for ax in figure.axes:
        assert PARTIAL_LABEL in [p.get_label() for p in _marker_lines(ax)]
    assert PARTIAL_LABEL in [t.get_text() for t in figure.legends[0].get_texts()]
    assert PARTIAL_MODEL not in _texts(figure)


def test_per_dataset_figures_leave_out_a_model_lacking_the_dataset(partial_summary: Summary) -> None:
    """Figures of one dataset at a time: no partial mark anywhere; the model is absent where it lacks the dataset."""
    lacking = [plot_dataset_accuracy_bars(partial_summary, "edge"),
               plot_error_consistency_matrix(partial_summary, "edge"),
               plot_confusion_matrices(partial_summary, "edge"), plot_confusion_matrices(partial_summary, "rotation")]
    having = [plot_shape_bias(partial_summary), plot_shape_bias_boxplot(partial_summary),
              plot_error_consistency_matrix(partial_summary, "cue-conflict"),
              plot_confusion_matrices(partial_summary, "contrast")]
    for figure in lacking:
        assert not any(PARTIAL_MODEL in text for text in _texts(figure)), figure.get_suptitle()
    for figure in having:
        assert any(text.startswith(PARTIAL_MODEL) for text in _texts(figure)), figure.get_suptitle()
    for figure in [*lacking, *having]:
        assert not any(PARTIAL.strip() in text for text in _texts(figure))
        assert all(bar.get_hatch() is None for ax in figure.axes for bar in ax.patches)
    edge_bars = lacking[0].axes[0]
    assert len(edge_bars.patches) == len(edge_bars.get_yticklabels()) == len(MODELS)  # 3 models and the humans
    for plot in (plot_accuracy_by_condition, plot_entropy_by_condition, plot_error_consistency_by_condition):
        figure = plot(partial_summary)
        panels = {ax.get_title(): [line.get_label() for line in _marker_lines(ax)] for ax in figure.axes
                  if ax.get_visible()}
        assert panels["contrast"] == list(LABELS)  # every model, unmarked
        assert panels["rotation"] == [label for label in LABELS if label != PARTIAL_MODEL]
        assert all(len(line.get_ydata()) for ax in figure.axes for line in _marker_lines(ax))
        assert PARTIAL_MODEL in [t.get_text() for t in figure.legends[0].get_texts()]
