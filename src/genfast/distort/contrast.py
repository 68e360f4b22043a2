"""Contrast reduction and additive uniform noise (Geirhos et al. 2018), both on the greyscale image."""
from __future__ import annotations

import numpy as np

from ._image import like_input, luminance

# The uniform-noise experiment adds noise to greyscale images reduced to 30% contrast.
NOISE_BASE_CONTRAST = 0.3


def reduce_contrast(grey: np.ndarray, contrast: float) -> np.ndarray:
    """`(1 - c)/2 + c * grey`: scales deviations from mid grey 0.5 by `c`."""
    return (1.0 - contrast) / 2.0 + contrast * grey


def contrast(image: np.ndarray, level: float) -> np.ndarray:
    """Greyscale image at nominal contrast `level` in [0, 1] (1 keeps the grey image)."""
    return like_input(reduce_contrast(luminance(image), level), image)


def uniform_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Greyscale at 30% contrast plus uniform noise in [-level, level] per pixel, clipped to [0, 1]."""
    base = reduce_contrast(luminance(image), NOISE_BASE_CONTRAST)
    noisy = base + rng.uniform(-level, level, size=base.shape)
    return like_input(np.clip(noisy, 0.0, 1.0), image)
