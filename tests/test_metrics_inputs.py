"""What `genfast metrics` reads: genfast's layout (as `genfast evaluate` writes it) and the toolbox's
(bethgelab/model-vs-human: the same dataset folders plus raw-data/performances/<model>.csv and
raw-data/imagenet_validation/), which give the same numbers; a model lacking a dataset is partial: marked, ranked
apart, or left out with --complete-only. The raw data are small random files written here."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from genfast.cli import main
from genfast.evaluate.rawdata import Row, raw_data_path, write_raw_data
from genfast.metrics import load_raw_data, read_performances, summarise
from genfast.metrics.tables import display_tables
from genfast.plots import write_report

CLASSES = ("airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair", "clock", "dog",
           "elephant", "keyboard", "knife", "oven", "truck")
MODELS = {"alpha": 0.5, "beta_net": 0.7}  # the toolbox's model names (its raw-data files say beta-net): accuracy
SUBJECTS = ("subject-01", "subject-02")
DATASETS = {"contrast": ("c100", "c50", "c05"), "cue-conflict": ("0",)}
IMAGES = 8  # per condition
IMAGENET = {"alpha": 3, "beta_net": 1}  # right out of 4 ImageNet validation images
HEADER = ("subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename")


def _decisions(dataset: str, observer: str, p_right: float) -> list[tuple[str, str, str, str]]:
    """(object_response, category, condition, image id) of one observer: right with probability p_right,
    otherwise the texture (cue-conflict) or a random class."""
    rng = np.random.default_rng([list(DATASETS).index(dataset), sum(map(ord, observer))])
    rows = []
    for condition in DATASETS[dataset]:
        for i in range(IMAGES):
            category, texture = CLASSES[i], CLASSES[(i + 3) % 16]
            image = f"{category}{i}-{texture}{i}.png" if dataset == "cue-conflict" else f"n0{i:07d}_{i}.png"
            draw = rng.random()
            response = category if draw < p_right else texture if draw < 0.9 else CLASSES[rng.integers(16)]
            rows.append((response, category, condition, image))
    return rows


def _model_rows(dataset: str, model: str) -> list[Row]:
    parametric = dataset != "cue-conflict"
    return [Row(t + 1, response, category, condition if parametric else "NaN",
                f"{t + 1:04d}_cop_dnn_{condition}_{category}_10_{image}" if parametric else image)
            for t, (response, category, condition, image) in enumerate(_decisions(dataset, model, MODELS[model]))]


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _write_humans(raw_data: Path) -> None:
    for dataset in DATASETS:
        for s, subject in enumerate(SUBJECTS, start=1):
            rows = [[subject, 1, t + 1, 0.7, response, category, condition,
                     f"{t + 1:04d}_x_s{s:02d}_{condition}_{category}_10_{image}"]
                    for t, (response, category, condition, image) in enumerate(_decisions(dataset, subject, 0.8))]
            _write_csv(raw_data / dataset / f"{dataset}_{subject}_session_1.csv", [list(HEADER), *rows])



def genfast_layout(out: Path) -> Path:
    """`genfast evaluate --out out` for both models, the human subjects' files copied in; returns out/raw-data."""
    for dataset in DATASETS:
        for model in MODELS:
            name = model.replace("_", "-")
            write_raw_data(raw_data_path(out, dataset, name), name, _model_rows(dataset, model))
    _write_humans(out / "raw-data")
    return out / "raw-data"


def toolbox_layout(checkout: Path) -> Path:
    """The toolbox's checkout after `Evaluate()(models, datasets + ["imagenet_validation"], print_predictions=True)`:
    raw data as its ResultPrinter writes them, performances/<model>.csv, imagenet_validation/; returns checkout."""
    raw_data = checkout / "raw-data"
    _write_humans(raw_data)
    for model in MODELS:
        name = model.replace("_", "-")  # ResultPrinter's file names; its subj column keeps the model name
        performances = [["subj", "dataset_name", "metric_name", "performance"]]
        for dataset in DATASETS:
            rows = _model_rows(dataset, model)
            _write_csv(raw_data / dataset / f"{dataset}_{name}_session-1.csv",
                       [list(HEADER), *([model, 1, r.trial, "NaN", r.object_response, r.category, r.condition,
                                         r.imagename] for r in rows)])
            right = sum(r.object_response == r.category for r in rows)
            performances.append([model, dataset, "accuracy (top-1)", right / len(rows)])
        imagenet = [[model, 1, i + 1, "NaN", "n01440764" if i < IMAGENET[model] else "n01443537", "n01440764", "NaN",
                     f"ILSVRC2012_val_{i + 1:08d}.JPEG"] for i in range(4)]
        _write_csv(raw_data / "imagenet_validation" / f"imagenet_validation_{name}_session-1.csv",
                   [list(HEADER), *imagenet])
        performances += [[model, "imagenet_validation", "accuracy (top-1)", IMAGENET[model] / 4],
                         [model, "imagenet_validation", "accuracy (top-5)", 1.0]]
        _write_csv(raw_data / "performances" / f"{model}.csv", performances)
    (checkout / "README.md").write_text("model-vs-human\n")
    (raw_data / "notes").mkdir()
    return checkout


