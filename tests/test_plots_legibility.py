"""Every figure `genfast report` draws stays legible with 60 models: at most MAX_PIXELS a side at the PNG's
resolution, no legend over any axes (nor its tick labels and titles), no text under MIN_POINTS, no two tick labels
of an axis on top of each other, every observer in the legend, and no two observers drawn alike. The raw data are
random files written here: 24 of the toolbox's supervised models (one family: its markers run out), its eight
self-supervised and five adversarially robust models, and 23 models it does not know, in three families. Each
family of figures (genfast.plots.figures.FIGURES) is drawn once, by the first test that needs it."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image
import pytest

from genfast.metrics import HUMANS, read_raw_data, summarise
from genfast.metrics.summary import Summary
from genfast.plots.definitions import TOOLBOX, TOOLBOX_DEFINITIONS, model_key
from genfast.plots.figures import FIGURES, make_figures
from genfast.plots.matrices import CONFUSION_TOP, MATRIX_TOP
from genfast.plots.needs import missing
from genfast.plots.style import DPI
from genfast.testing.rawdata import write_fake_raw_data

MAX_PIXELS = 3000
"""The longest side of a PNG (20 inches at 150 dpi): the figure prints legibly on a poster column or, scaled to a
page, its 7-point text is still about 3 points or more."""
MIN_POINTS = 7
TOOLBOX_MODELS = [model_key(name) for name, entry in TOOLBOX["models"].items()
                  if entry["family"] in ("supervised", "self-supervised", "adversarially-robust")]
OTHER_MODELS = [f"{family}-{i:02d}" for family, count in (("sd2", 10), ("flux", 8), ("dit", 5)) for i in range(count)]
MODELS = TOOLBOX_MODELS + OTHER_MODELS
DATASETS = ("colour", "contrast", "rotation", "edge", "cue-conflict")  # parametric ones in one row: the widest legend
UNLABELLED = ("confusion-matrix-",)
"""Figures without a legend: each panel's title names its observer."""
STYLES = TOOLBOX_DEFINITIONS.styles(MODELS)
FAMILY_LABELS = {"supervised (ImageNet)", "self-supervised", "adversarially robust", "sd2", "flux", "dit", "humans"}


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    raw_data = tmp_path_factory.mktemp("raw-data")
    write_fake_raw_data(raw_data, MODELS, subjects=3, datasets=DATASETS)
    return summarise(read_raw_data(raw_data))


@pytest.fixture(scope="module")
def drawn(summary: Summary) -> Callable[[str], dict[str, Figure]]:
    """The figures of one family, made and drawn on first use."""
    cache: dict[str, dict[str, Figure]] = {}

    def figures(family: str) -> dict[str, Figure]:
        if family not in cache:
            cache[family] = make_figures(summary, figures=[family])
            for figure in cache[family].values():
                figure.canvas.draw()
        return cache[family]

    return figures


def test_the_raw_data_have_60_models_and_allow_every_figure(summary: Summary) -> None:
    assert len(MODELS) == len(summary.models) == 60 and len(summary.humans) == 3
    assert [name for name, family in FIGURES.items() if missing(summary, family.needs) is None] == list(FIGURES)


def _pixels(figure: Figure) -> tuple[int, int]:
    """The size save_figure's PNG gets: the tight bounding box, padded by savefig's 0.1 inch, at DPI."""
    box = figure.get_tightbbox(figure.canvas.get_renderer()).padded(0.1)
    return round(box.width * DPI), round(box.height * DPI)


@pytest.mark.parametrize("family", FIGURES)
def test_images_have_a_bounded_size(family: str, drawn: Callable[[str], dict[str, Figure]]) -> None:
    for name, figure in drawn(family).items():
        assert max(_pixels(figure)) <= MAX_PIXELS, (name, _pixels(figure))


def test_the_size_is_the_pngs(drawn: Callable[[str], dict[str, Figure]], tmp_path: Path) -> None:
    figure = drawn("confusion-matrices")["confusion-matrix-contrast"]  # the largest
    figure.savefig(tmp_path / "contrast.png", dpi=DPI, bbox_inches="tight")  # as save_figure writes it
    with Image.open(tmp_path / "contrast.png") as image:
        assert abs(image.size[0] - _pixels(figure)[0]) <= 2 and abs(image.size[1] - _pixels(figure)[1]) <= 2


