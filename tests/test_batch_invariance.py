"""What the README and genfast.evaluate.run claim is invariant under batching, checked on the bundled model:
decisions, pruning (sample counts) and timesteps exactly; scores to about 1e-7 relative (not bit for bit)."""
from __future__ import annotations

import numpy as np

from genfast.api import Classifier
from genfast.models.digits_data import CLASS_NAMES, load_split


def test_decisions_exact_and_scores_within_rounding_across_batch_sizes():
    images = list(load_split("test")[0][:3])
    runs = [Classifier("digits", CLASS_NAMES, batch_size=b).classify(images, return_details=True) for b in (7, 256)]
    reordered = Classifier("digits", CLASS_NAMES, batch_size=64).classify(images[::-1], return_details=True)[::-1]
    reference = runs[1]
    for predictions in (runs[0], reordered):
        for p, q in zip(predictions, reference):
            assert p.index == q.index and np.array_equal(p.n_samples, q.n_samples)
            assert np.array_equal(p.details.timesteps, q.details.timesteps)
            np.testing.assert_allclose(p.scores, q.scores, rtol=1e-6)
