"""FLUX: tiny random FluxPipeline folders (FLUX.1-dev-style: guidance-distilled, dynamic shift; schnell-style:
neither) load through genfast.Classifier, and every recorded error equals a plain loop with the pipeline's own
scheduler (set_timesteps with the pipeline's mu, scale_noise), encode_prompt, _pack_latents,
_prepare_latent_image_ids, guidance and transformer, the epsilon error computed here on the packed tokens."""
import shutil

import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.testing.flux import make_tiny_flux_pipeline

CLASSES = ["cat", "dog", "car", "bird"]
PROMPT = "a photo of a {}"
SMALL = {"resolution": 16, "device": "cpu"}  # FluxPipeline's default resolution is 1024 whatever the model
VARIANTS = {
    "dev": ({}, {"guidance_scale": 2.0}),
    "schnell": ({"guidance_embeds": False, "use_dynamic_shifting": False}, {"max_sequence_length": 24}),
}
"""name -> (make_tiny_flux_pipeline options, adapter options)."""


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return {name: make_tiny_flux_pipeline(tmp_path_factory.mktemp(name), **build)
            for name, (build, _) in VARIANTS.items()}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_errors_equal_the_pipelines_own_components(paths, images, variant):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    options = VARIANTS[variant][1]
    clf = Classifier(paths[variant], CLASSES, prompt=PROMPT, method=Exhaustive(n_samples=3), **SMALL, **options)
    d = clf.classify(images[0], return_details=True).details
    pipe = FluxPipeline.from_pretrained(paths[variant], low_cpu_mem_usage=False)
    assert clf.adapter.latent_shape == (4, 8, 8)  # unpacked: genfast's noise has the VAE latent's shape
    assert d.timestep_rule.startswith("timestep = sigma (FluxPipeline")
    config = pipe.scheduler.config
    image_seq_len = (8 // 2) * (8 // 2)  # packed tokens, as FluxPipeline's latents.shape[1]
    mu = None
    if config.use_dynamic_shifting:
        mu = calculate_shift(image_seq_len, config.base_image_seq_len, config.max_image_seq_len, config.base_shift,
                             config.max_shift)
        assert f"mu={mu:.6g} ({image_seq_len} image tokens" in d.timestep_rule
    assert clf.adapter.describe()["mu"] == pytest.approx(mu)
    distilled = pipe.transformer.config.guidance_embeds
    assert distilled is (variant == "dev")
    assert clf.adapter.options()["guidance_scale"] == (options["guidance_scale"] if distilled else None)
    guidance = torch.full([1], options["guidance_scale"], dtype=torch.float32) if distilled else None
    vae = pipe.vae
    pixels = clf.adapter.prepare_images([images[0]])
    with torch.no_grad():
        z0 = (vae.encode(pixels).latent_dist.mean - vae.config.shift_factor) * vae.config.scaling_factor
        embeds, pooled, text_ids = pipe.encode_prompt([PROMPT.format(c) for c in CLASSES], None,
                                                      max_sequence_length=options.get("max_sequence_length", 512))
    img_ids = pipe._prepare_latent_image_ids(1, 4, 4, "cpu", torch.float32)
    # the default batch counts each row's image and text tokens (the pipeline's own prompt length)
    assert clf.adapter.text_seq_len == embeds.shape[1] and clf.adapter.image_seq_len == image_seq_len
    assert clf.batch_size == max(8, min(256, 2**15 // (image_seq_len + embeds.shape[1])))
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
    steps = config.num_train_timesteps

    def pack(x):
        return pipe._pack_latents(x, 1, 4, 8, 8)

    for pos in range(len(d.sample_indices)):
        index = int(d.timesteps[pos])
        assert index < steps - 1  # the grid's indices, each at the unshifted level (index + 1) / T
        scheduler.set_timesteps(sigmas=[(index + 1) / steps], mu=mu)  # the scheduler's own shift
        t, sigma = scheduler.timesteps[:1], float(scheduler.sigmas[0])
        assert d.sigmas[pos] == pytest.approx(sigma, rel=1e-6)
        assert d.model_timesteps[pos] == pytest.approx(float(t[0]) / 1000, rel=1e-6) == d.sigmas[pos]
        eps = genfast.noise(d.seed, d.key, [int(d.sample_indices[pos])], clf.adapter.latent_shape)
        z_t = scheduler.scale_noise(z0, t, eps)
        for k in range(len(CLASSES)):
            with torch.no_grad():
                velocity = pipe.transformer(hidden_states=pack(z_t), timestep=t / 1000, guidance=guidance,
                                            pooled_projections=pooled[k : k + 1],
                                            encoder_hidden_states=embeds[k : k + 1], txt_ids=text_ids,
                                            img_ids=img_ids).sample
            eps_hat = pack(z_t) + (1 - sigma) * velocity  # z_t = (1 - sigma) z0 + sigma eps, velocity = eps - z0
            assert float(((eps_hat - pack(eps)) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)


def test_guidance_is_an_input_of_the_distilled_model_only(paths, images):
    def errors(variant, scale):
        clf = Classifier(paths[variant], CLASSES, method=Exhaustive(n_samples=3), **SMALL, guidance_scale=scale,
                         max_sequence_length=24)
        return clf.classify(images[0], return_details=True).details.errors

    assert not np.allclose(errors("dev", 1.0), errors("dev", 5.0), rtol=1e-3)
    np.testing.assert_array_equal(errors("schnell", 1.0), errors("schnell", 5.0))



def test_bfloat16_runs_close_to_float32(paths, images):
    def errors(dtype):
        clf = Classifier(paths["dev"], CLASSES, method=Exhaustive(n_samples=3), **SMALL, dtype=dtype,
                         max_sequence_length=24)
        assert clf.adapter.transformer.dtype == clf.adapter.pipeline.text_encoder.dtype == dtype
        return clf.classify(images[0], return_details=True).details.errors

    np.testing.assert_allclose(errors(torch.bfloat16), errors(torch.float32), rtol=2e-2)

@pytest.mark.parametrize("method", [Li2023(n_samples=(8, 16), to_keep=(2, 1)),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_decisions_do_not_depend_on_batch_size(paths, images, method):
    a, b = (Classifier(paths["dev"], CLASSES, method=method, batch_size=size, **SMALL,
                       max_sequence_length=24).classify(images) for size in (5, 64))
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


@pytest.mark.parametrize("method", [Exhaustive(n_samples=3), Li2023(n_samples=(4, 8), to_keep=(2, 1)),
                                    ClarkJaini2023(max_samples=20),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_every_method_runs(paths, images, method):
    pred = Classifier(paths["dev"], CLASSES, method=method, **SMALL, max_sequence_length=24).classify(images[1])
    assert pred.label in CLASSES and np.isfinite(pred.scores[pred.n_samples > 0]).all()
    assert pred.evaluations == pred.n_samples.sum() > 0


def test_missing_components_and_bad_options_are_named(paths, tmp_path):
    broken = shutil.copytree(paths["dev"], tmp_path / "broken")
    shutil.rmtree(broken / "text_encoder_2")
    with pytest.raises(ValueError, match="not a FluxPipeline folder \\(missing text_encoder_2\\)"):
        Classifier(broken, CLASSES, **SMALL)
    with pytest.raises(ValueError, match="resolution must be a positive multiple of 4 .* got 10"):
        Classifier(paths["dev"], CLASSES, device="cpu", resolution=10)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number, got 'high'"):
        Classifier(paths["dev"], CLASSES, **SMALL, guidance_scale="high")
    with pytest.raises(ValueError, match="max_sequence_length must be an integer in \\[1, 512\\], got 0"):
        Classifier(paths["dev"], CLASSES, **SMALL, max_sequence_length=0)
