"""The published model-vs-human numbers, reproduced from the toolbox's raw data in ../shared/data.

Published (toolbox README / raw data): ResNet-50 OOD accuracy .559, accuracy difference .087, observed
consistency .665, error consistency .208, shape bias about .21; humans pooled shape bias about .96. The toolbox's
LaTeX benchmark tables of these three models, byte for byte.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from genfast.metrics import HUMANS, Summary, read_raw_data, summarise
from genfast.metrics.tables import latex_tables

RAW_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "model-vs-human" / "raw-data"
TOOLBOX_LATEX = Path(__file__).parent / "fixtures" / "toolbox-latex"
"""The toolbox's own benchmark tables of these three models (latex-report/assets of bethgelab/model-vs-human)."""

pytestmark = pytest.mark.skipif(not RAW_DATA.is_dir(),
                                reason=f"model-vs-human raw data not found at {RAW_DATA} (../shared/data absent)")


@pytest.fixture(scope="module")
def summary() -> Summary:
    return summarise(read_raw_data(RAW_DATA))


def test_all_datasets_and_observers(summary: Summary) -> None:
    assert len(summary.datasets) == 17
    assert summary.models == ["bagnet33", "resnet50", "simclr-resnet50x1"]
    assert summary.humans == [f"subject-{i:02d}" for i in range(1, 11)]


@pytest.mark.parametrize("metric, published", [
    ("ood_accuracy", 0.559), ("accuracy_difference", 0.087), ("observed_consistency", 0.665),
    ("error_consistency", 0.208),
])
def test_resnet50_benchmark(summary: Summary, metric: str, published: float) -> None:
    value = summary.ood_accuracy["resnet50"] if metric == "ood_accuracy" else summary.humanlike.loc["resnet50", metric]
    assert round(value, 3) == published


@pytest.mark.parametrize("observer, published", [("resnet50", 0.21), (HUMANS, 0.96)])
def test_shape_bias(summary: Summary, observer: str, published: float) -> None:
    assert round(summary.shape_bias[observer].shape_bias, 2) == published


def test_rankings_order_models(summary: Summary) -> None:
    assert list(summary.accuracy_table().index) == ["simclr-resnet50x1", "resnet50", "bagnet33"]
    assert summary.humanlike_table().index[-1] == "bagnet33"


def test_latex_tables_are_the_toolboxs(summary: Summary) -> None:
    # the legend names of the toolbox's example plotting definition (examples/plotting_definition.py)
    labels = {"resnet50": "ResNet-50", "bagnet33": "BagNet-33", "simclr-resnet50x1": "SimCLR-x1"}
    tables = latex_tables(summary, labels)
    assert tables == {path.name: path.read_text() for path in sorted(TOOLBOX_LATEX.glob("*.tex"))}
