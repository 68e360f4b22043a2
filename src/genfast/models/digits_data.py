"""The 8x8 handwritten digits that ship with scikit-learn, split once and for all into train and test.

Training the bundled digits model and every demo or test that classifies with it use this one split, so that
held-out accuracy means the same thing everywhere. No download: the data are part of scikit-learn.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES: list[str] = [str(d) for d in range(10)]
"""Class names of the digits model, in label order (label k is the digit k)."""

SPLITS: tuple[str, ...] = ("train", "test")
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_split(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one split: float32 ``[N, 8, 8]`` in [0, 1] (pixel / 16), int64 ``[N]``.

    The split is sklearn's ``train_test_split(test_size=0.2, stratify=labels, random_state=0)`` over all 1,797
    images: 1,437 train and 360 test images, every digit in the same proportion in both.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    if split == "train":
        return np.ascontiguousarray(train_x), np.ascontiguousarray(train_y)
    return np.ascontiguousarray(test_x), np.ascontiguousarray(test_y)
