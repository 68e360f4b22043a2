"""DeepFloyd IF stage I: a tiny random IFPipeline folder loads through genfast.Classifier, and every recorded error
equals a plain loop with the pipeline's own scheduler (add_noise), encode_prompt and UNet (noise: the first 3 of
its 6 output channels)."""
import shutil

import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.models import load_model
from genfast.models.attention import triton_kernels
from genfast.models.unet import ClassConditionedUNet
from genfast.testing.deepfloyd_if import make_tiny_if_pipeline

CLASSES = ["Cat", "dog", "car", "boat "]  # upper case and a trailing space: IF lower-cases and strips the prompt
PROMPT = "A photo of a {}"
EXHAUSTIVE = Exhaustive(n_samples=3)
OPTIONS = {"device": "cpu", "attention": "sdpa", "clean_caption": False}


@pytest.fixture(scope="module")
def if_path(tmp_path_factory):
    return make_tiny_if_pipeline(tmp_path_factory.mktemp("if"), seed=5)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]


@pytest.fixture(scope="module")
def exhaustive_errors(if_path, images):
    """Per-class errors of images[0] with every saving at its default (cache_class_kv on)."""
    clf = Classifier(if_path, CLASSES, prompt=PROMPT, method=EXHAUSTIVE, **OPTIONS)
    return clf, clf.classify(images[0], return_details=True).details


def _pipeline(path):
    from diffusers import IFPipeline

    return IFPipeline.from_pretrained(path, safety_checker=None, feature_extractor=None, watermarker=None)


