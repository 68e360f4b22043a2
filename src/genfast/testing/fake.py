"""A deterministic stand-in for genfast.api.Classifier, for testing the evaluation run without a model (a test
double: it lives in genfast.testing, not in the product).

It follows the Classifier's `classify` interface; its predictions depend only on the image file's bytes, the
seed and the classes, so two runs give identical outputs. It reports images in reverse input order (as a
continuous-batching classifier may), can sleep `delay` seconds per image and raise after `fail_after` images
(on the torchrun rank `fail_rank` only, when that is given). The command line accepts it as
`--model fake[:delay=SECONDS,fail_after=N,fail_rank=R]` only when GENFAST_TESTING=1.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SPEC_PREFIX = "fake"
TESTING_ENV = "GENFAST_TESTING"


@dataclass(frozen=True)
class FakePrediction:
    """The fields of genfast.api.Prediction that the evaluation run reads."""

    label: str
    index: int
    scores: np.ndarray
    n_samples: np.ndarray
    probabilities: np.ndarray
    evaluations: int
    key: int
    seconds: float


class SimulatedCrash(RuntimeError):
    """Raised by FakeClassifier after `fail_after` images."""


class FakeClassifier:
    """Deterministic fake classifier: see the module docstring."""

    def __init__(self, classes: Sequence[str], *, seed: int = 0, delay: float = 0.0,
                 fail_after: int | None = None, fail_rank: int | None = None) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        self.classes = tuple(classes)
        self.seed = int(seed)
        self.delay = float(delay)
        # under torchrun, only the rank `fail_rank` (the RANK variable) fails, when it is given
        self.fail_after = fail_after if fail_rank is None or int(os.environ.get("RANK", 0)) == fail_rank else None
        self.delivered = 0
        self.calls: list[int] = []  # number of images in each classify call

    def _predict(self, image: str | os.PathLike, key: int | None) -> FakePrediction:
        if key is None:
            key = int.from_bytes(hashlib.blake2b(Path(image).read_bytes(), digest_size=8).digest(), "little")
        rng = np.random.default_rng([self.seed, key])
        scores = rng.normal(1.0, 0.1, len(self.classes))
        n_samples = rng.integers(5, 50, len(self.classes)).astype(np.int64)
        index = int(np.argmin(scores))
        logits = -(scores - scores[index]) / 0.01
        probabilities = np.exp(logits) / np.exp(logits).sum()
        evaluations = int(n_samples.sum())
        return FakePrediction(self.classes[index], index, scores, n_samples, probabilities, evaluations, key,
                              evaluations * 1e-3)

    def classify(self, images: Sequence[str | os.PathLike], *, keys: Sequence[int] | None = None,
                 return_details: bool = False, progress: bool = False,
                 on_result: Callable[[int, FakePrediction], None] | None = None,
                 distributed: bool | None = None) -> list[FakePrediction]:
        """Predictions for image paths, in input order; on_result sees them last image first (the fake never
        splits a call across ranks, whatever `distributed` says)."""
        images = list(images)
        self.calls.append(len(images))
        results: list[FakePrediction | None] = [None] * len(images)
        for i in reversed(range(len(images))):
            if self.fail_after is not None and self.delivered >= self.fail_after:
                raise SimulatedCrash(f"fake classifier: simulated crash after {self.delivered} images")
            time.sleep(self.delay)
            results[i] = self._predict(images[i], None if keys is None else int(keys[i]))
            self.delivered += 1
            if on_result is not None:
                on_result(i, results[i])
        return results  # type: ignore[return-value]


def is_fake_spec(model: str) -> bool:
    """Whether a --model value names the fake classifier."""
    return model == SPEC_PREFIX or model.startswith(SPEC_PREFIX + ":")


def fake_from_spec(model: str, classes: Sequence[str], *, seed: int = 0) -> FakeClassifier:
    """The FakeClassifier for `fake[:delay=S,fail_after=N,fail_rank=R]`; refused unless GENFAST_TESTING=1."""
    if os.environ.get(TESTING_ENV) != "1":
        raise ValueError(f"model {model!r} is the test-only fake classifier; set {TESTING_ENV}=1 to use it")
    options: dict[str, float | int] = {}
    _, _, text = model.partition(":")
    for part in filter(None, text.split(",")):
        name, sep, value = part.partition("=")
        try:
            if not sep or name not in ("delay", "fail_after", "fail_rank"):
                raise ValueError
            options[name] = float(value) if name == "delay" else int(value)
        except ValueError:
            raise ValueError(f"model {model!r}: bad fake option {part!r} (expected delay=SECONDS, fail_after=N "
                             f"or fail_rank=R)") from None
    return FakeClassifier(classes, seed=seed, **options)  # type: ignore[arg-type]
