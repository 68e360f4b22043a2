"""Janus: a tiny random JanusForConditionalGeneration folder loads through genfast.Classifier as an autoregressive
likelihood scorer, and every class's score equals the teacher-forced NLL computed here with the library's own
forward (language model on the processor's prompt tokens and the code embeddings, log-softmax of the generation
head's logits at the image-token positions)."""
import numpy as np
import pytest
import torch

from genfast import Classifier
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023
from genfast.models import load_model
from genfast.models.janus import JanusAdapter
from genfast.testing.janus import make_tiny_janus_model

CLASSES = ["cat", "dog", "airplane", "a very small bird"]
PROMPT = "a photo of a {}"


@pytest.fixture(scope="module")
def janus_path(tmp_path_factory):
    return make_tiny_janus_model(tmp_path_factory.mktemp("janus"))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (20, 16, 3), dtype=np.uint8) for _ in range(3)]


def plain_nll(path, pixels, prompt, chat_template):
    """Teacher-forced mean NLL per image token of each image's codes under each class prompt: [K, N]."""
    from transformers import JanusForConditionalGeneration, JanusProcessor

    model = JanusForConditionalGeneration.from_pretrained(path).eval()
    processor = JanusProcessor.from_pretrained(path)
    with torch.no_grad():
        codes = model.model.vqmodel.encode(pixels).image_tokens.reshape(pixels.shape[0], -1)
        out = np.zeros((len(CLASSES), pixels.shape[0]))
        for k, name in enumerate(CLASSES):
            text = prompt.format(name)
            if chat_template:
                text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": text}]}],
                                                     add_generation_prompt=True)
            ids = processor(text=text, generation_mode="image")["input_ids"]
            for i in range(pixels.shape[0]):
                embeds = torch.cat([model.get_input_embeddings()(ids),
                                    model.prepare_embeddings_for_image_generation(codes[i : i + 1, :-1])], dim=1)
                hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
                logits = model.model.generation_head(hidden[:, ids.shape[1] - 1 :])
                out[k, i] = -torch.log_softmax(logits, -1).gather(-1, codes[i : i + 1, :, None]).mean()
    return out, codes


@pytest.mark.parametrize("chat_template", [True, False])
def test_scores_equal_the_teacher_forced_likelihood(janus_path, images, chat_template):
    clf = Classifier(janus_path, CLASSES, prompt=PROMPT, method=Exhaustive(n_samples=3), device="cpu",
                     chat_template=chat_template)
    assert isinstance(clf.adapter, JanusAdapter)
    preds = clf.classify(images, return_details=True)
    expected, codes = plain_nll(janus_path, clf.adapter.prepare_images(images), PROMPT, chat_template)
    errors = np.stack([p.details.errors[:, 0] for p in preds], axis=1)
    assert np.ptp(expected, axis=0).min() > 1e-2  # the classes are told apart, far beyond the tolerance below
    np.testing.assert_allclose(errors, expected, rtol=1e-5)
    np.testing.assert_array_equal(np.stack([p.details.codes for p in preds]), codes.numpy())
    for p, column in zip(preds, expected.T):
        assert p.index == int(np.argmin(column))
        assert p.evaluations == len(CLASSES) and list(p.n_samples) == [1] * len(CLASSES)  # deterministic: once
        assert np.isnan(p.details.sigmas).all() and p.details.masks is None
    if chat_template:
        assert clf.adapter.options()["shared_prefix_tokens"] > 10  # "<s><|User|>: a photo of a" is run once


def test_shared_prefix_cache_is_exact(janus_path, images):
    on = Classifier(janus_path, CLASSES, device="cpu").classify(images)
    off_clf = Classifier(janus_path, CLASSES, device="cpu", share_prefix=False)
    off = off_clf.classify(images)
    assert off_clf.adapter.disabled_reasons["share_prefix"].startswith("turned off")
    np.testing.assert_allclose([p.scores for p in on], [p.scores for p in off], rtol=1e-5)


@pytest.mark.parametrize("method", [Exhaustive(n_samples=3), Li2023(), ClarkJaini2023(max_samples=40),
                                    GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_every_method_spends_one_evaluation_per_class(janus_path, images, method):
    preds = Classifier(janus_path, CLASSES, method=method, device="cpu").classify(images[:1])
    assert preds[0].evaluations == len(CLASSES)


def test_decisions_do_not_depend_on_batch_size(janus_path, images):
    a = Classifier(janus_path, CLASSES, batch_size=1, device="cpu").classify(images)
    b = Classifier(janus_path, CLASSES, batch_size=64, device="cpu").classify(images)
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


def test_bad_input_gets_a_one_line_error(janus_path, tmp_path):
    with pytest.raises(ValueError, match=r"^resolution must be a positive multiple of 4 \(the VQ tokenizer's "
                                         r"downsampling\), got 18$"):
        load_model(janus_path, device="cpu", resolution=18)
    with pytest.raises(ValueError, match=r"^class 'cat': its prompt takes \d+ tokens and the image 16, beyond the "
                                         r"model's context of 128 positions$"):
        Classifier(janus_path, ["cat", "dog"], prompt="a photo of a {} " + "x" * 120, device="cpu")
    (tmp_path / "config.json").write_text('{"model_type": "janus"}')
    with pytest.raises(ValueError, match="a Janus model folder needs its processor files too; missing "
                                         "tokenizer_config.json, processor_config.json$"):
        load_model(tmp_path)
