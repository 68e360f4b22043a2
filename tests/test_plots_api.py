"""The notebook API: `genfast.metrics.measure(raw_data, models, datasets)` gives the numbers of `genfast metrics`,
`genfast.plots.plot(data, figures=...)` draws the figures by name (and saves them), bad requests are one-line
ValueErrors, and the README's notebook example runs as written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genfast.cli import main
from genfast.metrics import HUMANS, load_raw_data, measure
from genfast.plots import FIGURES, plot
from genfast.testing.rawdata import write_fake_raw_data

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
MODELS = ["alpha", "beta-net", "sd2-base"]


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run") / "raw-data"
    write_fake_raw_data(root, MODELS, subjects=2, datasets=("contrast", "edge", "cue-conflict"))
    return root


def test_measure_gives_the_numbers_of_metrics(raw_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert main(["metrics", "--raw-data", str(raw_data), "--datasets", "contrast", "edge", "--json", str(out)]) == 0
    observers = json.loads(out.read_text())["observers"]
    summary = measure(raw_data, models=["alpha", "sd2-base"], datasets=["contrast", "edge"])
    assert summary.models == ["alpha", "sd2-base"] and summary.datasets == ["contrast", "edge"]
    for name in ("alpha", "sd2-base", HUMANS):
        assert summary.ood_accuracy[name] == observers[name]["ood_accuracy"]
        assert summary.humanlike.loc[name, "error_consistency"] == observers[name]["error_consistency"]
    assert measure(load_raw_data(raw_data)).models == MODELS  # a RawData as read
    with pytest.raises(ValueError, match="^models: no raw data for gamma; available: alpha, beta-net, sd2-base$"):
        measure(raw_data, models=["gamma"])
    with pytest.raises(ValueError, match="^unknown model-vs-human dataset 'sketchy'"):
        measure(raw_data, datasets=["sketchy"])
    with pytest.raises(ValueError, match="^measure: datasets select files to read"):
        measure(load_raw_data(raw_data), datasets=["edge"])


def test_plot_draws_and_saves_figures_by_name(raw_data: Path, tmp_path: Path) -> None:
    figures = plot(raw_data, figures=["benchmark-bars", "error-consistency-matrices"], models=["alpha", "beta-net"],
                   datasets=["contrast", "edge"], out_dir=tmp_path / "figures")
    assert list(figures) == ["benchmark-ood-accuracy", "benchmark-accuracy-difference",
                             "benchmark-observed-consistency", "benchmark-error-consistency",
                             "error-consistency-matrix-edge"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        f"{name}.{ext}" for name in figures for ext in ("png", "pdf"))
    rows = [t.get_text() for t in figures["benchmark-error-consistency"].axes[0].get_yticklabels()]
    assert sorted(rows) == ["alpha", "beta-net", "humans"]  # the chosen models and the humans


def test_plot_errors(raw_data: Path) -> None:
    summary = measure(raw_data, datasets=["edge"])
    with pytest.raises(ValueError, match="^figures: unknown 'accuracy'; known: shape-bias, "):
        plot(summary, figures=["accuracy"])
    with pytest.raises(ValueError, match="^figures: cannot draw 'accuracy-by-condition': the raw data has no "
                                         "parametric dataset$"):
        plot(summary, figures=["accuracy-by-condition"])
    with pytest.raises(ValueError, match="^plot: models and datasets select from raw data"):
        plot(summary, models=["alpha"])
    assert list(plot(summary)) == [  # by default every figure the data allow: here one non-parametric dataset
        "consistency", "benchmark-ood-accuracy", "benchmark-accuracy-difference", "benchmark-observed-consistency",
        "benchmark-error-consistency", "accuracy-edge", "benchmark-scatter", "error-consistency-matrix-edge",
        "confusion-matrix-edge"]
    assert list(FIGURES)[0] == "shape-bias"


def test_readme_notebook_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    start = README.index("```python\n", README.index("### In a notebook")) + len("```python\n")
    code = README[start:README.index("```\n", start)]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (In a notebook)", "exec"), {})  # as a notebook cell runs it
    printed = capsys.readouterr().out
    assert "ood_accuracy" in printed and "mean_rank" in printed and "'benchmark-error-consistency'" in printed
    assert "sd2-large" not in printed  # written, not chosen
    assert (tmp_path / "figures" / "error-consistency-matrix-edge.png").is_file()
