"""Classes with several conditionings (prompt ensembles, synonyms, the ImageNet labels of a model-vs-human
category): "best" and "mean" against the same model run on the conditionings as classes of their own."""
from __future__ import annotations

import json

import numpy as np
import pytest

from genfast import Classifier
from genfast.engine import Exhaustive
from genfast.models.digits_data import load_split
from genfast.testing.dit import make_tiny_dit_pipeline
from genfast.vocabulary import MVH_CLASSES, MVH_IMAGENET_INDICES

DIGITS = [str(d) for d in range(10)]
GROUPS = {"small": ["0", "1", "2", "3", "4"], "large": ["5", "6", "7", "8", "9"]}


@pytest.fixture(scope="module")
def digit_images():
    images, _ = load_split("test")
    return [image for image in images[:6]]


@pytest.fixture(scope="module")
def per_digit(digit_images):
    return Classifier("digits", DIGITS).classify(digit_images)


@pytest.mark.parametrize("aggregate", ["best", "mean"])
def test_ensembles_aggregate_their_conditionings(digit_images, per_digit, aggregate):
    owner = np.repeat([0, 1], 5)
    predictions = Classifier("digits", GROUPS, aggregate=aggregate).classify(digit_images, return_details=True)
    for grouped, single in zip(predictions, per_digit):
        assert grouped.classes == ("small", "large") and grouped.evaluations == single.evaluations
        total = np.bincount(owner, weights=single.probabilities)
        if aggregate == "best":  # the class of the winning digit, its probability the sum of its digits'
            assert grouped.index == owner[single.index]
            np.testing.assert_allclose(grouped.probabilities, total, rtol=1e-12)
        else:  # the toolbox's mean over members
            assert grouped.index == int(np.argmax(total / 5))
            np.testing.assert_allclose(grouped.probabilities, total / total.sum(), rtol=1e-12)
        top = [int(np.argmax(np.where(owner == c, single.probabilities, -1))) for c in (0, 1)]
        np.testing.assert_allclose(grouped.scores, single.scores[top], rtol=1e-12)
        assert grouped.details.conditionings == tuple(DIGITS)
        assert grouped.details.conditioning_class.tolist() == owner.tolist()


@pytest.mark.parametrize("classes, aggregate, message", [
    ({"a": ["1", "2"], "b": ["2", "3"]}, "best", "conditioning '2' appears in class 'a' and in class 'b'"),
    ({"a": [], "b": ["3"]}, "best", r"classes\['a'\] must be a non-empty list of conditionings"),
    ({"a": "1", "b": ["3"]}, "best", r"classes\['a'\] must be a non-empty list"),
    ({"a": ["1", 2], "b": ["3"]}, "best", r"classes\['a'\]\[1\] must be a non-empty string"),
    ({"a": ["1"], "b": ["3"]}, "median", "aggregate must be one of best, mean"),
])
def test_bad_ensembles_are_clear_errors(classes, aggregate, message):
    with pytest.raises(ValueError, match=message):
        Classifier("digits", classes, aggregate=aggregate)


def _dit(path, labels: int):
    return make_tiny_dit_pipeline(path, id2label={i: f"label{i}, synonym{i}" for i in range(labels)})


def test_dit_scores_the_16_categories_through_their_imagenet_labels(tmp_path):
    path = _dit(tmp_path / "dit", 1000)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    method = Exhaustive(n_samples=1)
    mvh = Classifier(path, MVH_CLASSES, method=method, device="cpu")
    assert [len(m) for m in mvh.members] == [len(MVH_IMAGENET_INDICES[c]) for c in MVH_CLASSES]
    assert mvh.members[MVH_CLASSES.index("dog")][0] == "label152"
    labels = [f"label{i}" for c in MVH_CLASSES for i in MVH_IMAGENET_INDICES[c]]
    category = [c for c in MVH_CLASSES for _ in MVH_IMAGENET_INDICES[c]]
    flat = Classifier(path, labels, method=method, device="cpu")
    for grouped, single in zip(mvh.classify(images), flat.classify(images)):
        assert grouped.label == category[single.index] and grouped.evaluations == 207

    small = _dit(tmp_path / "small", 6)
    with pytest.raises(ValueError, match="'airplane' is the model-vs-human category of ImageNet labels \\[404\\], "
                                         "but this DiT model has no label 404"):
        Classifier(small, MVH_CLASSES, device="cpu")


def test_evaluate_takes_class_members_and_records_them(tmp_path, capsys, digit_images):
    from PIL import Image

    from genfast.cli import main

    for i, image in enumerate(digit_images):
        path = tmp_path / "data" / "digits" / ("small" if i % 2 else "large") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    members = tmp_path / "members.json"
    members.write_text(json.dumps(GROUPS))
    args = ["evaluate", "--model", "digits", "--data", str(tmp_path / "data"), "--classes", "small,large",
            "--prompt", "{}", "--class-members", str(members), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    rows = (tmp_path / "out/raw-data/digits/digits_digits_session-1.csv").read_text().splitlines()[1:]
    expected = Classifier("digits", GROUPS).classify(digit_images)
    assert sorted(r.split(",")[4] for r in rows) == sorted(p.label for p in expected)
    capsys.readouterr()
    assert main(args + ["--aggregate", "mean"]) == 2  # a journal continues only with the same aggregation
    assert "aggregate: None then, 'mean' now" in capsys.readouterr().err
    members.write_text('{"small": "0"}')
    assert main(args) == 2
    assert "must hold a JSON object of class name -> non-empty list of strings" in capsys.readouterr().err
