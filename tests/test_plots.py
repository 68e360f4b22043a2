"""`genfast report` and the figure functions: the expected files appear, figures hold the expected artists,
and bad requests are clear errors."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from genfast.cli import main
from genfast.metrics import Summary, read_raw_data, summarise
from genfast.plots import plot_accuracy_by_condition, plot_consistency, plot_shape_bias, write_report

FIXTURES = Path(__file__).parent / "fixtures" / "metrics" / "raw-data"
FIGURES = ("shape-bias", "shape-bias-boxplot", "accuracy-by-condition", "entropy-by-condition",
           "error-consistency-by-condition", "consistency", "benchmark-ood-accuracy", "benchmark-accuracy-difference", "benchmark-observed-consistency",
           "benchmark-error-consistency", "benchmark-scatter", "error-consistency-matrix-cue-conflict",
           "confusion-matrix-contrast", "confusion-matrix-cue-conflict")
LATEX = {"benchmark_table_accuracy.tex", "benchmark_table_humanlike.tex"}


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return read_raw_data(FIXTURES)


@pytest.fixture(scope="module")
def summary(trials: pd.DataFrame) -> Summary:
    return summarise(trials)


def test_report_command_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["report", "--raw-data", str(FIXTURES), "--out", str(out)]) == 0
    figures = {f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")}
    assert {p.name for p in out.iterdir()} == figures | LATEX | {"summary.md", "summary.html"}
    assert all((out / name).stat().st_size > 1000 for name in figures)
    assert (out / "shape-bias.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "shape-bias.pdf").read_bytes()[:5] == b"%PDF-"
    markdown = (out / "summary.md").read_text()
    assert "![Shape bias per category](shape-bias.png)" in markdown
    assert "| toy | 0.438 | 1 | 2 |" in markdown  # OOD accuracy table row
    html = (out / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES) and "<table>" in html
    assert "LaTeX benchmark tables, as the toolbox writes them: benchmark_table_accuracy.tex" in markdown
    assert str(out / "summary.md") in capsys.readouterr().out


def test_report_models_selection(tmp_path: Path, trials: pd.DataFrame) -> None:
    written = write_report(trials, tmp_path, models=["toy"], figures=["consistency"])
    assert [p.name for p in written][:2] == ["consistency.png", "consistency.pdf"]
    with pytest.raises(ValueError, match="^models: no raw data for resnet50; available: toy$"):
        write_report(trials, tmp_path, models=["resnet50"])


def test_report_without_cue_conflict_skips_shape_bias(tmp_path: Path) -> None:
    written = write_report(read_raw_data(FIXTURES, datasets=["contrast"]), tmp_path)
    names = [name for name in FIGURES if not name.startswith("shape-bias") and "cue-conflict" not in name]
    assert [p.name for p in written] == [*(f"{name}.{ext}" for name in names for ext in ("png", "pdf")),
                                         *sorted(LATEX), "summary.md", "summary.html"]


def test_shape_bias_plot(summary: Summary) -> None:
    figure = plot_shape_bias(summary)
    ax = figure.axes[0]
    # ordered by the humans' shape bias: bear .5, airplane .75, bird .75 (ties by name)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bear", "airplane", "bird"]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # shape (1) on the left
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["toy (0.50)", "humans (0.70)"]


def test_accuracy_plot_orders_conditions(summary: Summary) -> None:
    figure = plot_accuracy_by_condition(summary)
    ax = figure.axes[0]
    assert ax.get_title() == "contrast"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "50", "30", "15", "10", "5", "3", "1"]
    toy = next(line for line in ax.get_lines() if line.get_label() == "toy")
    assert list(toy.get_ydata()[[0, 1, 5]]) == [1.0, 0.5, 0.25]  # c100, c50, c05


def test_consistency_plot_needs_humans(summary: Summary, trials: pd.DataFrame) -> None:
    figure = plot_consistency(summary)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["toy", "humans"]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["toy", "humans"]  # families
    models_only = summarise(trials.loc[trials["observer"] == "toy"])
    with pytest.raises(ValueError, match="no human subjects"):
        plot_consistency(models_only)
