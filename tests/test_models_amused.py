"""aMUSEd: a tiny random AmusedPipeline folder loads through genfast.Classifier as a masked-token scorer, and every
recorded error equals the cross-entropy of the masked codes computed here with the pipeline's own VQ model,
text encoder (as AmusedPipeline.__call__ encodes a prompt) and transformer, on the masks genfast.token_masks
reproduces."""
import math

import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.models import load_model
from genfast.models.amused import AmusedAdapter
from genfast.testing.amused import make_tiny_amused_pipeline

CLASSES = ["cat", "dog", "airplane", "a very small bird"]
PROMPT = "a photo of a {}"
ELIMINATION = GenFast(weight_rate=7.0, round_size=4, min_samples=4, max_samples=16)  # prunes on these images


@pytest.fixture(scope="module")
def amused_path(tmp_path_factory):
    return make_tiny_amused_pipeline(tmp_path_factory.mktemp("amused"))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for _ in range(3)]


def test_errors_equal_the_pipelines_own_components(amused_path, images):
    from diffusers import AmusedPipeline

    clf = Classifier(amused_path, CLASSES, prompt=PROMPT, method=Exhaustive(n_samples=4), device="cpu")
    assert isinstance(clf.adapter, AmusedAdapter)
    pred = clf.classify(images[0], return_details=True)
    d = pred.details
    pipe = AmusedPipeline.from_pretrained(amused_path)
    n_tokens = 64
    with torch.no_grad():
        pixels = (clf.adapter.prepare_images([images[0]]) + 1) / 2  # the pipeline's image processor: [0, 1]
        codes = pipe.vqvae.quantize(pipe.vqvae.encode(pixels).latents)[2][2].reshape(1, n_tokens)
        ids = pipe.tokenizer([PROMPT.format(c) for c in CLASSES], return_tensors="pt", padding="max_length",
                             truncation=True, max_length=pipe.tokenizer.model_max_length).input_ids
        out = pipe.text_encoder(ids, return_dict=True, output_hidden_states=True)
        micro_conds = torch.tensor([[16, 16, 0, 0, 6]], dtype=torch.float32)  # width, height, crop, aesthetic
        np.testing.assert_array_equal(d.codes, codes[0].numpy())
        # the masking ratio of each level: the scheduler's cosine schedule at s = (level + 0.5) / 1000
        np.testing.assert_allclose(d.mask_ratios, np.cos(math.pi / 2 * (1 - (d.timesteps + 0.5) / 1000)))
        assert d.masks.shape == (4, n_tokens) and d.masks.dtype == bool
        assert d.masks.sum(axis=1).tolist() == [max(1, round(r * n_tokens)) for r in d.mask_ratios]
        np.testing.assert_array_equal(d.masks, genfast.token_masks(d.seed, d.key, d.sample_indices, n_tokens,
                                                                   d.mask_ratios).numpy())
        expected = np.zeros((len(CLASSES), 4))
        for j, mask in enumerate(torch.from_numpy(d.masks)):
            masked = torch.where(mask, pipe.scheduler.config.mask_token_id, codes).reshape(1, 8, 8)
            for k in range(len(CLASSES)):
                logits = pipe.transformer(masked, micro_conds=micro_conds, pooled_text_emb=out.text_embeds[k : k + 1],
                                          encoder_hidden_states=out.hidden_states[-2][k : k + 1])
                nll = -torch.log_softmax(logits.reshape(1, -1, n_tokens), dim=1).gather(1, codes[:, None])[0, 0]
                expected[k, j] = float(nll[mask].mean())
    assert np.ptp(expected, axis=0).min() > 1e-3  # classes are told apart, far beyond the tolerance below
    np.testing.assert_allclose(d.errors, expected, rtol=1e-5)


def test_masks_and_decisions_do_not_depend_on_batch_size(amused_path, images):
    a = Classifier(amused_path, CLASSES, method=ELIMINATION, batch_size=5, device="cpu").classify(
        images, return_details=True)
    b = Classifier(amused_path, CLASSES, method=ELIMINATION, batch_size=64, device="cpu").classify(
        images, return_details=True)
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.details.sample_indices, q.details.sample_indices)
        np.testing.assert_array_equal(p.details.masks, q.details.masks)
        np.testing.assert_allclose(p.details.errors, q.details.errors, rtol=1e-5)
    assert any(p.n_samples.min() < p.n_samples.max() for p in a)  # elimination pruned on the paired errors


@pytest.mark.parametrize("method", [Exhaustive(n_samples=3), Li2023(n_samples=(4, 8), to_keep=(2, 1)),
                                    ClarkJaini2023(min_samples=4, max_samples=12), ELIMINATION])
def test_every_method_runs(amused_path, images, method):
    pred = Classifier(amused_path, CLASSES, method=method, device="cpu").classify(images[0], return_details=True)
    assert pred.label in CLASSES and np.isfinite(pred.scores).all()
    assert pred.details.masks.shape == (len(pred.details.sample_indices), 64)


def test_bad_input_gets_a_one_line_error(amused_path, tmp_path):
    with pytest.raises(ValueError, match=r"^resolution must be a positive multiple of 4 \(the VQ tokenizer downsamples "
                                         r"by 2, and the transformer halves the code grid\), got 18$"):
        load_model(amused_path, device="cpu", resolution=18)
    with pytest.raises(ValueError, match=r"^class 'cat': the prompt takes \d+ tokens, more than the text "
                                         r"encoder's 77$"):
        Classifier(amused_path, ["cat", "dog"], prompt="a photo of a {}" + " x" * 80, device="cpu")
    (tmp_path / "model_index.json").write_text('{"_class_name": "AmusedPipeline"}')
    with pytest.raises(ValueError, match="not an aMUSEd pipeline folder \\(missing vqvae, tokenizer, text_encoder, "
                                         "transformer, scheduler\\)$"):
        load_model(tmp_path)
