"""genfast.classify / Classifier end to end on a tiny random Stable Diffusion pipeline loaded from a folder:
audits against the plain diffusers forward, invariance to batching, Li et al.'s loop, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genfast
from genfast.api import Classifier, classify
from genfast.engine import Exhaustive, GenFast, Li2023
from genfast.engine.loop import ModelOutputError
from genfast.testing import make_tiny_sd_pipeline

CLASSES = ["cat", "dog", "car", "boat"]
SMALL = GenFast(round_size=4, min_samples=4, max_samples=16, p_value=0.05)


@pytest.fixture(scope="module")
def sd_path(tmp_path_factory):
    return make_tiny_sd_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (24 + i, 30, 3), dtype=np.uint8) for i in range(5)]


@pytest.fixture(scope="module")
def clf(sd_path):
    return Classifier(sd_path, CLASSES, method=SMALL, batch_size=16)


def _text_embeddings(sd_path, classes=CLASSES):
    """The prompts encoded straight from the pipeline folder, independently of genfast's adapter."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(sd_path / "tokenizer")
    text = CLIPTextModel.from_pretrained(sd_path / "text_encoder")
    ids = tok([f"a bad photo of a {c}" for c in classes], padding="max_length",
              max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return text(ids)[0]


def _same(a, b):
    assert [p.index for p in a] == [p.index for p in b]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.n_samples, q.n_samples)
        np.testing.assert_allclose(p.scores, q.scores, rtol=1e-5)
        assert p.key == q.key


def test_prediction_fields(clf, images):
    preds = clf.classify(images, return_details=True)
    assert len(preds) == len(images)
    for p in preds:
        assert p.label == CLASSES[p.index] and p.classes == tuple(CLASSES)
        assert p.scores.shape == (4,) and p.n_samples.shape == (4,)
        survivors = p.n_samples == p.n_samples.max()
        assert p.index == int(np.argmin(np.where(survivors, p.scores, np.inf)))
        assert p.probabilities.sum() == pytest.approx(1.0) and p.probabilities.argmax() == p.index
        assert p.evaluations == int(p.n_samples.sum()) and p.seconds > 0
        d = p.details
        assert d.errors.shape == (4, len(d.timesteps)) and d.key == p.key
    single = clf.classify(images[0])
    assert isinstance(single, genfast.api.Prediction) and single.index == preds[0].index


