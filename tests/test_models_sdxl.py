"""SDXL: a tiny random StableDiffusionXLPipeline folder loads through genfast.Classifier, and every recorded error
equals a plain loop with the pipeline's own scheduler, encode_prompt, _get_add_time_ids and UNet."""
import shutil

import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.models import load_model
from genfast.models.unet import ClassConditionedUNet
from genfast.testing.sdxl import make_tiny_sdxl_pipeline

CLASSES = ["cat", "dog", "car", "boat"]
PROMPT = "a photo of a {}"
EXHAUSTIVE = Exhaustive(n_samples=3)


@pytest.fixture(scope="module")
def sdxl_path(tmp_path_factory):
    return make_tiny_sdxl_pipeline(tmp_path_factory.mktemp("sdxl"), seed=3, max_length=16)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]


@pytest.fixture(scope="module")
def exhaustive_errors(sdxl_path, images):
    """Per-class errors of images[0] with every saving at its default (cache_class_kv on)."""
    clf = Classifier(sdxl_path, CLASSES, prompt=PROMPT, method=EXHAUSTIVE, device="cpu", attention="sdpa")
    return clf, clf.classify(images[0], return_details=True).details


def test_errors_equal_the_pipelines_own_components(sdxl_path, images, exhaustive_errors):
    from diffusers import DDPMScheduler, StableDiffusionXLPipeline

    clf, d = exhaustive_errors
    assert clf.adapter.options()["cache_class_kv"] is True
    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl_path)
    with torch.no_grad():
        z0 = pipe.vae.encode(clf.adapter.prepare_images([images[0]])).latent_dist.mean * pipe.vae.config.scaling_factor
        embeds, _, pooled, _ = pipe.encode_prompt([f"a photo of a {c}" for c in CLASSES], device="cpu",
                                                  do_classifier_free_guidance=False)
    time_ids = pipe._get_add_time_ids((16, 16), (0, 0), (16, 16), dtype=embeds.dtype,
                                      text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
    # the pipeline's schedule through DDPM's training-time add_noise, as diffusers' SDXL training scripts noise
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for pos in range(len(d.sample_indices)):
        t = torch.tensor([int(d.timesteps[pos])])
        eps = genfast.noise(d.seed, d.key, [int(d.sample_indices[pos])], clf.adapter.latent_shape)
        z_t = scheduler.add_noise(z0, eps, t)
        for k in range(len(CLASSES)):
            with torch.no_grad():
                out = pipe.unet(z_t, t, encoder_hidden_states=embeds[k : k + 1],
                                added_cond_kwargs={"text_embeds": pooled[k : k + 1], "time_ids": time_ids}).sample
            assert float(((out - eps) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)


@pytest.mark.parametrize("options", [{"cache_class_kv": False}, {"share_prefix": False, "cache_class_kv": False}])
def test_savings_do_not_change_the_errors(sdxl_path, images, exhaustive_errors, options):
    _, fast = exhaustive_errors
    clf = Classifier(sdxl_path, CLASSES, prompt=PROMPT, method=EXHAUSTIVE, device="cpu", attention="sdpa", **options)
    assert clf.adapter.options()["cache_class_kv"] is False
    plain = clf.classify(images[0], return_details=True).details
    np.testing.assert_allclose(plain.errors, fast.errors, rtol=1e-4)


def test_cached_kv_is_on_and_share_prefix_is_off_with_its_reason(sdxl_path, exhaustive_errors):
    clf, _ = exhaustive_errors
    adapter = clf.adapter
    assert "addition_embed_type='text_time'" in adapter.disabled_reasons["share_prefix"]
    assert set(adapter.disabled_reasons) == {"share_prefix"}
    assert adapter.describe()["conditioning"] == {"original_size": [16, 16], "crops_coords_top_left": [0, 0],
                                                  "target_size": [16, 16], "clip_skip": None}
    text_projections = [m.attn2.to_k for m in adapter.unet.modules() if getattr(m, "attn2", None) is not None]
    calls = []
    hooks = [layer.register_forward_hook(lambda module, args, out: calls.append(module))
             for layer in [*text_projections, adapter.unet.add_embedding]]
    z_t = torch.randn(2, *adapter.latent_shape)
    adapter.denoise(z_t, torch.tensor([10, 700]), torch.tensor([0, 3, 5]), torch.tensor([0, 1, 3, 2, 0]))
    for hook in hooks:
        hook.remove()
    assert text_projections and calls == []  # K/V and the addition embedding come from the per-class cache


@pytest.mark.parametrize("method", [Li2023(n_samples=(4, 8), to_keep=(2, 1)),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_decisions_do_not_depend_on_batch_size(sdxl_path, images, method):
    a = Classifier(sdxl_path, CLASSES, prompt=PROMPT, method=method, batch_size=5, device="cpu").classify(images)
    b = Classifier(sdxl_path, CLASSES, prompt=PROMPT, method=method, batch_size=64, device="cpu").classify(images)
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


@pytest.mark.parametrize("method", [EXHAUSTIVE, Li2023(n_samples=(2, 4), to_keep=(2, 1)),
                                    ClarkJaini2023(min_samples=2, max_samples=6),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)],
                         ids=["exhaustive", "li2023", "clark-jaini2023", "genfast"])
def test_every_method_runs(sdxl_path, images, method):
    prediction = Classifier(sdxl_path, CLASSES, prompt=PROMPT, method=method, device="cpu").classify(images[1])
    assert prediction.label in CLASSES and prediction.evaluations > 0
    assert np.isfinite(prediction.scores[prediction.index])


def test_conditioning_options_follow_the_pipeline(sdxl_path):
    from diffusers import StableDiffusionXLPipeline

    adapter = load_model(sdxl_path, device="cpu", original_size=(32, 24), crops_coords_top_left=(4, 0),
                         target_size=[16, 8], clip_skip=1)
    assert adapter.describe()["conditioning"] == {"original_size": [32, 24], "crops_coords_top_left": [4, 0],
                                                  "target_size": [16, 8], "clip_skip": 1}
    structure = adapter._conditioning(["cat", "dog"], PROMPT)
    pipe = StableDiffusionXLPipeline.from_pretrained(sdxl_path)
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(["a photo of a cat", "a photo of a dog"], device="cpu",
                                                  do_classifier_free_guidance=False, clip_skip=1)
    time_ids = pipe._get_add_time_ids((32, 24), (4, 0), (16, 8), dtype=embeds.dtype,
                                      text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
    torch.testing.assert_close(structure["encoder_hidden_states"], embeds)
    torch.testing.assert_close(structure["added_cond_kwargs"]["text_embeds"], pooled)
    torch.testing.assert_close(structure["added_cond_kwargs"]["time_ids"], time_ids.expand(2, -1))


def test_bad_input_is_a_clear_error(sdxl_path, tmp_path):
    broken = tmp_path / "sdxl"
    shutil.copytree(sdxl_path, broken)
    shutil.rmtree(broken / "tokenizer_2")
    with pytest.raises(ValueError, match=r"not a Stable Diffusion XL pipeline folder \(missing tokenizer_2\)"):
        Classifier(broken, CLASSES, device="cpu")
    with pytest.raises(ValueError, match="resolution must be a positive multiple of 2, got 15"):
        load_model(sdxl_path, device="cpu", resolution=15)
    with pytest.raises(ValueError, match="original_size must be a pair of integers >= 1"):
        load_model(sdxl_path, device="cpu", original_size=(0, 16))
    with pytest.raises(ValueError, match="clip_skip must be None or a non-negative integer"):
        load_model(sdxl_path, device="cpu", clip_skip=-1)
    with pytest.raises(ValueError, match="clip_skip must be at most 2 for these 3-layer text encoders, got 3"):
        load_model(sdxl_path, device="cpu", clip_skip=3)
    with pytest.raises(ValueError, match="duplicate"):
        Classifier(sdxl_path, ["cat", "cat"], device="cpu")


@pytest.mark.parametrize("cache_class_kv", [True, False])
def test_masked_text_is_class_indexed_exactly(sdxl_path, cache_class_kv):
    """An attention mask on the text (which SDXL's pipeline does not pass) is a per-class key bias, not a fallback."""
    adapter = load_model(sdxl_path, device="cpu", attention="sdpa")
    structure = adapter._conditioning(CLASSES, PROMPT)
    mask = torch.ones(len(CLASSES), structure["encoder_hidden_states"].shape[1], dtype=torch.int64)
    mask[:, 6:] = 0
    mask[1, 3:] = 0
    runner = ClassConditionedUNet(adapter.unet, cache_class_kv=cache_class_kv, attention="sdpa")
    runner.set_conditioning({**structure, "encoder_attention_mask": mask})
    assert runner.options()["cache_class_kv"] is cache_class_kv and "cache_class_kv" not in runner.disabled_reasons
    generator = torch.Generator().manual_seed(0)
    z_t, t = torch.randn(2, *adapter.latent_shape, generator=generator), torch.tensor([30.0, 600.0])
    offsets, classes = torch.tensor([0, 3, 6]), torch.tensor([1, 0, 3, 2, 1, 1])
    fast, plain = runner.forward(z_t, t, offsets, classes), runner.forward_plain(z_t, t, offsets, classes)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    runner.set_conditioning(structure)
    assert not torch.allclose(runner.forward_plain(z_t, t, offsets, classes), plain, atol=1e-3)  # the mask matters
