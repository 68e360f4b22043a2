"""load_model: folder kinds and their errors, schedules, image encoding, the bundled digits model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genfast.models import BUNDLED_MODELS, load_model
from genfast.models.schedule import alphas_cumprod_from_config
from genfast.testing import make_tiny_embedding_unet, make_tiny_sd_pipeline


@pytest.fixture(scope="module")
def sd_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_sd_pipeline(tmp_path_factory.mktemp("sd"), max_length=8)


@pytest.fixture(scope="module")
def embedding_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_embedding_unet(tmp_path_factory.mktemp("emb"), n_classes=3, class_names=["zero", "one", "two"])


def test_default_batch_size_follows_the_latent_size(sd_path):
    """About a million latent elements per batch: 256 rows of tiny latents, 64 of SD's 4x64x64, at least 8."""
    adapter = load_model(sd_path, device="cpu")
    assert adapter.default_batch_size == 256
    for latent, rows in (((4, 64, 64), 64), ((4, 128, 128), 16), ((16, 256, 256), 8)):
        adapter.latent_shape = latent
        assert adapter.default_batch_size == rows


def test_stable_diffusion_adapter_attributes(sd_path):
    adapter = load_model(sd_path, device="cpu")
    assert type(adapter).__name__ == "StableDiffusionAdapter"
    assert adapter.dtype == torch.float32 and adapter.device == torch.device("cpu")
    assert adapter.prediction_type == "epsilon" and adapter.num_train_timesteps == 1000
    assert adapter.image_size == 16 and adapter.image_channels == 3 and adapter.latent_shape == (4, 8, 8)
    assert adapter.schedule.alpha.dtype == torch.float64 and adapter.schedule.alpha.shape == (1000,)
    assert adapter.describe()["options"]["attention"] == "sdpa"
    assert load_model(adapter) is adapter
    with pytest.raises(ValueError, match="already loaded"):
        load_model(adapter, dtype=torch.float16)


def test_vae_latents_are_posterior_mean_times_scaling_factor(sd_path):
    from diffusers import AutoencoderKL

    adapter = load_model(sd_path, device="cpu")
    images = [np.random.default_rng(i).integers(0, 256, (20, 24, 3), dtype=np.uint8) for i in range(3)]
    pixels = adapter.prepare_images(images)
    assert pixels.shape == (3, 3, 16, 16)
    latents = adapter.encode_images(pixels)
    vae = AutoencoderKL.from_pretrained(sd_path, subfolder="vae", low_cpu_mem_usage=False).eval()
    with torch.no_grad():
        posterior = vae.encode(pixels).latent_dist
    expected = posterior.mean * vae.config.scaling_factor
    assert latents.dtype == torch.float32 and latents.shape == (3, *adapter.latent_shape)
    assert vae.config.scaling_factor == pytest.approx(0.18215)
    torch.testing.assert_close(latents, expected)
    assert not torch.allclose(latents, posterior.sample() * vae.config.scaling_factor)
    with pytest.raises(ValueError, match=r"pixels must be a tensor \[N, 3, 16, 16\]"):
        adapter.encode_images(pixels[:, :, :8])


def test_alphas_cumprod_follow_diffusers():
    from diffusers import DDPMScheduler

    for schedule in ("linear", "scaled_linear", "squaredcos_cap_v2"):
        config = {"beta_schedule": schedule, "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}
        ours = alphas_cumprod_from_config(config)
        theirs = DDPMScheduler(**config).alphas_cumprod
        assert ours.dtype == torch.float64
        torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="beta_schedule 'sigmoid' is not supported"):
        alphas_cumprod_from_config({"beta_schedule": "sigmoid"})


def test_class_embedding_adapter(embedding_path):
    adapter = load_model(embedding_path, device="cpu")
    assert type(adapter).__name__ == "ClassEmbeddingUNetAdapter"
    assert adapter.latent_shape == (1, 8, 8) and adapter.image_channels == 1
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pixels = adapter.prepare_images([rgb, Image.fromarray(rgb).convert("L")])
    torch.testing.assert_close(pixels[0], pixels[1])
    torch.testing.assert_close(adapter.encode_images(pixels), pixels)
    with pytest.raises(ValueError, match=r"'three' is not among the 3 known class names \('zero', 'one', 'two'\)"):
        adapter.encode_classes(["one", "three"], "")
    with pytest.raises(ValueError) as info:  # ten thousand unknown names: a short message
        adapter.encode_classes([f"class {i}" for i in range(10_000)], "")
    assert len(str(info.value)) < 400 and "10,000 in all" in str(info.value)