def test_details_reproduce_every_error_with_public_noise(clf, sd_path, images):
    """Anyone can re-check a run: genfast.noise + the plain diffusers UNet give the recorded errors."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    pred = clf.classify(images[1], return_details=True)
    d = pred.details
    unet = UNet2DConditionModel.from_pretrained(sd_path / "unet")
    abar = DDPMScheduler.from_pretrained(sd_path / "scheduler").alphas_cumprod.to(torch.float64)
    z0 = clf.adapter.encode_images(clf.adapter.prepare_images([images[1]]))
    torch.testing.assert_close(torch.from_numpy(d.sigmas), (1 - abar[torch.from_numpy(d.timesteps)]).sqrt(), rtol=1e-5, atol=1e-6)
    assert d.model_timesteps.tolist() == d.timesteps.tolist() and d.latent_shape == tuple(clf.adapter.latent_shape)
    cond = _text_embeddings(sd_path)
    for pos in (0, len(d.timesteps) - 1):
        j, t = int(d.sample_indices[pos]), int(d.timesteps[pos])
        eps = genfast.noise(d.seed, d.key, [j], clf.adapter.latent_shape)
        z_t = (abar[t].sqrt() * z0 + (1 - abar[t]).sqrt() * eps).float()
        for k in range(len(CLASSES)):
            if np.isnan(d.errors[k, pos]):
                continue
            with torch.no_grad():
                out = unet(z_t, torch.tensor([t]), encoder_hidden_states=cond[k : k + 1]).sample
            x0_hat = (z_t - (1 - abar[t]).sqrt() * out) / abar[t].sqrt()  # genfast's default scores x0 errors
            assert float(((x0_hat - z0) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)


def test_decisions_do_not_depend_on_batching_order_or_grouping(sd_path, images, clf):
    reference = clf.classify(images)
    _same(reference, Classifier(sd_path, CLASSES, method=SMALL, batch_size=5).classify(images))
    _same(reference, Classifier(sd_path, CLASSES, method=SMALL, batch_size=64).classify(images))
    _same(reference[::-1], clf.classify(images[::-1]))
    _same(reference, clf.classify(images[:2]) + clf.classify(images[2:]))


def test_li2023_matches_their_loop(sd_path, images):
    """A direct re-implementation of Li et al.'s eval_prob_adaptive on the same noise and text embeddings."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    method = Li2023(n_samples=(4, 12), to_keep=(2, 1))
    clf = Classifier(sd_path, CLASSES, method=method, batch_size=7)
    preds = clf.classify(images[:2], return_details=True)

    unet = UNet2DConditionModel.from_pretrained(sd_path / "unet")
    text_embeds = _text_embeddings(sd_path)
    abar = DDPMScheduler.from_pretrained(sd_path / "scheduler").alphas_cumprod
    T = len(abar)
    for image, pred in zip(images[:2], preds):
        latent = clf.adapter.encode_images(clf.adapter.prepare_images([image]))
        all_noise = genfast.noise(0, pred.key, range(max(method.n_samples)), latent.shape[1:])
        # --- their loop (n_trials=1), written out ---
        data, t_evaluated, remaining = {}, set(), list(range(len(CLASSES)))
        t_to_eval = list(range(T // 12 // 2, T, T // 12))[:12]
        for n_samples, n_to_keep in zip(method.n_samples, method.to_keep):
            curr = t_to_eval[len(t_to_eval) // n_samples // 2 :: len(t_to_eval) // n_samples][:n_samples]
            curr = [t for t in curr if t not in t_evaluated]
            ts, noise_idxs, prompt_idxs = [], [], []
            for prompt_i in remaining:
                for t_idx, t in enumerate(curr, start=len(t_evaluated)):
                    ts.append(t), noise_idxs.append(t_idx), prompt_idxs.append(prompt_i)
            t_evaluated.update(curr)
            errors = []
            for lo in range(0, len(ts), 32):
                bt = torch.tensor(ts[lo : lo + 32])
                noise = all_noise[noise_idxs[lo : lo + 32]]
                a = abar[bt].view(-1, 1, 1, 1)
                noised = latent * a**0.5 + noise * (1 - a) ** 0.5
                with torch.no_grad():
                    out = unet(noised, bt, encoder_hidden_states=text_embeds[prompt_idxs[lo : lo + 32]]).sample
                errors.append(((noise - out) ** 2).mean(dim=(1, 2, 3)))
            errors = torch.cat(errors)
            for prompt_i in remaining:
                mask = torch.tensor(prompt_idxs) == prompt_i
                data.setdefault(prompt_i, []).extend(zip(np.array(noise_idxs)[mask.numpy()],
                                                         np.array(ts)[mask.numpy()], errors[mask].tolist()))
            means = [-np.mean([e for _, _, e in data[p]]) for p in remaining]
            best = torch.topk(torch.tensor(means), k=n_to_keep).indices.tolist()
            remaining = [remaining[i] for i in best]
        # --- compare ---
        assert pred.index == remaining[0]
        d = pred.details
        for k, samples in data.items():
            for j, t, err in samples:
                pos = int(np.flatnonzero(d.sample_indices == j)[0])
                assert d.timesteps[pos] == t
                assert float(d.errors[k, pos]) == pytest.approx(err, rel=1e-4)
        assert pred.evaluations == sum(len(v) for v in data.values())


def test_methods_by_name_run(sd_path, images):
    for method in ("exhaustive", "clark-jaini2023"):
        small = {"exhaustive": Exhaustive(n_samples=4),
                 "clark-jaini2023": genfast.engine.ClarkJaini2023(min_samples=3, max_samples=6)}[method]
        pred = classify(images[0], CLASSES, sd_path, method=small, batch_size=32)
        assert pred.label in CLASSES and pred.evaluations > 0


@pytest.mark.parametrize("classes, match", [
    ([], "at least two"), (["cat"], "at least two"), (["cat", "dog", "cat"], "duplicate"),
    (["cat", ""], r"classes\[1\]"), ("cat", "list of class names"),
])
def test_bad_classes(sd_path, classes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Classifier(sd_path, classes)


def test_bad_images_and_models(clf, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        clf.classify([bad])
    with pytest.raises(ValueError, match="not found"):
        Classifier(tmp_path / "missing", CLASSES)
    with pytest.raises(ValueError, match="keys"):
        clf.classify([np.zeros((8, 8, 3), np.uint8)] * 2, keys=[1])


def test_non_finite_model_output_names_the_image(sd_path, images, tmp_path):
    from PIL import Image

    path = tmp_path / "second.png"
    Image.fromarray(images[1]).save(path)
    clf = Classifier(sd_path, CLASSES, method=SMALL, batch_size=8)
    real = clf.adapter.denoise
    poisoned_key = clf.classify(path).key

    def denoise(z_t, t, offsets, class_index, image_index=None):
        out = real(z_t, t, offsets, class_index, image_index)
        return out + float("nan")

    clf.adapter.denoise = denoise
    with pytest.raises(ModelOutputError, match="second.png") as info:
        clf.classify([images[0], path][1:])
    assert info.value.image == 0 and poisoned_key


def test_temperature_is_the_models_own_unless_given(tmp_path):
    """A genfast model folder may carry the temperature fitted on its own tuning split; an explicit one wins, and
    a model without one gets DEFAULT_TEMPERATURE."""
    import json
    import shutil
    from importlib.resources import files

    from genfast.api import DEFAULT_TEMPERATURE

    folder = shutil.copytree(str(files("genfast") / "data" / "digits"), tmp_path / "digits")
    config = json.loads((folder / "genfast_model.json").read_text())
    (folder / "genfast_model.json").write_text(json.dumps({**config, "temperature": None}))
    assert Classifier(folder, ["0", "1", "7"], device="cpu").temperature == DEFAULT_TEMPERATURE
    (folder / "genfast_model.json").write_text(json.dumps({**config, "temperature": 0.25}))
    image = np.zeros((8, 8), dtype=np.float32)
    own, given = (Classifier(folder, ["0", "1", "7"], device="cpu", temperature=t) for t in (None, 0.01))
    assert (own.temperature, given.temperature) == (0.25, 0.01)
    p_own, p_given = own.classify(image).probabilities, given.classify(image).probabilities
    assert p_given.max() > p_own.max()  # the sharper temperature, on the same gaps
    (folder / "genfast_model.json").write_text(json.dumps({**config, "temperature": -1}))
    with pytest.raises(ValueError, match="genfast_model.json: temperature must be a positive number, got -1"):
        Classifier(folder, ["0", "1", "7"], device="cpu")