def _metrics(raw_data: Path, out: Path, *options: str) -> dict:
    assert main(["metrics", "--raw-data", str(raw_data), "--json", str(out), *options]) == 0
    return json.loads(out.read_text())


def test_toolbox_layout_gives_the_same_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = _metrics(genfast_layout(tmp_path / "run"), tmp_path / "ours.json")
    capsys.readouterr()
    checkout = toolbox_layout(tmp_path / "model-vs-human")
    theirs = _metrics(checkout, tmp_path / "theirs.json")
    printed = capsys.readouterr()
    assert theirs["datasets"] == ours["datasets"] == ["contrast", "cue-conflict"]
    assert theirs["observers"] == ours["observers"]
    assert set(ours["observers"]) == {"alpha", "beta-net", *SUBJECTS, "humans"}
    assert ours["imagenet_validation_accuracy"] == {}
    assert theirs["imagenet_validation_accuracy"] == {"alpha": 0.75, "beta-net": 0.25}
    raw_data = checkout / "raw-data"
    for text in (f"read: 8 raw-data file(s) in 2 folder(s) of {raw_data}",
                 f"read: 2 imagenet_validation file(s) ({raw_data / 'imagenet_validation'}): top-1 accuracy of 2",
                 "8 value(s), summaries rather than trials: 6 top-1 accuracies checked against the trials read "
                 "(6 agree), 2 not checkable",
                 f"skipped: {raw_data / 'notes'} (no CSV files)", "ImageNet validation"):
        assert text in printed.out
    assert printed.err == ""
    assert theirs["inputs"]["skipped"] == [f"{raw_data / 'notes'} (no CSV files)"]
    only = load_raw_data(checkout, ["contrast"])
    assert only.imagenet.empty and set(only.trials["dataset"]) == {"contrast"}
    assert f"{raw_data / 'imagenet_validation' / 'imagenet_validation_alpha_session-1.csv'} (not among --datasets)" \
        in only.skipped


def test_performances_that_disagree_are_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkout = toolbox_layout(tmp_path)
    performances = checkout / "raw-data" / "performances" / "alpha.csv"
    performances.write_text(re.sub(r"(alpha,contrast,accuracy \(top-1\)),[0-9.]+", r"\1,0.01",
                                   performances.read_text()))
    _metrics(checkout, tmp_path / "m.json")
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {performances}: accuracy (top-1) on contrast is 0.01")
    assert "files from different runs?" in err


@pytest.mark.parametrize("text, message", [
    ("subj,dataset_name,metric_name\nalpha,edge,accuracy (top-1)\n", "missing column.*performance"),
    ("subj,dataset_name,metric_name,performance\nalpha,edge,accuracy (top-1),high\n", "line 2: performance 'high'"),
    ("subj,dataset_name,metric_name,performance\n", "no values after the header"),
])
def test_bad_performances_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "alpha.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_performances(path)
    assert str(path) in str(info.value)


# --- partial models: a model lacking a dataset is marked, ranked apart, or left out with --complete-only -----

def _with_partial_model(tmp_path: Path) -> Path:
    """genfast's layout where beta-net (the better model) lacks cue-conflict."""
    raw_data = genfast_layout(tmp_path / "run")
    (raw_data / "cue-conflict" / "cue-conflict_beta-net_session-1.csv").unlink()
    return raw_data


