"""Every figure `genfast report` draws stays legible with 60 models: at most MAX_PIXELS a side at the PNG's
resolution, no legend over any axes (nor its tick labels and titles), no text under MIN_POINTS, no two tick labels
of an axis on top of each other, every observer in the legend, and no two observers drawn alike. The raw data are
random files written here: 24 of the toolbox's supervised models (one family: its markers run out), its eight
self-supervised and five adversarially robust models, and 23 models it does not know, in three families."""
from __future__ import annotations

import itertools
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image
import pytest

from genfast.metrics import HUMANS, read_raw_data, summarise
from genfast.metrics.summary import Summary
from genfast.plots.definitions import TOOLBOX, TOOLBOX_DEFINITIONS, model_key
from genfast.plots.report import make_figures
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
DATASETS = ("colour", "contrast", "rotation", "cue-conflict")  # parametric ones in one row: the widest legend


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    raw_data = tmp_path_factory.mktemp("raw-data")
    write_fake_raw_data(raw_data, MODELS, subjects=3, datasets=DATASETS)
    return summarise(read_raw_data(raw_data))


@pytest.fixture(scope="module")
def figures(summary: Summary) -> dict[str, Figure]:
    drawn = make_figures(summary)
    for figure in drawn.values():
        figure.canvas.draw()
    return drawn


def test_the_raw_data_have_60_models(summary: Summary) -> None:
    assert len(MODELS) == len(summary.models) == 60 and len(summary.humans) == 3


def test_every_figure_is_drawn(figures: dict[str, Figure]) -> None:
    assert list(figures) == ["shape-bias", "accuracy-by-condition", "consistency"]


def test_images_have_a_bounded_size(figures: dict[str, Figure], tmp_path: Path) -> None:
    for name, figure in figures.items():
        png = tmp_path / f"{name}.png"
        figure.savefig(png, dpi=DPI, bbox_inches="tight")  # as save_figure writes it (without its PDF)
        with Image.open(png) as image:
            assert max(image.size) <= MAX_PIXELS, (name, image.size)


def _overlap(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


def test_no_legend_overlaps_any_axes(figures: dict[str, Figure]) -> None:
    for name, figure in figures.items():
        renderer = figure.canvas.get_renderer()
        legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]
        assert legends, name
        for legend, ax in itertools.product(legends, [ax for ax in figure.axes if ax.get_visible()]):
            box = legend.get_window_extent(renderer)
            assert not _overlap(box, ax.get_window_extent(renderer)), (name, ax.get_title())
            assert not _overlap(box, ax.get_tightbbox(renderer)), (name, ax.get_title())  # tick labels, titles


def test_text_is_large_enough_and_tick_labels_apart(figures: dict[str, Figure]) -> None:
    for name, figure in figures.items():
        renderer = figure.canvas.get_renderer()
        texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert min(t.get_fontsize() for t in texts) >= MIN_POINTS, name
        for ax in figure.axes:
            for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
                boxes = [t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()]
                for a, b in itertools.combinations(boxes, 2):
                    assert not _overlap(a, b), (name, ax.get_title())


def test_legends_name_every_observer(figures: dict[str, Figure]) -> None:
    styles = TOOLBOX_DEFINITIONS.styles(MODELS)
    accuracy = [t.get_text() for t in figures["accuracy-by-condition"].legends[0].get_texts()]
    assert accuracy == ["human subjects (range)", *(style.label for style in styles.values())]
    shape = [t.get_text() for t in figures["shape-bias"].legends[0].get_texts()]
    assert [text.rsplit(" (", 1)[0] for text in shape] == [style.label for style in styles.values()]
    families = [t.get_text() for t in figures["consistency"].legends[0].get_texts()]
    assert sorted(families) == sorted({"supervised (ImageNet)", "self-supervised", "adversarially robust", "sd2",
                                       "flux", "dit", "humans"})
    rows = [t.get_text() for t in figures["consistency"].axes[0].get_yticklabels()]
    assert len(rows) == 61 and rows[-1] == "humans"


def test_no_two_observers_look_alike(figures: dict[str, Figure]) -> None:
    lines = [line for line in figures["accuracy-by-condition"].axes[0].get_lines() if line.get_marker() != "None"]
    looks = [(tuple(line.get_color()), line.get_marker()) for line in lines]
    assert len(lines) == 61 and len(set(looks)) == 61
    styles = TOOLBOX_DEFINITIONS.styles(MODELS)
    sd2 = {styles[m].colour for m in OTHER_MODELS[:10]}  # colour by family, marker by model
    assert len(sd2) == 1 and len({styles[m].marker for m in OTHER_MODELS[:10]}) == 10
    assert sd2 != {styles[m].colour for m in OTHER_MODELS[10:18]}
    assert styles[HUMANS].marker == "D"