def _overlap(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


@pytest.mark.parametrize("family", FIGURES)
def test_no_legend_overlaps_any_axes(family: str, drawn: Callable[[str], dict[str, Figure]]) -> None:
    for name, figure in drawn(family).items():
        renderer = figure.canvas.get_renderer()
        legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
        assert bool(legends) != name.startswith(UNLABELLED), name
        for legend, ax in itertools.product(legends, [ax for ax in figure.axes if ax.get_visible()]):
            box = legend.get_window_extent(renderer)
            assert not _overlap(box, ax.get_window_extent(renderer)), (name, ax.get_title())
            assert not _overlap(box, ax.get_tightbbox(renderer)), (name, ax.get_title())  # tick labels, titles


@pytest.mark.parametrize("family", FIGURES)
def test_text_is_large_enough_and_tick_labels_apart(family: str, drawn: Callable[[str], dict[str, Figure]]) -> None:
    for name, figure in drawn(family).items():
        renderer = figure.canvas.get_renderer()
        texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert min(t.get_fontsize() for t in texts) >= MIN_POINTS, name
        for ax in figure.axes:
            for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
                for a, b in itertools.combinations(boxes, 2):
                    assert not _overlap(a, b), (name, ax.get_title())


def _legend(figure: Figure) -> list[str]:
    return [t.get_text() for t in figure.legends[0].get_texts()]


def test_legends_name_every_observer(drawn: Callable[[str], dict[str, Figure]]) -> None:
    labels = [style.label for style in STYLES.values()]
    for family in ("accuracy-by-condition", "entropy-by-condition", "error-consistency-by-condition"):
        assert _legend(drawn(family)[family]) == ["human subjects (range)", *labels], family
    assert [text.rsplit(" (", 1)[0] for text in _legend(drawn("shape-bias")["shape-bias"])] == labels
    assert _legend(drawn("benchmark-scatter")["benchmark-scatter"]) == labels
    for name, figure in [*drawn("benchmark-bars").items(), *drawn("dataset-accuracy-bars").items(),
                         ("consistency", drawn("consistency")["consistency"])]:
        assert set(_legend(figure)) == FAMILY_LABELS, name
        assert len(figure.axes[0].get_yticklabels()) == 61, name
    legend = drawn("consistency")["consistency"].legends[0]  # the family's colour, not a model's own or shade
    colours = {t.get_text(): tuple(h.get_facecolor()[:3]) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert colours["adversarially robust"] == pytest.approx((0, 105 / 255, 170 / 255), abs=1e-6)
    assert colours["supervised (ImageNet)"] == pytest.approx((230 / 255,) * 3, abs=1e-6)
    box = drawn("shape-bias")["shape-bias-boxplot"]
    assert set(_legend(box)) == FAMILY_LABELS and [t.get_text() for t in box.axes[0].get_xticklabels()] == labels


def test_matrices_show_the_top_models(drawn: Callable[[str], dict[str, Figure]]) -> None:
    for name, figure in drawn("error-consistency-matrices").items():
        rows = [t.get_text() for t in figure.axes[0].get_yticklabels()]
        assert len(rows) == MATRIX_TOP + 3 and rows[-3:] == ["subject-01", "subject-02", "subject-03"], name
        assert f"the {MATRIX_TOP} of 60 models" in figure.axes[0].get_title()
    confusion = drawn("confusion-matrices")["confusion-matrix-contrast"]
    titles = [ax.get_title() for ax in confusion.axes if ax.get_title()]
    assert len(titles) == (CONFUSION_TOP + 1) * 8 and titles[-1] == "humans, 1"
    assert f"the {CONFUSION_TOP} of 60 models most error-consistent with the subjects" in confusion.get_suptitle()


def test_no_two_observers_look_alike(drawn: Callable[[str], dict[str, Figure]]) -> None:
    lines = [line for line in drawn("accuracy-by-condition")["accuracy-by-condition"].axes[0].get_lines()
             if line.get_marker() != "None"]
    looks = [(tuple(line.get_color()), line.get_marker()) for line in lines]
    assert len(lines) == 61 and len(set(looks)) == 61
    sd2 = {STYLES[m].colour for m in OTHER_MODELS[:10]}  # colour by family, marker by model
    assert len(sd2) == 1 and len({STYLES[m].marker for m in OTHER_MODELS[:10]}) == 10
    assert sd2 != {STYLES[m].colour for m in OTHER_MODELS[10:18]}
    assert STYLES[HUMANS].marker == "D"