def test_errors_equal_the_pipelines_own_components(if_path, images, exhaustive_errors):
    clf, d = exhaustive_errors
    assert clf.adapter.latent_shape == (3, 16, 16) and clf.adapter.options()["cache_class_kv"] is True
    pipe = _pipeline(if_path)
    z0 = clf.adapter.prepare_images([images[0]])  # IF denoises the pixels in [-1, 1]
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt([f"A photo of a {c}" for c in CLASSES], do_classifier_free_guidance=False,
                                       device="cpu", clean_caption=False)
    for pos in range(len(d.sample_indices)):
        t = torch.tensor([int(d.timesteps[pos])])
        eps = genfast.noise(d.seed, d.key, [int(d.sample_indices[pos])], clf.adapter.latent_shape)
        z_t = pipe.scheduler.add_noise(z0, eps, t)
        for k in range(len(CLASSES)):
            with torch.no_grad():
                out = pipe.unet(z_t, t, encoder_hidden_states=embeds[k : k + 1]).sample
            assert out.shape[1] == 6
            assert float(((out[:, :3] - eps) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)


def test_savings_do_not_change_the_errors(if_path, images, exhaustive_errors):
    _, fast = exhaustive_errors
    clf = Classifier(if_path, CLASSES, prompt=PROMPT, method=EXHAUSTIVE, cache_class_kv=False, **OPTIONS)
    assert clf.adapter.runner.uses_plain_forward
    plain = clf.classify(images[0], return_details=True).details
    np.testing.assert_allclose(plain.errors, fast.errors, rtol=1e-4)


def test_text_projection_addition_embedding_and_kv_run_once_per_class(exhaustive_errors):
    clf, _ = exhaustive_errors
    adapter = clf.adapter
    assert "addition_embed_type='text'" in adapter.disabled_reasons["share_prefix"]
    assert set(adapter.disabled_reasons) == {"share_prefix"}
    unet = adapter.unet
    text_kv = [attn.add_k_proj for block in (*unet.down_blocks, unet.mid_block, *unet.up_blocks)
               for attn in getattr(block, "attentions", [])]
    calls = []
    hooks = [layer.register_forward_hook(lambda module, args, out: calls.append(module))
             for layer in [*text_kv, unet.encoder_hid_proj, unet.add_embedding]]
    z_t = torch.randn(2, *adapter.latent_shape)
    out = adapter.denoise(z_t, torch.tensor([10, 700]), torch.tensor([0, 3, 5]), torch.tensor([0, 1, 3, 2, 0]))
    for hook in hooks:
        hook.remove()
    assert out.shape == (5, 3, 16, 16)
    assert len(text_kv) == len(adapter.runner.processors) == 4  # down 1, mid 1, up 2 added-KV layers
    assert calls == []  # the three come from the per-class tables of set_conditioning


@pytest.mark.parametrize("method", [Li2023(n_samples=(4, 8), to_keep=(2, 1)),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_decisions_do_not_depend_on_batch_size(if_path, images, method):
    a = Classifier(if_path, CLASSES, prompt=PROMPT, method=method, batch_size=5, **OPTIONS).classify(images)
    b = Classifier(if_path, CLASSES, prompt=PROMPT, method=method, batch_size=64, **OPTIONS).classify(images)
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


@pytest.mark.parametrize("method", [EXHAUSTIVE, Li2023(n_samples=(2, 4), to_keep=(2, 1)),
                                    ClarkJaini2023(min_samples=2, max_samples=6),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)],
                         ids=["exhaustive", "li2023", "clark-jaini2023", "genfast"])
def test_every_method_runs(if_path, images, method):
    prediction = Classifier(if_path, CLASSES, prompt=PROMPT, method=method, **OPTIONS).classify(images[1])
    assert prediction.label in CLASSES and prediction.evaluations > 0
    assert np.isfinite(prediction.scores[prediction.index])


@pytest.mark.skipif(triton_kernels()[0] is None, reason=f"triton backend: {triton_kernels()[1]}")
def test_triton_request_runs_the_added_kv_layers_on_sdpa_with_its_reason(if_path):
    adapter = load_model(if_path, **{**OPTIONS, "attention": "triton"})
    assert adapter.options()["attention"] == "sdpa" and adapter.options()["cache_class_kv"] is True
    assert "triton kernels attend to class keys only" in adapter.disabled_reasons["attention"]
    adapter.encode_classes(CLASSES, PROMPT)
    rows = (torch.randn(2, *adapter.latent_shape), torch.tensor([5, 900]), torch.tensor([0, 2, 5]),
            torch.tensor([3, 0, 1, 2, 3]))
    torch.testing.assert_close(adapter.denoise(*rows), adapter.denoise_plain(*rows), rtol=1e-4, atol=1e-5)


def test_clean_caption_default(if_path):
    """clean_caption defaults to IFPipeline.__call__'s True: the pipeline's cleaner where bs4 and ftfy are
    installed, else a clear error (the pipeline would silently skip the cleaning)."""
    from diffusers.utils import is_bs4_available, is_ftfy_available

    if not (is_bs4_available() and is_ftfy_available()):
        with pytest.raises(ValueError, match="clean_caption=True .* needs the beautifulsoup4 and ftfy packages"):
            load_model(if_path, device="cpu")
        return
    adapter = load_model(if_path, device="cpu")
    assert adapter.describe()["conditioning"] == {"clean_caption": True, "max_length": 77}
    prompts = ["A <b>photo</b> of a cat http://x.org", "two  #dogs"]
    with torch.no_grad():
        expected, _ = _pipeline(if_path).encode_prompt(prompts, do_classifier_free_guidance=False, device="cpu",
                                                       clean_caption=True)
    torch.testing.assert_close(adapter._conditioning(prompts, "{}"), expected)


def test_bad_input_is_a_clear_error(if_path, tmp_path):
    broken = tmp_path / "if"
    shutil.copytree(if_path, broken)
    shutil.rmtree(broken / "text_encoder")
    with pytest.raises(ValueError, match=r"not a DeepFloyd IF pipeline folder \(missing text_encoder\)"):
        Classifier(broken, CLASSES, **OPTIONS)
    for bad in (0, 12.0, True):
        with pytest.raises(ValueError, match="resolution must be a positive integer"):
            load_model(if_path, resolution=bad, **OPTIONS)
    with pytest.raises(ValueError, match="clean_caption must be True or False"):
        load_model(if_path, device="cpu", clean_caption="no")
    adapter = load_model(if_path, resolution=24, **OPTIONS)
    assert adapter.latent_shape == (3, 24, 24)
    with pytest.raises(ValueError, match=r"pixels must be a tensor \[N, 3, 24, 24\]"):
        adapter.encode_images(torch.zeros(1, 3, 16, 16))


@pytest.mark.parametrize("cache_class_kv", [True, False])
def test_masked_text_is_class_indexed_exactly(if_path, cache_class_kv):
    """The T5 mask passed on to the UNet (IFPipeline does not pass it) is a per-class bias on the text keys of
    every added-KV layer, before the image's own keys: class-indexed results equal the diffusers forward."""
    adapter = load_model(if_path, **OPTIONS)
    states = adapter._conditioning(CLASSES, PROMPT)
    mask = torch.ones(len(CLASSES), states.shape[1], dtype=torch.int64)
    mask[:, 12:] = 0
    mask[2, 5:] = 0
    runner = ClassConditionedUNet(adapter.unet, cache_class_kv=cache_class_kv, attention="sdpa")
    runner.set_conditioning({"encoder_hidden_states": states, "encoder_attention_mask": mask})
    assert runner.options()["cache_class_kv"] is cache_class_kv and "cache_class_kv" not in runner.disabled_reasons
    generator = torch.Generator().manual_seed(0)
    z_t, t = torch.randn(2, *adapter.latent_shape, generator=generator), torch.tensor([30, 600])
    offsets, classes = torch.tensor([0, 3, 6]), torch.tensor([2, 0, 3, 1, 2, 2])
    fast, plain = runner.forward(z_t, t, offsets, classes), runner.forward_plain(z_t, t, offsets, classes)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    runner.set_conditioning(states)
    assert not torch.allclose(runner.forward_plain(z_t, t, offsets, classes), plain, atol=1e-3)  # the mask matters
