"""Rotation of the greyscale image by multiples of 90 degrees (Geirhos et al. 2018)."""
from __future__ import annotations

import numpy as np

from ._image import like_input, luminance


def rotation(image: np.ndarray, level: int) -> np.ndarray:
    """Greyscale image rotated counter-clockwise by `level` degrees, a multiple of 90 (HxW becomes WxH)."""
    return like_input(np.rot90(luminance(image), k=(level // 90) % 4).copy(), image)
