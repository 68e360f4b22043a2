"""Clear, bounded errors for bad arguments: each message names the argument and its valid values."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genfast.api import Classifier
from genfast.engine.methods import ClarkJaini2023, GenFast, Li2023, get_method
from genfast.evaluate.datasets import load_dataset
from genfast.models.base import check_class_names, format_prompt, resolve_device_dtype
from genfast.models.digits_data import CLASS_NAMES, load_split


def test_unknown_device_lists_the_devices_here():
    here = "cpu" + "".join(f", cuda:{i}" for i in range(torch.cuda.device_count()) if torch.cuda.is_available())
    with pytest.raises(ValueError, match=rf"device 'tpu0' is not a device on this machine; devices here: {here}"):
        resolve_device_dtype("tpu0", None)
    with pytest.raises(ValueError, match="devices here: cpu"):
        Classifier("digits", CLASS_NAMES, device="tpu0")
    absent = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ValueError, match=rf"device '{absent}' is not a device on this machine"):
        resolve_device_dtype(absent, None)
    assert resolve_device_dtype("cpu", None) == (torch.device("cpu"), torch.float32)


def test_prompt_with_more_than_one_placeholder_is_refused():
    for prompt in ("a {} or a {}", "a {class} or a {}", "{class} {class}"):
        with pytest.raises(ValueError, match=r"has 2 placeholders; it needs exactly one"):
            format_prompt(prompt, "cat")
    with pytest.raises(ValueError, match="has 2 placeholders"):  # also for a model that reads no prompt
        Classifier("digits", CLASS_NAMES, prompt="a {} or a {}")
    assert format_prompt("a photo of a {}", "cat") == "a photo of a cat"


def test_unknown_class_names_are_listed_briefly_with_the_nearest():
    many = [f"thing{i}" for i in range(10_000)]
    with pytest.raises(ValueError) as error:
        check_class_names(many + ["dgo"], known=["cat", "dog", "bird"])
    message = str(error.value)
    assert len(message) < 400, message
    assert message.startswith("'thing0', 'thing1', 'thing2', 'thing3', 'thing4' and 9,996 more (10,001 in all) are "
                              "not among the 3 known class names ('cat', 'dog', 'bird')")
    with pytest.raises(ValueError, match=r"'dgo' is not among the 3 known class names .*; nearest to 'dgo': 'dog'"):
        check_class_names(["cat", "dgo"], known=["cat", "dog", "bird"])
    with pytest.raises(ValueError, match=r"duplicates: 'c000', 'c001', 'c002', 'c003', 'c004' and 995 more "
                                         r"\(1,000 in all\)$"):
        check_class_names([f"c{i:03d}" for i in range(1000)] * 2)


def test_dataset_category_not_in_ten_thousand_classes_is_a_short_message(tmp_path):
    for category in ("cat", "zebra"):
        (tmp_path / "edge" / category).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "edge" / category / "a.png")
    classes = ["cat"] + [f"class{i}" for i in range(10_000)]
    with pytest.raises(ValueError) as error:
        load_dataset(tmp_path / "edge", classes=classes)
    assert "category 'zebra'" in str(error.value) and "10,001 known class names" in str(error.value)
    assert len(str(error.value)) < 600


def test_meta_tensor_image():
    clf = Classifier("digits", CLASS_NAMES)
    with pytest.raises(ValueError, match=r"images\[1\] is a tensor on the meta device, which holds no values"):
        clf.classify([torch.zeros(1, 8, 8), torch.empty(1, 8, 8, device="meta")])


@pytest.mark.parametrize("method, message", [
    ("genfast:p_value=nan", r"p_value must be a number in \(0, 1\), got 'nan'"),
    ("genfast:p_value=abc", r"p_value must be a number in \(0, 1\), got 'abc'"),
    ("genfast:p_value=1.5", r"p_value must be a number in \(0, 1\), got 1.5"),
    ("genfast:weight_rate=-1000", r"weight_rate must be a number in \[-100, 100\], got -1000"),
    ("clark-jaini2023:weight_rate=inf", r"weight_rate must be a number in \[-100, 100\], got 'inf'"),
    ("genfast:huber_delta='x'", r"huber_delta must be a number in \(0, inf\), got 'x'"),
    ("genfast:max_samples=18446744073709551616", r"max_samples must be an integer in \[1, 2\*\*63\)"),
])
def test_method_fields_name_their_valid_range(method, message):
    with pytest.raises(ValueError, match=message):
        get_method(method)


def test_method_objects_check_their_numbers():
    with pytest.raises(ValueError, match=r"p_value must be a number in \(0, 1\), got nan"):
        GenFast(p_value=float("nan"))
    with pytest.raises(ValueError, match=r"weight_rate must be a number in \[-100, 100\], got True"):
        ClarkJaini2023(weight_rate=True)
    for rate in (-100, 0, 7.0, 100):  # the whole range gives finite, positive weights
        weights = GenFast(weight_rate=rate).score_weights(1000)
        assert np.isfinite(weights).all() and (weights >= 0).all() and weights.sum() > 0


def test_batch_size_range():
    for bad in (2**64, 0, True, 1.5):
        with pytest.raises(ValueError, match=r"batch_size \(rows per denoiser call\) must be an integer in \[1, "
                                             r"2\*\*63\)"):
            Classifier("digits", CLASS_NAMES, batch_size=bad)


def test_li2023_with_l1_loss_runs():
    method = get_method("li2023:n_samples=(2,4),to_keep=(3,1),loss=l1")
    assert method == Li2023(n_samples=(2, 4), to_keep=(3, 1), loss="l1")
    images, _ = load_split("test")
    l1 = Classifier("digits", CLASS_NAMES, method=method).classify(images[0], return_details=True)
    l2 = Classifier("digits", CLASS_NAMES, method=Li2023(n_samples=(2, 4), to_keep=(3, 1))).classify(
        images[0], return_details=True)
    assert l1.evaluations == l2.evaluations == 10 * 2 + 3 * 2
    assert np.array_equal(l1.details.timesteps, l2.details.timesteps)
    assert not np.allclose(l1.details.errors[:, :2], l2.details.errors[:, :2])  # another loss, same samples
