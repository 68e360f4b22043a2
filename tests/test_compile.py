"""compile= (fixed-shape batches under torch.compile) against the eager loop: the same decisions and evaluations,
scores at float rounding; every batch the compiled denoiser sees has batch_size rows."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genfast import Classifier
from genfast.engine import GenFast
from genfast.engine.loop import score_images
from genfast.models.digits_data import load_split

DIGITS = [str(d) for d in range(10)]
METHOD = GenFast(round_size=2, min_samples=4, max_samples=12)


def run(clf: Classifier, denoise, images: np.ndarray, batch_size: int = 48):
    z0 = clf.adapter.encode_images(clf.adapter.prepare_images(list(images)))
    results = {}
    score_images(clf.adapter, clf.method, z0, np.arange(1, len(images) + 1, dtype=np.uint64), seed=0,
                 batch_size=batch_size, on_finished=lambda i, r, s: results.__setitem__(i, r), denoise=denoise)
    return [results[i] for i in range(len(images))]


def test_fixed_shapes_give_the_eager_decisions():
    clf = Classifier("digits", DIGITS, method=METHOD)
    images = load_split("test")[0][:5]
    shapes = []

    def recording(z_t, t, offsets, class_index, image_index):
        shapes.append((z_t.shape[0], class_index.shape[0], int(offsets[-1])))
        return clf.adapter.denoise(z_t, t, offsets, class_index, image_index)

    padded, plain = run(clf, recording, images), run(clf, None, images)
    assert len(shapes) > 3 and set(shapes) == {(48, 48, 48)}  # every batch padded to batch_size
    compiled = run(clf, torch.compile(clf.adapter.denoise, backend="aot_eager", dynamic=False), images)
    for a, b, c in zip(padded, plain, compiled):
        assert a.prediction == b.prediction == c.prediction and a.evaluations == b.evaluations == c.evaluations
        np.testing.assert_array_equal(a.n_samples, b.n_samples)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
        np.testing.assert_allclose(c.scores, b.scores, rtol=1e-5)


@pytest.mark.slow  # inductor generates and compiles C++ for the bundled UNet: about a minute on 2 cores
def test_inductor_gives_the_eager_decisions():
    images = list(load_split("test")[0][:4])
    eager = Classifier("digits", DIGITS, method=METHOD, batch_size=64).classify(images)
    compiled = Classifier("digits", DIGITS, method=METHOD, batch_size=64, compile="inductor").classify(images)
    assert [p.index for p in compiled] == [p.index for p in eager]
    assert [p.evaluations for p in compiled] == [p.evaluations for p in eager]
    np.testing.assert_allclose([p.scores for p in compiled], [p.scores for p in eager], rtol=1e-4)


def test_bad_compile_modes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="compile must be one of off, inductor, graphs, got 'jit'"):
        Classifier("digits", DIGITS, compile="jit")
    from genfast.testing.amused import make_tiny_amused_pipeline

    path = make_tiny_amused_pipeline(tmp_path / "amused")
    with pytest.raises(ValueError, match="compiles a denoiser; AmusedAdapter scores tokens itself"):
        Classifier(path, ["cat", "dog"], compile="inductor", device="cpu")