def test_partial_model_is_marked_and_ranked_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _metrics(_with_partial_model(tmp_path), tmp_path / "m.json")
    alpha, beta = data["observers"]["alpha"], data["observers"]["beta-net"]
    assert (alpha["complete"], alpha["missing_datasets"]) == (True, [])
    assert (beta["complete"], beta["missing_datasets"]) == (False, ["cue-conflict"])
    assert beta["ood_accuracy"] > alpha["ood_accuracy"]  # yet each is first of its own ranking
    assert alpha["ood_accuracy_rank"] == beta["ood_accuracy_rank"] == 1.0
    assert alpha["mean_rank"] == beta["mean_rank"] == 1.0
    printed = capsys.readouterr().out
    assert "partial models (ranked apart): beta-net" in printed
    complete, partial = printed.split("Benchmark: OOD accuracy of partial models")
    ranking = complete.split("Benchmark: OOD accuracy (mean over 2")[1].split("\n\n")[0]
    assert "alpha" in ranking and "beta-net" not in ranking
    row = next(line for line in partial.splitlines() if line.startswith("beta-net (partial) "))
    assert row.split()[-2:] == ["1", "cue-conflict"]  # datasets it has, the one it lacks


def test_partial_model_is_marked_in_every_table(tmp_path: Path) -> None:
    checkout = toolbox_layout(tmp_path)
    (checkout / "raw-data" / "cue-conflict" / "cue-conflict_beta-net_session-1.csv").unlink()
    raw = load_raw_data(checkout)
    summary = summarise(raw.trials, raw.imagenet)
    assert (summary.complete_models, summary.partial_models) == (["alpha"], ["beta-net"])
    shown = []
    for title, table in display_tables(summary):
        labels = [str(label) for label in [*table.index, *table.columns]]
        assert "beta-net" not in labels, title
        shown += [title.split(" (")[0]] if "beta-net (partial)" in labels else []
    assert shown == ["Benchmark: OOD accuracy of partial models", "Benchmark: most human-like of partial models",
                     "Accuracy per dataset", "ImageNet validation"]  # no shape bias: it lacks cue-conflict
    assert list(summary.accuracy_table().index) == ["alpha"]
    assert list(summary.humanlike_table(partial=True).index) == ["beta-net"]


def test_complete_only_leaves_partial_models_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw_data = _with_partial_model(tmp_path)
    data = _metrics(raw_data, tmp_path / "m.json", "--complete-only")
    assert set(data["observers"]) == {"alpha", *SUBJECTS, "humans"}
    assert data["inputs"]["skipped"] == ["partial model beta-net (--complete-only; lacks cue-conflict)"]
    printed = capsys.readouterr().out
    assert "skipped: partial model beta-net (--complete-only; lacks cue-conflict)" in printed
    assert "beta-net" not in printed.split("skipped:")[-1].split("\n", 1)[1]
    written = tmp_path / "report"
    assert main(["report", "--raw-data", str(raw_data), "--out", str(written), "--complete-only",
                 "--figures", "consistency"]) == 0
    assert "beta-net" not in (written / "summary.md").read_text()


def test_complete_only_without_a_complete_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw_data = _with_partial_model(tmp_path)
    (raw_data / "contrast" / "contrast_alpha_session-1.csv").unlink()
    assert main(["metrics", "--raw-data", str(raw_data), "--complete-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"genfast metrics: error: {raw_data}: no complete model (alpha lacks contrast; beta-net lacks "
                   f"cue-conflict); choose datasets every model has with --datasets")
    assert main(["metrics", "--raw-data", str(raw_data), "--complete-only", "--datasets", "contrast"]) == 0


def test_report_marks_partial_models(tmp_path: Path) -> None:
    raw = load_raw_data(_with_partial_model(tmp_path))
    written = write_report(raw.trials, tmp_path / "report", figures=["consistency"])
    markdown = written[-2].read_text()
    assert "### Benchmark: OOD accuracy of partial models" in markdown
    assert "| beta-net (partial) |" in markdown
    latex = {path.name: path.read_text() for path in written if path.suffix == ".tex"}  # ranked apart there too
    assert sorted(latex) == ["benchmark_table_accuracy.tex", "benchmark_table_accuracy_partial.tex",
                             "benchmark_table_humanlike.tex", "benchmark_table_humanlike_partial.tex"]
    assert "beta-net" in latex["benchmark_table_humanlike_partial.tex"]
    assert "beta-net" not in latex["benchmark_table_humanlike.tex"]
