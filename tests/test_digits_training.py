"""Tests of the digits split, the digits training script (quick runs) and the bundled digits model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genfast.models import BUNDLED_MODELS
from genfast.models.digits_data import CLASS_NAMES, load_split

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = BUNDLED_MODELS["digits"]


def _load_script():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "scripts" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    return module


td = _load_script()


# --- the split ---------------------------------------------------------------------------------------------


def test_split_shapes_ranges_and_stratification() -> None:
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    assert train_x.shape == (1437, 8, 8) and test_x.shape == (360, 8, 8)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int64
    assert 0.0 <= min(train_x.min(), test_x.min()) and max(train_x.max(), test_x.max()) <= 1.0
    # stratified: every class holds the same 20% share in the test split, up to rounding
    all_counts = np.bincount(np.concatenate([train_y, test_y]), minlength=10)
    assert np.all(np.abs(np.bincount(test_y, minlength=10) - 0.2 * all_counts) <= 1)
    assert CLASS_NAMES == [str(d) for d in range(10)]


def test_split_partitions_the_dataset_deterministically() -> None:
    from sklearn.datasets import load_digits

    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    both = np.concatenate([np.concatenate([train_x, test_x]).reshape(-1, 64), np.concatenate([train_y, test_y])[:, None]], 1)
    digits = load_digits()
    full = np.concatenate([digits.data / 16.0, digits.target[:, None]], 1)
    sort = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(sort(both), sort(full), rtol=0, atol=1e-7)
    again_x, again_y = load_split()
    np.testing.assert_array_equal(again_x, test_x)
    np.testing.assert_array_equal(again_y, test_y)


def test_split_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="split"):
        load_split("validation")


# --- augmentation and validation helpers ----------------------------------------------------------------------


def test_random_shift_moves_each_image_by_at_most_one_pixel() -> None:
    z0 = td.to_z0(load_split("train")[0][:64])
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(td.random_shift(z0, 0.0, gen), z0)
    shifted = td.random_shift(z0, 1.0, gen)
    padded = torch.nn.functional.pad(z0, (1, 1, 1, 1), value=-1.0)
    candidates = torch.stack([padded[:, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)], 1)
    matches = (candidates == shifted[:, None]).flatten(2).all(2)
    assert matches.any(1).all()
    assert not matches[:, 4].all()  # candidate 4 is "no shift": with probability 1 most images moved


def _plain_class_errors(unet, embeddings, z0, alphas_cumprod, timesteps, seed):
    """One forward per (image, timestep, class), using the noise class_errors draws for (image, timestep)."""
    n, g, k = z0.shape[0], timesteps.numel(), embeddings.shape[0]
    eps = torch.randn((n, g) + tuple(z0.shape[1:]), generator=torch.Generator().manual_seed(seed))
    out = torch.zeros(n, k)
    with torch.no_grad():
        for i in range(n):
            for j, t in enumerate(timesteps.tolist()):
                abar = alphas_cumprod[t]
                z_t = abar.sqrt() * z0[i : i + 1] + (1 - abar).sqrt() * eps[i, j : j + 1]
                for c in range(k):
                    pred = unet(z_t, torch.tensor([t]), encoder_hidden_states=embeddings[c : c + 1]).sample
                    out[i, c] += (pred - eps[i, j : j + 1]).pow(2).mean() / g
    return out


def test_class_errors_match_the_plain_per_class_loop() -> None:
    torch.manual_seed(0)
    cfg = td.TrainConfig(channels=(8,), embed_len=2, embed_dim=8, head_dim=4)
    unet = td.build_unet(cfg).eval()
    embeddings = torch.randn(3, 2, 8)
    z0 = td.to_z0(load_split("test")[0][:5])
    acp = td.build_scheduler("linear").alphas_cumprod.float()
    grid = td.validation_timesteps(4)
    batched = td.class_errors(unet, embeddings, z0, acp, grid, seed=7, rows_per_batch=9)
    plain = _plain_class_errors(unet, embeddings, z0, acp, grid, seed=7)
    torch.testing.assert_close(batched, plain, rtol=1e-4, atol=1e-6)


class _PrototypeDenoiser(torch.nn.Module):
    """Predicts the noise exactly if the image were the prototype carried in the class embedding."""

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.acp = alphas_cumprod

    def forward(self, z_t, t, encoder_hidden_states):
        abar = self.acp[t].view(-1, 1, 1, 1)
        proto = encoder_hidden_states.view(z_t.shape)
        return SimpleNamespace(sample=(z_t - abar.sqrt() * proto) / (1 - abar).sqrt())


def test_validation_accuracy_is_nearest_prototype_for_a_prototype_denoiser() -> None:
    # With this denoiser the eps error of class k is abar/(1-abar) * ||z0 - proto_k||^2, so the diffusion
    # classifier must agree exactly with the nearest-class-mean classifier.
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    means = np.stack([train_x[train_y == k].mean(0) for k in range(10)])
    acp = td.build_scheduler("linear").alphas_cumprod.float()
    embeddings = td.to_z0(means).reshape(10, 1, 64)
    acc = td.validation_accuracy(_PrototypeDenoiser(acp), embeddings, acp, num_images=100, num_timesteps=5)
    dist = ((test_x[:100, None] - means[None]) ** 2).sum((2, 3))
    expected = float((dist.argmin(1) == test_y[:100]).mean())
    assert acc == pytest.approx(expected)
    assert 0.5 < acc < 1.0  # the check has teeth: not a trivial all-right or all-wrong case


def test_validation_timesteps_is_li_et_al_grid() -> None:
    assert td.validation_timesteps(4).tolist() == [125, 375, 625, 875]
    assert td.validation_timesteps(50).tolist() == list(range(10, 1000, 20))
    with pytest.raises(ValueError, match="timestep"):
        td.validation_timesteps(0)


# --- quick training runs -------------------------------------------------------------------------------------


def test_training_is_reproducible_and_seeded() -> None:
    cfg = td.TrainConfig(steps=3, batch_size=8, warmup_steps=1, channels=(8,), embed_len=2, embed_dim=8, head_dim=4)
    unet_a, emb_a, _ = td.train(cfg, log_every=0)
    unet_b, emb_b, _ = td.train(cfg, log_every=0)
    unet_c, emb_c, _ = td.train(td.TrainConfig(**{**vars(cfg), "seed": 1}), log_every=0)
    assert torch.equal(emb_a, emb_b)
    for (name, a), b in zip(unet_a.state_dict().items(), unet_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(emb_a, emb_c)


def test_quick_cli_run_writes_a_bundle_diffusers_loads(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler, UNet2DConditionModel

    out = tmp_path / "digits"
    argv = ["--out", str(out), "--steps", "2", "--batch-size", "8", "--channels", "8", "--embed-len", "3",
            "--embed-dim", "16", "--head-dim", "4", "--val-images", "3", "--val-timesteps", "2", "--log-every", "0"]
    td.main(argv)
    meta = json.loads((out / "genfast_model.json").read_text())
    assert meta == {"format": "genfast-class-embedding-unet", "version": 1, "class_names": CLASS_NAMES,
                    "image_channels": 1, "image_size": 8, "prediction_type": "epsilon"}
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    assert unet.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert unet.config.block_out_channels == [8] and unet.config.cross_attention_dim == 16
    scheduler = DDPMScheduler.from_pretrained(out / "scheduler")
    assert scheduler.config.prediction_type == "epsilon" and scheduler.config.num_train_timesteps == 1000
    embeddings = load_file(out / "class_embeddings.safetensors")["embeddings"]
    assert embeddings.shape == (10, 3, 16) and embeddings.dtype == torch.float32
    pred = unet(torch.zeros(2, 1, 8, 8), torch.tensor([10, 500]), encoder_hidden_states=embeddings[:2]).sample
    assert pred.shape == (2, 1, 8, 8)
    card = (out / "MODEL_CARD.md").read_text()
    assert "--steps 2" in card and "test images" in card


def test_cli_rejects_bad_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--channels"):
        td.main(["--out", str(tmp_path), "--channels", "12"])


# --- the bundled model ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle():
    if not (BUNDLE / "genfast_model.json").exists():
        pytest.skip(f"no bundled digits model at {BUNDLE} (train it with scripts/train_digits.py)")
    from diffusers import DDPMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(BUNDLE / "unet").eval()
    scheduler = DDPMScheduler.from_pretrained(BUNDLE / "scheduler")
    embeddings = load_file(BUNDLE / "class_embeddings.safetensors")["embeddings"]
    return unet, scheduler, embeddings


def test_bundled_model_layout_and_size(bundle) -> None:
    unet, scheduler, embeddings = bundle
    meta = json.loads((BUNDLE / "genfast_model.json").read_text())
    assert meta["format"] == "genfast-class-embedding-unet" and meta["class_names"] == CLASS_NAMES
    assert unet.config.in_channels == unet.config.out_channels == meta["image_channels"] == 1
    assert unet.config.sample_size == meta["image_size"] == 8
    assert unet.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert embeddings.shape[0] == 10 and embeddings.shape[2] == unet.config.cross_attention_dim
    assert scheduler.config.prediction_type == "epsilon"
    size = sum(f.stat().st_size for f in BUNDLE.rglob("*") if f.is_file())
    assert size < 2_000_000, f"bundled digits model is {size} bytes"
    assert (BUNDLE / "MODEL_CARD.md").exists()


def test_bundled_model_classifies_held_out_digits(bundle) -> None:
    unet, scheduler, embeddings = bundle
    acc = td.validation_accuracy(unet, embeddings, scheduler.alphas_cumprod.float(), num_images=60, num_timesteps=10)
    assert acc >= 0.9
