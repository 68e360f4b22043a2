"""DiT: a tiny random DiTPipeline saved to a folder loads through genfast.classify, and every recorded error
equals a plain loop with the pipeline's own scheduler (add_noise), transformer and label ids."""
import numpy as np
import pytest
import torch

import genfast
from genfast import Classifier
from genfast.engine import Exhaustive, GenFast, Li2023
from genfast.testing.dit import make_tiny_dit_pipeline

CLASSES = ["tabby cat", "golden retriever", "sports car", "airliner"]


@pytest.fixture(scope="module")
def dit_path(tmp_path_factory):
    return make_tiny_dit_pipeline(tmp_path_factory.mktemp("dit"))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]


def test_errors_equal_the_pipelines_own_components(dit_path, images):
    from diffusers import DDPMScheduler, DiTPipeline

    clf = Classifier(dit_path, CLASSES, method=Exhaustive(n_samples=3), device="cpu")
    assert clf.adapter.disabled_reasons["share_prefix"].startswith("the class label conditions")
    pred = clf.classify(images[0], return_details=True)
    d = pred.details
    pipe = DiTPipeline.from_pretrained(dit_path)
    z0 = pipe.vae.encode(clf.adapter.prepare_images([images[0]])).latent_dist.mean * pipe.vae.config.scaling_factor
    labels = pipe.get_label_ids(CLASSES)
    # the pipeline's schedule through DDPM's training-time add_noise (DPMSolver's own add_noise, before
    # set_timesteps, reads its sigma table in the reverse order of its timesteps)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for pos in range(len(d.sample_indices)):
        t = torch.tensor([int(d.timesteps[pos])])
        eps = genfast.noise(d.seed, d.key, [int(d.sample_indices[pos])], clf.adapter.latent_shape)
        z_t = scheduler.add_noise(z0, eps, t)
        for k, label in enumerate(labels):
            with torch.no_grad():
                out = pipe.transformer(z_t, timestep=t, class_labels=torch.tensor([label])).sample[:, :4]
            assert float(((out - eps) ** 2).mean()) == pytest.approx(float(d.errors[k, pos]), rel=1e-4)


@pytest.mark.parametrize("method", [Li2023(), GenFast(round_size=4, min_samples=4, max_samples=16)])
def test_decisions_do_not_depend_on_batch_size(dit_path, images, method):
    a = Classifier(dit_path, CLASSES, method=method, batch_size=5, device="cpu").classify(images)
    b = Classifier(dit_path, CLASSES, method=method, batch_size=64, device="cpu").classify(images)
    assert [p.index for p in a] == [p.index for p in b]
    np.testing.assert_allclose([p.scores for p in a], [p.scores for p in b], rtol=1e-5)


def test_unknown_class_is_named_with_near_labels(dit_path):
    with pytest.raises(ValueError, match="'tabbycat' is not one of this DiT model's 6 labels; did you mean 'tabby cat'"):
        Classifier(dit_path, ["tabbycat", "airliner"], device="cpu")
