"""Tests of the glyphs data (renders and splits), the training script's glyphs mode and the bundled glyphs model."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

import genfast
from genfast.engine.methods import Li2023
from genfast.models import BUNDLED_MODELS
from genfast.models import glyphs_data as gd

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = BUNDLED_MODELS["glyphs"]
SPLITS = ("train", "tune", "test")


def _load_script():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    return module


td = _load_script()


# --- renders -------------------------------------------------------------------------------------------------


def test_fonts_come_from_matplotlib_and_the_held_out_style_is_slanted() -> None:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    assert all(gd.font_file(face) == folder / f"{face}.ttf" for face in gd.FONTS)
    assert len(gd.TRAIN_FONTS) == len(gd.HELD_OUT_FONTS) == 6
    assert all("Oblique" in f or "Italic" in f for f in gd.HELD_OUT_FONTS)
    assert not any("Oblique" in f or "Italic" in f for f in gd.TRAIN_FONTS)
    assert gd.CLASS_NAMES == [chr(c) for c in [*range(65, 91), *range(97, 123), *range(48, 58)]]
    with pytest.raises(ValueError, match="unknown face"):
        gd.font_file("DejaVuSans-Light")


def test_render_is_a_pure_function_of_face_class_and_seed() -> None:
    faces, labels, seeds = (a[:200] for a in gd.split_renders("tune"))
    images = gd.render(faces, labels, seeds)
    assert images.shape == (200, 16, 16) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    order = np.random.default_rng(0).permutation(200)[:37]  # another order and batch: the same glyphs
    np.testing.assert_array_equal(gd.render(faces[order], labels[order], seeds[order]), images[order])
    other_seed = gd.render(faces[:20], labels[:20], seeds[:20] + 1)
    assert all(np.abs(other_seed[i] - images[i]).max() > 0.05 for i in range(20))


def test_augmentation_changes_the_clean_glyph_but_keeps_its_place() -> None:
    faces, labels, seeds = (a[:124] for a in gd.split_renders("test"))
    clean = gd.render(faces, labels, seeds, augment=False)
    np.testing.assert_array_equal(clean, gd.render(faces, labels, seeds + 7, augment=False))  # no randomness
    augmented = gd.render(faces, labels, seeds)
    assert (np.abs(augmented - clean).reshape(124, -1).max(1) > 0.1).all()
    # small transforms: the ink's centre moves by about a pixel, never across the image
    grid = np.arange(16)

    def centre(x: np.ndarray) -> np.ndarray:
        mass = x.sum((1, 2))
        return np.stack([(x.sum(2) * grid).sum(1) / mass, (x.sum(1) * grid).sum(1) / mass], 1)

    assert np.abs(centre(augmented) - centre(clean)).max() < 3.0
    # case is kept by size: lower-case x-height glyphs have less ink height than their capitals
    height = lambda x: (x.max(2) > 0.3).sum(1)  # noqa: E731
    lower = [gd.CLASS_NAMES.index(c) for c in "ocsvwxz"]
    upper = [gd.CLASS_NAMES.index(c.upper()) for c in "ocsvwxz"]
    assert (height(clean[lower]) < height(clean[upper])).all()


def test_render_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labels"):
        gd.render([0], [62], [0])
    with pytest.raises(ValueError, match="face"):
        gd.render([12], [0], [0])
    with pytest.raises(ValueError, match="one entry per glyph"):
        gd.render([0, 1], [0], [0])
    with pytest.raises(ValueError, match="split"):
        gd.load_split("validation")


# --- splits --------------------------------------------------------------------------------------------------


def test_splits_are_deterministic_and_match_their_renders() -> None:
    for split in SPLITS:
        first, second = gd.split_renders(split), gd.split_renders(split)
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
    images, labels = gd.load_split("tune")
    again_images, again_labels = gd.load_split("tune")
    np.testing.assert_array_equal(images, again_images)
    np.testing.assert_array_equal(labels, again_labels)
    faces, render_labels, seeds = gd.split_renders("tune")
    np.testing.assert_array_equal(labels, render_labels)
    np.testing.assert_array_equal(images[-62:], gd.render(faces[-62:], render_labels[-62:], seeds[-62:]))
    assert images.dtype == np.float32 and labels.dtype == np.int64 and images.shape == (744, 16, 16)


def test_splits_are_disjoint_balanced_and_hold_out_the_slanted_style() -> None:
    renders = {split: gd.split_renders(split) for split in SPLITS}
    pairs = {split: set(zip(f.tolist(), s.tolist())) for split, (f, _, s) in renders.items()}
    for split, (faces, labels, seeds) in renders.items():
        assert len(set(zip(faces.tolist(), labels.tolist(), seeds.tolist()))) == labels.size  # no repeated render
        counts = np.bincount(labels, minlength=62)
        assert counts.size == 62 and (counts == counts[0]).all() and counts[0] > 0, split
        assert np.array_equal(np.bincount(labels[:62], minlength=62), np.ones(62))  # a prefix of 62: every class
    assert not pairs["train"] & pairs["tune"] and not pairs["train"] & pairs["test"]
    assert not pairs["tune"] & pairs["test"]
    train_faces = {gd.FONTS[f] for f in np.unique(renders["train"][0])}
    assert train_faces == set(gd.TRAIN_FONTS)
    for split in ("tune", "test"):
        assert {gd.FONTS[f] for f in np.unique(renders[split][0])} == set(gd.HELD_OUT_FONTS)
    assert renders["train"][2].max() < renders["tune"][2].min() and renders["tune"][2].max() < renders["test"][2].min()
    assert len(renders["train"][1]) == 22_320 and len(renders["test"][1]) == len(renders["tune"][1]) == 744


# --- the training script -------------------------------------------------------------------------------------


def test_block_layout_options() -> None:
    digits = td.DATASETS["digits"].defaults
    assert td.block_types(digits) == (("CrossAttnDownBlock2D",), ("CrossAttnUpBlock2D",))
    cfg = td.TrainConfig(channels=(8, 16, 32), attention_levels=2, last_up_attention=False)
    assert td.block_types(cfg) == (("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                                   ("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    with pytest.raises(ValueError, match="attention_levels"):
        td.block_types(td.TrainConfig(channels=(8, 16), attention_levels=3))


def test_quick_glyphs_run_writes_a_bundle_genfast_loads(tmp_path: Path) -> None:
    out = tmp_path / "glyphs"
    td.main(["--dataset", "glyphs", "--out", str(out), "--steps", "2", "--batch-size", "8", "--channels", "8,16",
             "--attention-levels", "2", "--embed-len", "2", "--embed-dim", "8", "--head-dim", "4",
             "--val-images", "0", "--li2023-images", "0", "--log-every", "0"])
    meta = json.loads((out / "genfast_model.json").read_text())
    assert meta["class_names"] == gd.CLASS_NAMES and meta["image_size"] == 16
    assert load_file(out / "class_embeddings.safetensors")["embeddings"].shape == (62, 2, 8)
    card = (out / "MODEL_CARD.md").read_text()
    assert "--dataset glyphs" in card and "# genfast bundled glyphs model" in card and "16x16" in card
    clf = genfast.Classifier(str(out), gd.CLASS_NAMES[:3], method=Li2023(n_samples=(2, 4), to_keep=(2, 1)),
                             device="cpu")
    assert clf.adapter.unet.config.down_block_types == ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert clf.adapter.unet.config.up_block_types == ["CrossAttnUpBlock2D", "UpBlock2D"]
    assert clf.classify(gd.load_split("test")[0][0]).label in gd.CLASS_NAMES[:3]


def test_cli_rejects_bad_attention_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--attention-levels"):
        td.main(["--dataset", "glyphs", "--out", str(tmp_path), "--channels", "8,16", "--attention-levels", "3"])


# --- the bundled model ---------------------------------------------------------------------------------------


def test_bundled_model_layout_size_and_savings() -> None:
    meta = json.loads((BUNDLE / "genfast_model.json").read_text())
    assert meta == {"format": "genfast-class-embedding-unet", "version": 1, "class_names": gd.CLASS_NAMES,
                    "image_channels": 1, "image_size": 16, "prediction_type": "epsilon",
                    "temperature": 0.018}  # fitted on the tune split (benchmarks/efficiency.py --section calibration)
    weights = BUNDLE / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 1_000_000
    assert sum(f.stat().st_size for f in BUNDLE.rglob("*") if f.is_file()) < 1_100_000
    card = (BUNDLE / "MODEL_CARD.md").read_text()
    assert re.search(r"\*\*\d+\.\d\d%\*\* \(standard error [\d.]+%\) on the first \d+ test images with genfast's "
                     r"`li2023` method", card)
    clf = genfast.Classifier("glyphs", gd.CLASS_NAMES, device="cpu")
    assert clf.adapter.unet.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert clf.adapter.embeddings.shape[0] == 62 and clf.temperature == 0.018
    assert clf.adapter.runner.share_prefix and clf.adapter.runner.cache_class_kv
    assert not clf.adapter.disabled_reasons


def test_bundled_model_classifies_clean_held_out_glyphs_above_chance() -> None:
    # 21 clean glyphs of the held-out slanted faces (every third class), a short staged schedule of 195
    # evaluations per image. Chance is 1/62; with it the bundled model got 87% of the first 124 clean test glyphs.
    faces, labels, seeds = (a[:62:3] for a in gd.split_renders("test"))
    images = gd.render(faces, labels, seeds, augment=False)
    clf = genfast.Classifier("glyphs", gd.CLASS_NAMES, method=Li2023(n_samples=(3, 6), to_keep=(3, 1)),
                             device="cpu")
    predicted = np.array([p.index for p in clf.classify(list(images))])
    assert (predicted == labels).mean() >= 0.6
