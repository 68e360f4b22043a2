"""genfast.explain and `genfast explain` on the bundled digits model (and tiny random models for the other prediction
types and a VAE): its errors are the classifier's own per-sample errors, its x̂0 is the schedule's estimate from the
denoiser's output, the figure shows what it says, and the command writes it or fails in one line."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch

import genfast
from genfast.engine.spaces import clean_estimate
from genfast.models.digits_data import CLASS_NAMES, load_split
from genfast.testing import cli_subprocess, make_tiny_embedding_unet, make_tiny_sd_pipeline


@pytest.fixture(scope="module")
def digits():
    images, labels = load_split("test")
    return images[:20], labels[:20]


@pytest.fixture(scope="module")
def clf():
    return genfast.Classifier("digits", CLASS_NAMES)


def pixels01(x: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] as [N, H, W, C] in [0, 1], as an Explanation holds images."""
    return ((x.double() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("method", ["exhaustive:n_samples=4", "genfast:antithetic=True"])
def test_errors_are_the_classifiers_errors_for_that_sample(digits, method):
    """Exhaustive: epsilon space on Li's grid; genfast: x0 space, random lattice, and an odd (negated) antithetic
    sample. Each explained level equals the column of classify's details with the same noise and timestep."""
    clf = genfast.Classifier("digits", CLASS_NAMES, method=method, seed=5)
    image = digits[0][3]
    pred = clf.classify(image, return_details=True)
    d = pred.details
    steps = clf.adapter.num_train_timesteps
    for j in (0, 3):  # every class received the first samples
        e = genfast.explain(clf, image, t=d.timesteps[j] / steps, sample=int(d.sample_indices[j]))
        assert e.key == pred.key and e.seed == 5 and e.error_space == clf.method.error_space
        assert e.timesteps.tolist() == [d.timesteps[j]]
        np.testing.assert_array_equal(e.sigmas, d.sigmas[j : j + 1])
        np.testing.assert_allclose(e.errors[0], d.errors[:, j], rtol=1e-5, atol=1e-7)


def denoised(adapter, z_t: torch.Tensor, index: int) -> torch.Tensor:
    """The denoiser's output for every class at one z_t, called as a user would call the adapter."""
    k = len(adapter.class_names)
    return adapter.denoise(z_t, torch.tensor([index]), torch.tensor([0, k]), torch.arange(k))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "flow"])
