"""Python face of the C++ scoring engine: typed plans and results, and input checks with clear messages.

    engine = Engine(method, n_classes=K, num_train_timesteps=T, seed=seed)
    ids = engine.add_images(keys)
    while not engine.done():
        plan = engine.plan(batch_size)
        engine.report(errors_of(plan))          # float32 [len(plan.class_index)], raw (unweighted) errors
        for result in engine.take_finished(): ...

Decisions about an image depend only on its own errors, never on the batch size, image order or grouping.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from genfast._native import native
from genfast.engine.methods import Method, get_method

_U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Plan:
    """One denoiser batch: S sample rows and B class rows (the rows of sample row s are
    class_index[sample_offsets[s]:sample_offsets[s+1]], ascending)."""

    image: np.ndarray  # int64 [S] engine image id
    key: np.ndarray  # uint64 [S] image key
    sample: np.ndarray  # int64 [S] sample index j (the noise counter)
    timestep: np.ndarray  # int64 [S] in [0, T)
    score_weight: np.ndarray  # float64 [S] v(t_j), for information: report raw errors
    sample_offsets: np.ndarray  # int64 [S + 1]
    class_index: np.ndarray  # int64 [B]

    @property
    def n_rows(self) -> int:
        """B, the number of class rows (errors to report)."""
        return len(self.class_index)


@dataclass(frozen=True)
class ImageResult:
    """A decided image. scores[k] = sum_j v_j e[k, j] / sum_j v_j over the samples class k received."""

    id: int
    key: int
    prediction: int  # the surviving class with the lowest score
    scores: np.ndarray  # float64 [K]
    n_samples: np.ndarray  # int64 [K] samples each class received
    evaluations: int  # class rows (denoiser evaluations) spent on this image
    sample_indices: np.ndarray  # int64 [n] sample index j of each column
    timesteps: np.ndarray  # int64 [n]
    weights: np.ndarray  # float64 [n] score weight v_j
    errors: np.ndarray  # float32 [K, n]; NaN where class k did not receive sample j


def _as_keys(keys) -> np.ndarray:
    """uint64 [N] from a numpy integer array or a sequence of Python ints (each in [0, 2**64))."""
    if isinstance(keys, np.ndarray):
        if keys.ndim != 1:
            raise ValueError(f"keys must be one-dimensional, got shape {keys.shape}")
        if keys.dtype == np.uint64:
            return keys
        if keys.dtype.kind not in "iu":
            raise TypeError(f"keys must be an integer array (uint64), got dtype {keys.dtype}")
        if keys.dtype.kind == "i" and (keys < 0).any():
            raise ValueError(f"keys must be non-negative, got {int(keys[keys < 0][0])}")
        return keys.astype(np.uint64)
    values = list(keys)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) <= _U64_MAX:
            raise ValueError(f"keys must be integers in [0, 2**64), got {v!r}")
    return np.array([int(v) for v in values], dtype=np.uint64)


class Engine:
    """Scoring engine over any number of images in flight, planning batches across them (continuous batching).

    `method` is a name or Method object (see genfast.engine.methods.get_method); `seed` selects the noise and
    timestep streams together with each image's key.
    """

    def __init__(self, method: str | Method, n_classes: int, num_train_timesteps: int, seed: int = 0) -> None:
        self.method = get_method(method)
        self._engine = native().Engine(self.method.to_config(n_classes, num_train_timesteps, seed))
        self.n_classes = int(n_classes)
        self.num_train_timesteps = int(num_train_timesteps)
        self.seed = int(seed)

    def add_images(self, keys) -> np.ndarray:
        """Queue images by 64-bit key; returns their engine ids (int64, consecutive, in the order given)."""
        return self._engine.add_images(_as_keys(keys))

    def plan(self, batch_size: int) -> Plan:
        """The next batch of at most batch_size class rows, filled from images in the order they were added.

        Two plans may be outstanding (reported oldest first): a caller may plan and launch the next batch before
        it reads the last one's errors, when can_plan() says a row can be issued before that report."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be an integer, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return Plan(**self._engine.plan(int(batch_size)))

    def can_plan(self) -> bool:
        """Whether plan() can be called now: fewer than two plans outstanding and a row that needs no report."""
        return self._engine.can_plan()

    def report(self, errors) -> None:
        """Hand back the raw error of every class row of the oldest outstanding plan (float [B], finite)."""
        arr = np.asarray(errors)
        if arr.ndim != 1:
            raise ValueError(f"errors must be one-dimensional (one per class row), got shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"errors must be real numbers, got dtype {arr.dtype}")
        self._engine.report(arr.astype(np.float32, copy=False))

    def take_finished(self) -> list[ImageResult]:
        """Results of the images decided since the last call, in the order they were decided."""
        out = []
        for r in self._engine.take_finished():
            r["sample_indices"] = np.arange(len(r["timesteps"]), dtype=np.int64)
            out.append(ImageResult(**r))
        return out

    def done(self) -> bool:
        """True when no image is in flight (every added image is decided)."""
        return self._engine.done()

    @property
    def n_in_flight(self) -> int:
        """Images added but not yet decided."""
        return self._engine.n_in_flight