def test_bundled_digits_model():
    if not (BUNDLED_MODELS["digits"] / "genfast_model.json").is_file():
        pytest.skip("the bundled digits model has not been trained into genfast/data/digits yet")
    adapter = load_model("digits", device="cpu")
    assert adapter.name == "digits" and adapter.known_class_names == [str(d) for d in range(10)]
    adapter.encode_classes(adapter.known_class_names, "")
    z_t = torch.randn(2, *adapter.latent_shape)
    out = adapter.denoise(z_t, torch.tensor([10, 500]), torch.tensor([0, 10, 20]), torch.arange(20) % 10)
    assert out.shape == (20, *adapter.latent_shape) and torch.isfinite(out).all()


def _copy(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(path, target)
    return target


def _edit_json(file: Path, **changes) -> None:
    data = json.loads(file.read_text())
    data.update(changes)
    file.write_text(json.dumps(data))


def test_folder_errors(tmp_path, sd_path, embedding_path):
    with pytest.raises(ValueError, match="model folder not found"):
        load_model(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="neither genfast_model.json nor model_index.json"):
        load_model(empty)
    (empty / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="must be a folder, not a file"):
        load_model(empty / "file.txt")
    with pytest.raises(TypeError, match="model must be a name, a path or an Adapter"):
        load_model(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attention must be one of"):
        load_model(embedding_path, device="cpu", attention="flash")

    sd = _copy(sd_path, tmp_path / "a")
    shutil.rmtree(sd / "vae")
    with pytest.raises(ValueError, match=r"missing vae"):
        load_model(sd)
    sd = _copy(sd_path, tmp_path / "b")
    (sd / "unet" / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="cannot load the Stable Diffusion pipeline"):
        load_model(sd)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "genfast_model.json").write_text("{not json"), "cannot read the model config"),
        (lambda p: _edit_json(p / "genfast_model.json", format="other"), "format must be"),
        (lambda p: _edit_json(p / "genfast_model.json", version=2), "version 2 is not supported"),
        (lambda p: _edit_json(p / "genfast_model.json", class_names=["a", "a", "b"]), "duplicates"),
        (lambda p: _edit_json(p / "genfast_model.json", image_channels=2), "image_channels must be 1 or 3"),
        (lambda p: _edit_json(p / "genfast_model.json", prediction_type="x0"), "prediction_type must be one of"),
        (lambda p: _edit_json(p / "genfast_model.json", class_names=["a", "b"]), r"embeddings must have shape \[2"),
        (lambda p: (p / "class_embeddings.safetensors").write_bytes(b"junk"), "cannot read the 'embeddings' tensor"),
        (lambda p: (p / "scheduler" / "scheduler_config.json").unlink(), "scheduler config not found"),
        (lambda p: shutil.rmtree(p / "unet"), "cannot load the UNet"),
    ],
)
def test_embedding_folder_errors(tmp_path, embedding_path, damage, message):
    model = _copy(embedding_path, tmp_path)
    damage(model)
    with pytest.raises(ValueError, match=message) as info:
        load_model(model, device="cpu")
    assert str(model) in str(info.value)


def test_pipeline_folders_are_routed_by_class_name(tmp_path):
    """model_index.json's _class_name picks the adapter; an unsupported pipeline is named with what is supported."""
    import json

    from genfast.models import PIPELINES, load_model

    folder = tmp_path / "sd3"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(ValueError, match="'KandinskyPipeline' is not supported; genfast loads AmusedPipeline, DiTPipeline, FluxPipeline, IFPipeline, StableDiffusion3Pipeline, StableDiffusionPipeline, StableDiffusionXLPipeline"):
        load_model(folder)
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the pipeline index"):
        load_model(folder)
    assert "StableDiffusionPipeline" in PIPELINES