def test_reconstruction_is_the_schedules_estimate(digits, tmp_path, prediction_type):
    """x̂0 = (z_t - sigma eps_hat)/alpha (epsilon, the bundled model), alpha z_t - sigma v (v), z_t - sigma u (flow,
    alpha = 1 - sigma), from z_t built here from genfast.noise and the schedule."""
    model = "digits" if prediction_type == "epsilon" else make_tiny_embedding_unet(
        tmp_path / "tiny", 3, prediction_type=prediction_type)
    e = genfast.explain(model, digits[0][0], t=(0.3, 0.7), sample=2, seed=1)
    adapter = genfast.Classifier(model, e.classes).adapter
    z0 = adapter.prepare_images([digits[0][0]])
    eps = genfast.noise(1, e.key, [2], adapter.latent_shape).double()
    for level, index in enumerate(e.timesteps):
        alpha, sigma = adapter.schedule.alpha[index], adapter.schedule.sigma[index]
        z_t = (alpha * z0 + sigma * eps).float()
        out = denoised(adapter, z_t, int(index)).double()
        x0 = {"epsilon": (z_t - sigma * out) / alpha, "v_prediction": alpha * z_t - sigma * out,
              "flow": z_t - sigma * out}[prediction_type]
        np.testing.assert_allclose(e.noisy[level], pixels01(z_t)[0], atol=1e-6)
        np.testing.assert_allclose(e.reconstructions[level], pixels01(x0), atol=2e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample", "flow"])
def test_clean_estimate_of_each_prediction_type(prediction_type):
    generator = torch.Generator().manual_seed(0)
    pred, z_t = torch.randn(3, 2, 4, 4, generator=generator), torch.randn(3, 2, 4, 4, generator=generator)
    sigma = torch.tensor([0.1, 0.5, 0.95], dtype=torch.float64)
    alpha = 1 - sigma if prediction_type == "flow" else (1 - sigma**2).sqrt()
    a, s = alpha.view(-1, 1, 1, 1).float(), sigma.view(-1, 1, 1, 1).float()
    expected = {"epsilon": (z_t - s * pred) / a, "v_prediction": a * z_t - s * pred, "sample": pred,
                "flow": z_t - s * pred}[prediction_type]
    torch.testing.assert_close(clean_estimate(prediction_type, pred, z_t, alpha, sigma), expected)


def test_a_digits_own_class_reconstructs_it_best(clf, digits):
    """At t=0.3, averaged over four noise draws, the true class's x̂0 is closer to the image than most other classes'
    for every clean digit, and the closest for most (the bundled model is right on about 99% of clean held-out
    digits; with one draw a few digits have 4 or 5 of the 9 others closer)."""
    ranks = []
    for image, label in zip(*digits):
        distance = np.mean([((genfast.explain(clf, image, t=0.3, sample=j).reconstructions[0] - image[..., None]) ** 2)
                            .mean(axis=(1, 2, 3)) for j in range(4)], axis=0)
        ranks.append(int((distance < distance[label]).sum()))
    assert max(ranks) <= 4 and np.mean(np.array(ranks) == 0) >= 0.8, ranks


def test_a_latent_model_decodes_through_its_vae(tmp_path):
    """Tiny random Stable Diffusion: images at the model's pixel size, z_t decoded by the VAE as computed here."""
    path = make_tiny_sd_pipeline(tmp_path / "sd")
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    e = genfast.explain(path, image, ["cat", "dog"], t=(0.4,))
    adapter = genfast.Classifier(path, ["cat", "dog"]).adapter
    size = adapter.image_size
    assert e.image.shape == (size, size, 3) and e.reconstructions.shape == (1, 2, size, size, 3)
    z0 = adapter.encode_images(adapter.prepare_images([image]))
    index = int(e.timesteps[0])
    eps = genfast.noise(0, e.key, [0], adapter.latent_shape)
    z_t = adapter.schedule.alpha[index].float() * z0 + adapter.schedule.sigma[index].float() * eps
    with torch.no_grad():
        decoded = adapter.vae.decode(z_t / adapter.vae.config.scaling_factor).sample
    np.testing.assert_allclose(e.noisy[0], pixels01(decoded)[0], atol=1e-5)
    assert not np.allclose(e.reconstructions[0, 0], e.reconstructions[0, 1])  # each class its own x̂0


def test_figure_reads_back(clf, digits):
    e = genfast.explain(clf, digits[0][0], t=(0.3, 0.6))
    order = [e.classes[k] for k in e.ranking]
    assert e.winner == order[0] and np.all(np.diff(e.scores[e.ranking]) >= 0)
    figure = e.figure(rows=3)
    axes = np.array(figure.axes).reshape(3, 5)
    assert [ax.get_title() for ax in axes[0, :3]] == ["input", "$z_t$, t=0.3", "$z_t$, t=0.6"]
    for row, k in enumerate(e.ranking[:3]):
        assert axes[row, 3].get_ylabel().splitlines() == [order[row] + (" (winner)" if row == 0 else ""),
                                                          f"score {e.scores[k]:.3g}"]
        for level in range(2):
            ax = axes[row, 3 + level]
            assert ax.get_title().splitlines()[-1] == f"error {e.errors[level, k]:.3g}"
            np.testing.assert_array_equal(ax.images[0].get_array(), e.reconstructions[level, k, ..., 0])
        assert all(not ax.axison for ax in axes[row, :3]) == (row > 0)
    np.testing.assert_array_equal(axes[0, 0].images[0].get_array(), e.image[..., 0])
    assert axes[0, 3].get_title().splitlines()[0] == "$\\hat{x}_0$, t=0.3"
    assert len(e.figure().axes) == 10 * 5


@pytest.mark.parametrize("t", [0, 1, 1.5, -0.2, (), (0.3, float("nan")), "0.3", ("0.3",)])
def test_bad_noise_levels_are_refused_before_the_model_loads(t):
    with pytest.raises(ValueError, match="^t must"):
        genfast.explain("no-such-model", "no-such-image.png", t=t)


def test_a_classifier_keeps_its_own_settings(clf, digits):
    with pytest.raises(ValueError, match="classes, seed cannot be given with a Classifier"):
        genfast.explain(clf, digits[0][0], ["0", "1"], seed=3)


def test_command_writes_the_figure_and_the_errors(tmp_path, digits):
    from PIL import Image

    Image.fromarray((255 * digits[0][0]).round().astype("uint8")).save(tmp_path / "digit.png")
    command, env = cli_subprocess("explain", "digit.png", "--classes", "7,1,4", "--t", "0.3,0.6", "--rows", "2",
                                  "--out", "out")
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["digit_explain.json", "digit_explain.pdf",
                                                                    "digit_explain.png"]
    record = json.loads((tmp_path / "out" / "digit_explain.json").read_text())
    assert record["t"] == [0.3, 0.6] and record["timesteps"] == [300, 600] and set(record["classes"]) == {"7", "1", "4"}
    assert record["ranking"][0] == record["winner"] and len(record["classes"]["7"]["errors"]) == 2
    assert "wrote out/digit_explain.png" in done.stdout.splitlines()

    command, env = cli_subprocess("explain", "digit.png", "--t", "0.3,1.2", "--out", "bad")
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("genfast explain: error: argument --t: t must be noise levels strictly between 0 "
                                  "and 1 (fractions of the schedule), got 1.2"), done.stderr


def test_command_names_a_missing_image(tmp_path, capsys):
    from genfast.cli import main

    assert main(["explain", str(tmp_path / "missing.png"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"genfast explain: error: {tmp_path / 'missing.png'}: no such image file\n"
    assert not (tmp_path / "out").exists()
