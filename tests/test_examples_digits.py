"""The digits robustness example: CNN baseline, distortion sets, study tables, figure and Markdown, end to end."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import digits_cnn
import digits_robustness as study
from genfast.models import BUNDLED_MODELS
from genfast.models.digits_data import load_split
from genfast.plots.style import save_figure

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

DIGITS_MODEL = BUNDLED_MODELS["digits"] / "genfast_model.json"


@pytest.fixture(scope="module")
def data():
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    return train_x, train_y, test_x, test_y


@pytest.fixture(scope="module")
def cnn(data):
    train_x, train_y, _, _ = data
    return digits_cnn.train_cnn(train_x, train_y, steps=120, seed=0)


@pytest.fixture(scope="module")
def weak_cnn(data):
    train_x, train_y, _, _ = data
    return digits_cnn.train_cnn(train_x, train_y, steps=20, seed=1)


def test_cnn_learns(data, cnn):
    _, _, test_x, test_y = data
    assert np.mean(digits_cnn.predict(cnn, test_x) == test_y) > 0.8  # 120 steps reach about 0.9; chance is 0.1


def test_cnn_training_is_deterministic(data, weak_cnn):
    train_x, train_y, _, _ = data
    again = digits_cnn.train_cnn(train_x, train_y, steps=20, seed=1)
    other = digits_cnn.train_cnn(train_x, train_y, steps=20, seed=2)
    for a, b in zip(weak_cnn.state_dict().values(), again.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(weak_cnn.state_dict().values(), other.state_dict().values()))


@pytest.mark.parametrize("images, error", [
    (np.zeros((2, 8, 7), np.float32), "shape"),
    (np.zeros((2, 8, 8), np.int64), "float"),
    (np.full((2, 8, 8), 2.0, np.float32), r"\[0, 1\]"),
])
def test_cnn_rejects_bad_images(cnn, images, error):
    with pytest.raises((ValueError, TypeError), match=error):
        digits_cnn.predict(cnn, images)


def test_train_cnn_rejects_bad_labels(data):
    train_x, train_y, _, _ = data
    with pytest.raises(ValueError, match="labels"):
        digits_cnn.train_cnn(train_x[:10], train_y[:9], steps=1)
    with pytest.raises(ValueError, match="labels"):
        digits_cnn.train_cnn(train_x[:10], np.full(10, 10), steps=1)
    with pytest.raises(ValueError, match="steps"):
        digits_cnn.train_cnn(train_x[:10], train_y[:10], steps=0)


def test_distort_images_shares_the_noise_pattern_across_levels(data):
    images = data[2][:6]
    low = study.distort_images(images, "uniform-noise", 0.05, seed=3)
    high = study.distort_images(images, "uniform-noise", 0.1, seed=3)
    base = study.distort_images(images, "uniform-noise", 0.0, seed=3)
    inside = (high > 0) & (high < 1) & (low > 0) & (low < 1)  # unclipped pixels
    np.testing.assert_allclose((high - base)[inside], 2 * (low - base)[inside], atol=1e-6)
    assert inside.mean() > 0.9
    assert low.dtype == np.float32 and low.shape == images.shape and low.min() >= 0 and low.max() <= 1
    np.testing.assert_array_equal(low, study.distort_images(images, "uniform-noise", 0.05, seed=3))
    assert not np.array_equal(low, study.distort_images(images, "uniform-noise", 0.05, seed=4))


def test_every_study_level_is_valid_and_the_first_is_the_mildest(data, cnn):
    images, labels = data[2][:40], data[3][:40]
    for name, spec in study.STUDY.items():
        first = study.distort_images(images, name, spec.levels[0], 0, reference_size=spec.reference_size)
        last = study.distort_images(images, name, spec.levels[-1], 0, reference_size=spec.reference_size)
        accuracy_first = np.mean(digits_cnn.predict(cnn, first) == labels)
        accuracy_last = np.mean(digits_cnn.predict(cnn, last) == labels)
        assert accuracy_first > accuracy_last, name
    assert not set(study.SKIPPED) & set(study.STUDY)


def _trials(correct_1, correct_2) -> pd.DataFrame:
    """A one-condition trial table of two observers with the given correctness."""
    n = len(correct_1)
    rows = []
    for observer, correct in (("a", correct_1), ("b", correct_2)):
        rows.append(pd.DataFrame({"distortion": "contrast", "level": "0.5", "level_index": 1, "image": np.arange(n),
                                  "label": 0, "observer": observer, "prediction": np.where(correct, 0, 1),
                                  "correct": np.asarray(correct, bool)}))
    return pd.concat(rows, ignore_index=True)


def test_consistency_table_is_cohens_kappa():
    c1 = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool)
    c2 = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1], bool)
    row = study.consistency_table(_trials(c1, c2), "a", "b").iloc[0]
    p1, p2 = c1.mean(), c2.mean()
    observed = np.mean(c1 == c2)
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    assert row["accuracy_1"] == pytest.approx(p1) and row["accuracy_2"] == pytest.approx(p2)
    assert row["kappa"] == pytest.approx((observed - expected) / (1 - expected))
    assert row["informative"]
    assert study.consistency_table(_trials(c1, c1), "a", "b").iloc[0]["kappa"] == pytest.approx(1.0)


def test_consistency_summary_uses_only_informative_levels():
    table = pd.DataFrame({"distortion": ["x"] * 3 + ["y"], "level_index": [0, 1, 2, 0],
                          "kappa": [0.9, 0.2, 0.4, 0.5], "informative": [False, True, True, False]})
    summary = study.consistency_summary(table).set_index("distortion")
    assert summary.loc["x", "kappa"] == pytest.approx(0.3) and summary.loc["x", "conditions"] == 2
    assert math.isnan(summary.loc["y", "kappa"]) and summary.loc["y", "conditions"] == 0


def test_study_tables_figure_and_markdown(tmp_path, data, cnn, weak_cnn):
    _, _, test_x, test_y = data
    predictors = {"strong": lambda x: digits_cnn.predict(cnn, x), "weak": lambda x: digits_cnn.predict(weak_cnn, x)}
    grid = {"contrast": study.Study((1.0, 0.1), "contrast"), "low-pass": study.Study((0, 1.5), "sigma")}
    trials = study.run_study(test_x[:12], test_y[:12], predictors, grid, seed=0, progress=False)
    assert len(trials) == 2 * 2 * 2 * 12
    accuracy = study.accuracy_table(trials)
    assert list(accuracy["level"]) == ["1", "0.1", "0", "1.5"]
    expected = np.mean(digits_cnn.predict(cnn, study.distort_images(test_x[:12], "contrast", 0.1, 0)) == test_y[:12])
    assert accuracy.loc[1, "strong"] == pytest.approx(expected)
    by_level = study.consistency_table(trials, "strong", "weak")
    assert by_level[["accuracy_1", "accuracy_2", "observed", "expected"]].stack().between(0, 1).all()
    assert by_level["kappa"].between(-1, 1).all()
    assert not by_level.loc[by_level["level_index"] == 0, "informative"].any()
    figure = study.plot_study(accuracy, by_level, grid, ["strong", "weak"])
    paths = save_figure(figure, tmp_path, "t")
    assert all(p.stat().st_size > 1000 for p in paths)
    text = study.markdown_report(accuracy, by_level, grid, ["strong", "weak"], ["# title"])
    assert text.startswith("# title") and text.count("| contrast |") == 1 + 2 and text.count("| low-pass |") == 3


def test_run_study_rejects_mismatched_labels(data):
    with pytest.raises(ValueError, match="one label per image"):
        study.run_study(data[2][:3], data[3][:2], {}, {"contrast": study.STUDY["contrast"]}, progress=False)


def test_cli_rejects_colour_distortions():
    with pytest.raises(SystemExit):
        study.parse_args(["--distortions", "colour"])


@pytest.mark.skipif(not DIGITS_MODEL.is_file(), reason="the bundled digits model (genfast/data/digits) is not there")
def test_main_with_the_bundled_model(tmp_path):
    pytest.importorskip("diffusers")
    paths = study.main(["--out", str(tmp_path), "--limit", "4", "--cnn-steps", "30", "--samples", "10",
                        "--distortions", "contrast,rotation"])
    assert [p.name for p in paths] == ["digits_robustness.png", "digits_robustness.pdf", "digits_robustness.md"]
    text = paths[2].read_text()
    clean = re.search(r"clean images used here: CNN ([\d.]+), diffusion ([\d.]+)", text)
    assert clean and float(clean.group(2)) >= 0.5  # the bundled model gets about 0.9 of clean digits right
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith(("| contrast | ", "| rotation | "))]
    per_level = [r for r in rows if len(r) == 8]
    assert len(per_level) == len(study.STUDY["contrast"].levels) + len(study.STUDY["rotation"].levels)
    for row in per_level:
        for value in row[2:6]:
            assert 0.0 <= float(value) <= 1.0
