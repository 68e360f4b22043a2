"""model-vs-human metrics on small hand-made raw data (tests/fixtures/metrics/raw-data), every expectation
computed by hand in the comments: contrast (conditions c100 [excluded], c50, c05) and cue-conflict, one model
("toy") and two subjects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genfast.metrics import (HUMANS, accuracy, accuracy_difference, accuracy_ranking, canonical_condition,
                             confusion_counts, consistency, entropy_by_condition, error_consistency,
                             error_consistency_matrix, humanlike, humanlike_by_condition, humanlike_pairs,
                             humanlike_ranking, image_id, ood_accuracy, pairwise_consistency, read_csv,
                             read_raw_data, shape_bias, shape_bias_by_category, summarise, texture_category)

FIXTURES = Path(__file__).parent / "fixtures" / "metrics" / "raw-data"


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return read_raw_data(FIXTURES)


def _of(trials: pd.DataFrame, dataset: str, observer: str) -> pd.DataFrame:
    return trials.loc[(trials["dataset"] == dataset) & (trials["observer"] == observer)]


# --- names -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("0000_cl_s01_bw_boat_40_n02951358_5952.JPEG", "n02951358_5952.JPEG"),
    ("0001_cop_dnn_c30_knife_10_n03041632_7380.png", "n03041632_7380.png"),
    ("airplane1-bicycle2.png", "airplane1-bicycle2.png"),
    ("0001_s5n_s01_0_bird_00_bird3-bird2.png", "bird3-bird2.png"),
    ("0001_ske_dnn_0_airplane_00_airplane-0001-sketch-0.png", "airplane-0001-sketch-0.png"),
])
def test_image_id_is_the_toolbox_suffix(name: str, expected: str) -> None:
    assert image_id(name) == expected


@pytest.mark.parametrize("name, expected", [
    ("airplane1-bicycle2.png", "bicycle"), ("0001_s5n_s01_0_bird_00_dog10-bird2.png", "bird"),
    ("cat3-elephant12.png", "elephant"),
])
def test_texture_category(name: str, expected: str) -> None:
    assert texture_category(name) == expected


@pytest.mark.parametrize("dataset, raw, key", [
    ("uniform-noise", "0.90", "0.9"), ("uniform-noise", "0.00", "0.0"), ("high-pass", "3", "3.0"),
    ("high-pass", "inf", "inf"), ("false-colour", "true", "True"), ("contrast", "c05", "c05"),
    ("eidolonII", "16-3-10", "16-3-10"), ("edge", "NaN", "all"),
])
def test_canonical_condition(dataset: str, raw: str, key: str) -> None:
    assert canonical_condition(dataset, raw) == key


def test_canonical_condition_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown condition '0.42' for dataset 'uniform-noise'"):
        canonical_condition("uniform-noise", "0.42")
    with pytest.raises(ValueError, match="unknown model-vs-human dataset 'contrasts'"):
        canonical_condition("contrasts", "c50")


# --- reading ---------------------------------------------------------------------------------------------

def test_read_raw_data_folder(trials: pd.DataFrame) -> None:
    assert len(trials) == 3 * 10 + 3 * 6
    assert sorted(trials["observer"].astype(str).unique()) == ["subject-01", "subject-02", "toy"]
    assert set(trials["dataset"].astype(str)) == {"contrast", "cue-conflict"}
    model = _of(trials, "contrast", "toy")
    assert model["rt"].isna().all()
    human = _of(trials, "contrast", "subject-01")  # header "Session": columns are case-insensitive
    assert human["rt"].notna().all()
    assert set(_of(trials, "cue-conflict", "subject-01")["condition"].astype(str)) == {"all"}


def test_read_raw_data_selects_datasets() -> None:
    only = read_raw_data(FIXTURES, datasets=["cue-conflict"])
    assert set(only["dataset"].astype(str)) == {"cue-conflict"}
    with pytest.raises(ValueError, match="no raw data for dataset"):
        read_raw_data(FIXTURES, datasets=["rotation"])


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HEADER = "subj,session,trial,rt,object_response,category,condition,imagename\n"
ROW1 = "m,1,1,NaN,knife,knife,c50,0001_cop_dnn_c50_knife_10_n03041632_1.png\n"
ROW2 = "m,1,2,NaN,cat,dog,c05,0002_cop_dnn_c05_dog_10_n02091467_2.png\n"


@pytest.mark.parametrize("name, text, message", [
    ("contrast_m_session-1.csv", "", "empty file"),
    ("contrast_m_session-1.csv", HEADER, "no trials"),
    ("contrast_m_session-1.csv", HEADER.replace(",category", "") + ROW1, "missing column.*category"),
    ("contrast_m_session-1.csv", HEADER + ROW1 + "m,1,2,NaN,cat\n", "line 3: empty 'category'"),
    ("contrast_m_session-1.csv", HEADER + ROW1 + ROW2.strip() + ",extra,field\n", "malformed CSV"),
    ("contrast_m_session-1.csv", HEADER + ROW1.replace("c50", "c42"), "unknown condition 'c42'"),
    ("contrasts_m_session-1.csv", HEADER + ROW1, "unknown model-vs-human dataset 'contrasts'"),
    ("contrast-m.csv", HEADER + ROW1, "file names must look like"),
    ("contrast_m_session-1.csv", HEADER + ROW1 + ROW1.replace(",1,1,", ",1,2,"), "appears more than once"),
])
def test_read_csv_errors_name_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(ValueError, match=message) as info:
        read_csv(path)
    assert str(path) in str(info.value)


def test_read_csv_accepts_crlf_and_spaces(tmp_path: Path) -> None:
    text = (HEADER + ROW1 + ROW2.replace(",c05,", ", 0.05,")).replace("c50", "0.03")
    path = _write(tmp_path / "uniform-noise_m_session-1.csv", text.replace("\n", "\r\n"))
    frame = read_csv(path)
    assert frame["condition"].astype(str).tolist() == ["0.03", "0.05"]
    assert frame["correct"].tolist() == [True, False]


def test_read_raw_data_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_raw_data(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no raw-data CSV"):
        read_raw_data(tmp_path)


def test_different_image_sets_are_named(tmp_path: Path) -> None:
    _write(tmp_path / "contrast" / "contrast_m_session-1.csv", HEADER + ROW1 + ROW2)
    other = ROW2.replace("_2.png", "_3.png").replace("m,", "subject-01,")
    bad = _write(tmp_path / "contrast" / "contrast_subject-01_session_1.csv",
                 HEADER + ROW1.replace("m,", "subject-01,") + other)
    with pytest.raises(ValueError, match="observers saw different images") as info:
        humanlike_pairs(read_raw_data(tmp_path))
    assert str(bad) in str(info.value)


# --- formulas --------------------------------------------------------------------------------------------

def test_accuracy(trials: pd.DataFrame) -> None:
    # toy, contrast: correct on P Q A B H -> 5/10; cue-conflict: images 1, 3, 6 -> 3/6
    assert accuracy(_of(trials, "contrast", "toy")) == 0.5
    assert accuracy(_of(trials, "cue-conflict", "toy")) == 0.5
    assert accuracy(_of(trials, "cue-conflict", "subject-01")) == 1.0
    assert accuracy_difference(0.75, 0.5) == 0.0625
    with pytest.raises(ValueError, match="no trials"):
        accuracy(trials.iloc[:0])


def test_shape_bias(trials: pd.DataFrame) -> None:
    # toy: shape hits airplane1, bird2; texture hits airplane2 (cat), bear3 (clock); bear1-bear2 dropped
    toy = shape_bias(_of(trials, "cue-conflict", "toy"))
    assert (toy.shape_hits, toy.texture_hits, toy.trials) == (2, 2, 5)
    assert toy.shape_bias == 0.5
    assert shape_bias_by_category(_of(trials, "cue-conflict", "toy")) == {"airplane": 0.5, "bear": 0.0, "bird": 1.0}
    # subject-01: 5 shape, 0 texture; subject-02: 2 shape, 3 texture; pooled: 7 / 10
    assert shape_bias(_of(trials, "cue-conflict", "subject-01")).shape_bias == 1.0
    assert shape_bias(_of(trials, "cue-conflict", "subject-02")).shape_bias == 0.4
    humans = trials.loc[(trials["dataset"] == "cue-conflict") & (trials["observer"] != "toy")]
    assert shape_bias(humans).shape_bias == pytest.approx(0.7)


def test_consistency_by_hand() -> None:
    # c50 of the fixture: toy [1,1,0,0], subject-01 [1,1,1,0]: c_obs .75, c_exp .5*.75+.5*.25 = .5, kappa .5
    result = consistency(np.array([1, 1, 0, 0]), np.array([1, 1, 1, 0]))
    assert (result.observed, result.expected) == (0.75, 0.5)
    assert result.error_consistency == pytest.approx(0.5)
    assert result.accuracy_difference == pytest.approx(0.0625)
    # c05: toy [0,0,0,1], subject-01 [1,0,0,0]: c_obs .5, c_exp .625, kappa -1/3
    assert consistency(np.array([0, 0, 0, 1]), np.array([1, 0, 0, 0])).error_consistency == pytest.approx(-1 / 3)
    # identical answers: kappa is 1 by definition, even where c_exp == 1 would divide by zero
    assert consistency(np.array([1, 1]), np.array([1, 1])).error_consistency == 1.0
    assert error_consistency(1.0, 0.5) == 1.0
    with pytest.raises(ValueError, match="observed consistency must lie in"):
        error_consistency(1.5, 0.5)
    with pytest.raises(ValueError, match="equally long"):
        consistency(np.array([1, 0]), np.array([1]))


def test_pairwise_consistency_matches_plain_formulas() -> None:
    correct = np.random.default_rng(1).random((50, 6)) < 0.6
    correct[:, 5] = correct[:, 4]  # one pair that agrees everywhere
    pair = pairwise_consistency(correct)
    for i in range(6):
        for j in range(6):
            a, b = correct[:, i], correct[:, j]
            c_obs = np.mean(a == b)
            c_exp = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
            kappa = 1.0 if c_obs == 1 else (c_obs - c_exp) / (1 - c_exp)
            assert pair["observed"][i, j] == pytest.approx(c_obs)
            assert pair["expected"][i, j] == pytest.approx(c_exp)
            assert pair["error_consistency"][i, j] == pytest.approx(kappa)
            assert pair["accuracy_difference"][i, j] == pytest.approx((a.mean() - b.mean()) ** 2)


def test_ood_accuracy_excludes_conditions(trials: pd.DataFrame) -> None:
    # contrast without c100: toy 3/8, subject-01 4/8, subject-02 1/8, humans pooled 5/16
    # cue-conflict: toy .5, subject-01 1, subject-02 .5, humans 9/12
    ood = ood_accuracy(trials)
    assert ood["toy"] == pytest.approx((3 / 8 + 0.5) / 2)
    assert ood["subject-01"] == pytest.approx((4 / 8 + 1.0) / 2)
    assert ood["subject-02"] == pytest.approx((1 / 8 + 0.5) / 2)
    assert ood[HUMANS] == pytest.approx((5 / 16 + 9 / 12) / 2)


def test_humanlike_aggregation(trials: pd.DataFrame) -> None:
    pairs = humanlike_pairs(trials)
    assert set(pairs["condition"]) == {"c50", "c05", "all"}  # c100 is excluded
    assert len(pairs) == 3 * (2 + 1 + 1)  # conditions x (toy-vs-2 subjects + each subject vs the other)
    table = humanlike(pairs)
    # toy vs s01 on contrast: mean over c50, c05 of (.0625, .75, .5) and (0, .5, -1/3); vs s02: (.0625, .75, .5)
    # and (.0625, .75, 0); cue-conflict vs s01 (.25, .5, 0), vs s02 (0, 1, 1 [c_obs = 1]).
    assert table.loc["toy", "accuracy_difference"] == pytest.approx(((0.03125 + 0.0625) / 2 + 0.125) / 2)
    assert table.loc["toy", "observed_consistency"] == pytest.approx(((0.625 + 0.75) / 2 + 0.75) / 2)
    assert table.loc["toy", "error_consistency"] == pytest.approx(((1 / 12 + 0.25) / 2 + 0.5) / 2)
    # the subjects against each other: contrast c50 (.25, .5, .2), c05 (.0625, .75, 0); cue-conflict (.25, .5, 0)
    expected = [(0.15625 + 0.25) / 2, (0.625 + 0.5) / 2, (0.1 + 0.0) / 2]
    assert table.loc[HUMANS].tolist() == pytest.approx(expected)
    assert table.loc["subject-01"].tolist() == pytest.approx(expected)


def test_humanlike_by_condition_covers_every_condition(trials: pd.DataFrame) -> None:
    table = humanlike_by_condition(humanlike_pairs(trials, benchmark=False))
    # toy on contrast c100 (excluded from the benchmark, shown against condition): vs subject-01 [1, 1] == [1, 1]:
    # (0, 1, 1); vs subject-02 [0, 1]: (.25, .5, c_exp .5 -> 0); c05 (see above): (0, .5, -1/3) and (.0625, .75, 0)
    assert table.loc[("toy", "contrast", "c100")].tolist() == pytest.approx([0.125, 0.75, 0.5])
    assert table.loc[("toy", "contrast", "c05")].tolist() == pytest.approx([0.03125, 0.625, -1 / 6])
    # the subjects against each other on c50: (.25, .5, .2) for either, so the pooled humans too
    assert table.loc[(HUMANS, "contrast", "c50")].tolist() == pytest.approx([0.25, 0.5, 0.2])


def test_error_consistency_matrix(trials: pd.DataFrame) -> None:
    # cue-conflict (see test_humanlike_aggregation): toy vs subject-01 0, vs subject-02 1 (c_obs = 1)
    matrix = error_consistency_matrix(trials.loc[trials["dataset"] == "cue-conflict"])
    assert list(matrix.index) == list(matrix.columns) == ["subject-01", "subject-02", "toy"]
    assert matrix.to_numpy().tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]


def test_response_entropy_and_confusion(trials: pd.DataFrame) -> None:
    # entropy over the presented categories: toy, contrast c100: knife, bicycle .5 each -> 1 bit; c50: knife,
    # bicycle .25 each (its 'oven' names no presented category) -> 1; c05: boat .25 -> .5. The pooled humans: mean
    # over subjects; c05 (.5 [car .25] + 0 [all 'oven']) / 2; c50 (1.5 [dog, bicycle, knife] + .5 [knife]) / 2
    entropy = entropy_by_condition(trials).set_index(["dataset", "condition", "observer"])["entropy"]
    assert [entropy[("contrast", c, "toy")] for c in ("c100", "c50", "c05")] == [1.0, 1.0, 0.5]
    assert (entropy[("contrast", "c05", HUMANS)], entropy[("contrast", "c50", HUMANS)]) == (0.25, 1.0)
    counts = confusion_counts(trials)
    toy = counts.loc[(counts["observer"] == "toy") & (counts["condition"] == "c50")]
    assert sorted(zip(toy["category"], toy["object_response"], toy["count"])) == [
        ("bicycle", "bicycle", 1), ("cat", "oven", 1), ("dog", "oven", 1), ("knife", "knife", 1)]
    humans = counts.loc[(counts["observer"] == HUMANS) & (counts["condition"] == "c05")]  # both subjects pooled
    assert sorted(zip(humans["category"], humans["object_response"], humans["count"])) == [
        ("bear", "oven", 2), ("boat", "oven", 2), ("car", "car", 1), ("car", "oven", 1), ("truck", "oven", 2)]


def test_rankings() -> None:
    ood = pd.Series({"a": 0.5, "b": 0.7, "c": 0.5, HUMANS: 0.9, "subject-01": 0.8})
    ranked = accuracy_ranking(ood)
    assert list(ranked.index) == ["b", "a", "c"]
    assert ranked["rank"].tolist() == [1.0, 2.5, 2.5]
    table = pd.DataFrame({"accuracy_difference": [0.1, 0.2, 0.05], "observed_consistency": [0.7, 0.6, 0.65],
                          "error_consistency": [0.2, 0.3, 0.1]}, index=["a", "b", "c"])
    ranked = humanlike_ranking(table)
    # a: ranks 2, 1, 2 -> 5/3; b: 3, 3, 1 -> 7/3; c: 1, 2, 3 -> 2
    assert list(ranked.index) == ["a", "c", "b"]
    assert ranked["mean_rank"].tolist() == pytest.approx([5 / 3, 2, 7 / 3])


def test_summary_json(trials: pd.DataFrame) -> None:
    data = summarise(trials).to_json()
    assert data["datasets"] == ["contrast", "cue-conflict"]
    toy = data["observers"]["toy"]
    assert toy["kind"] == "model"
    assert toy["accuracy"]["contrast"] == 0.5 and toy["ood_accuracy_by_dataset"]["contrast"] == 0.375
    assert toy["shape_bias"] == 0.5 and toy["shape_bias_by_category"]["bear"] == 0.0
    assert toy["ood_accuracy_rank"] == 1.0 and toy["mean_rank"] == 1.0
    assert data["observers"][HUMANS]["kind"] == "humans"
    assert data["observers"][HUMANS]["shape_bias"] == pytest.approx(0.7)
    assert data["observers"]["subject-02"]["kind"] == "human"
