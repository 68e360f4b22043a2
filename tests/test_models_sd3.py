"""SD3: tiny random StableDiffusion3Pipeline folders (with T5, without T5, SD3.5-style) load through
genfast.Classifier, and every recorded error equals a plain loop with the pipeline's own scheduler (scale_noise),
encode_prompt and transformer, the epsilon error computed here from the predicted velocity."""
import shutil

import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.testing.sd3 import make_tiny_sd3_pipeline

CLASSES = ["cat", "dog", "car", "bird"]
PROMPT = "a photo of a {}"
VARIANTS = {
    "sd3": ({}, {}),
    "sd3-no-t5": ({"with_t5": False}, {}),
    "sd3.5": ({"transformer_config": {"dual_attention_layers": (0,), "qk_norm": "rms_norm"}},
              {"clip_skip": 1, "max_sequence_length": 24}),
}
"""name -> (make_tiny_sd3_pipeline options, adapter options)."""


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return {name: make_tiny_sd3_pipeline(tmp_path_factory.mktemp(name), **build)
            for name, (build, _) in VARIANTS.items()}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_errors_equal_the_pipelines_own_components(paths, images, variant):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    options = VARIANTS[variant][1]
    clf = Classifier(paths[variant], CLASSES, prompt=PROMPT, method=Exhaustive(n_samples=3), device="cpu", **options)
    d = clf.classify(images[0], return_details=True).details
    with_t5 = variant != "sd3-no-t5"
    no_t5 = {} if with_t5 else {"text_encoder_3": None, "tokenizer_3": None}
    pipe = StableDiffusion3Pipeline.from_pretrained(paths[variant], low_cpu_mem_usage=False, **no_t5)
    assert clf.adapter.describe()["options"]["use_t5"] is with_t5
    assert clf.adapter.latent_shape == (4, 8, 8)
    assert d.timestep_rule.startswith("timestep = 1000 * sigma")
    vae = pipe.vae
    pixels = clf.adapter.prepare_images([images[0]])
    with torch.no_grad():
        z0 = (vae.encode(pixels).latent_dist.mean - vae.config.shift_factor) * vae.config.scaling_factor
        embeds, _, pooled, _ = pipe.encode_prompt([PROMPT.format(c) for c in CLASSES], None, None,
                                                  do_classifier_free_guidance=False,
                                                  clip_skip=options.get("clip_skip"),
                                                  max_sequence_length=options.get("max_sequence_length", 256))
    if not with_t5:
        assert not embeds[:, 77:].any()  # the pipeline's zeros in place of T5
    # the default batch counts each row's image and text tokens (the pipeline's own prompt length)
    assert clf.adapter.text_seq_len == embeds.shape[1] and clf.adapter.image_seq_len == (8 // 2) ** 2
    assert clf.batch_size == max(8, min(256, 2**15 // (16 + embeds.shape[1])))
    # the scheduler's training table, rising with the index: timestep index i has timestep timesteps[i]
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    timesteps = scheduler.timesteps.flip(0)
    for pos in range(len(d.sample_indices)):
        t = timesteps[int(d.timesteps[pos])].reshape(1)
        sigma = float(scheduler.sigmas[scheduler.index_for_timestep(t[0])])
        assert d.sigmas[pos] == pytest.approx(sigma, rel=1e-6)
        assert d.model_timesteps[pos] == pytest.approx(float(t[0]), rel=1e-6) == 1000 * d.sigmas[pos]
        eps = genfast.noise(d.seed, d.key, [int(d.sample_indices[pos])], clf.adapter.latent_shape)
        z_t = scheduler.scale_noise(z0, t, eps)
        for k in range(len(CLASSES)):
            with torch.no_grad():
                velocity = pipe.transformer(hidden_states=z_t, timestep=t, encoder_hidden_states=embeds[k : k + 1],
                                            pooled_projections=pooled[k : k + 1]).sample
            eps_hat = z_t + (1 - sigma) * velocity  # z_t = (1 - sigma) z0 + sigma eps, velocity = eps - z0
            assert float(((eps_hat - eps) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)



def test_bfloat16_runs_close_to_float32(paths, images):
    def errors(dtype):
        clf = Classifier(paths["sd3"], CLASSES, method=Exhaustive(n_samples=3), device="cpu", dtype=dtype,
                         max_sequence_length=24)
        assert clf.adapter.transformer.dtype == clf.adapter.pipeline.text_encoder.dtype == dtype
        return clf.classify(images[0], return_details=True).details.errors

    np.testing.assert_allclose(errors(torch.bfloat16), errors(torch.float32), rtol=2e-2)

@pytest.mark.parametrize("method", [Li2023(n_samples=(8, 16), to_keep=(2, 1)),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_decisions_do_not_depend_on_batch_size(paths, images, method):
    a, b = (Classifier(paths["sd3"], CLASSES, method=method, batch_size=size, device="cpu",
                       max_sequence_length=24).classify(images) for size in (5, 64))
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


@pytest.mark.parametrize("method", [Exhaustive(n_samples=3), Li2023(n_samples=(4, 8), to_keep=(2, 1)),
                                    ClarkJaini2023(max_samples=20),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_every_method_runs(paths, images, method):
    pred = Classifier(paths["sd3-no-t5"], CLASSES, method=method, device="cpu").classify(images[1])
    assert pred.label in CLASSES and np.isfinite(pred.scores[pred.n_samples > 0]).all()
    assert pred.evaluations == pred.n_samples.sum() > 0


def test_missing_components_and_bad_options_are_named(paths, tmp_path):
    broken = shutil.copytree(paths["sd3"], tmp_path / "broken")
    shutil.rmtree(broken / "transformer")
    with pytest.raises(ValueError, match="not a StableDiffusion3Pipeline folder \\(missing transformer\\)"):
        Classifier(broken, CLASSES, device="cpu")
    no_t5 = shutil.copytree(paths["sd3"], tmp_path / "no-t5")
    shutil.rmtree(no_t5 / "text_encoder_3")
    with pytest.raises(ValueError, match="text_encoder_3 is missing; pass use_t5=False"):
        Classifier(no_t5, CLASSES, device="cpu")
    assert Classifier(no_t5, CLASSES, device="cpu", use_t5=False).adapter.options()["use_t5"] is False
    with pytest.raises(ValueError, match="use_t5=True, but model_index.json has no T5"):
        Classifier(paths["sd3-no-t5"], CLASSES, device="cpu", use_t5=True)
    with pytest.raises(ValueError, match="resolution must be a positive multiple of 4 .* got 18"):
        Classifier(paths["sd3"], CLASSES, device="cpu", resolution=18)
    with pytest.raises(ValueError, match="resolution 40 gives 10x10 patches, more than this transformer's "
                                         "pos_embed_max_size 8 \\(at most 32\\)"):
        Classifier(paths["sd3"], CLASSES, device="cpu", resolution=40)
    with pytest.raises(ValueError, match="max_sequence_length must be an integer in \\[1, 512\\], got 600"):
        Classifier(paths["sd3"], CLASSES, device="cpu", max_sequence_length=600)
    with pytest.raises(ValueError, match="has no '\\{class\\}' or '\\{\\}' placeholder"):
        Classifier(paths["sd3"], CLASSES, prompt="a photo", device="cpu")
