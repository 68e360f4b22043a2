"""Gaussian low-pass and high-pass filtering of the greyscale image (Geirhos et al. 2018).

Both pad the image with the toolbox's mean grey (0.4423) outside its border. High-pass is the image minus
its low-pass, shifted to mean 0.4423; a standard deviation of infinity keeps every non-constant frequency
(the image minus its mean). Results are clipped to [0, 1].
"""
from __future__ import annotations

import math

import numpy as np

from ._image import BACKGROUND_GREY, gaussian_blur, like_input, luminance


def low_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    """Greyscale image blurred by a Gaussian of standard deviation `sigma` pixels (0 keeps it)."""
    return like_input(np.clip(gaussian_blur(luminance(image), sigma), 0.0, 1.0), image)


def high_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    """Greyscale image minus its Gaussian low-pass of standard deviation `sigma`, at mean grey 0.4423."""
    grey = luminance(image)
    detail = grey - grey.mean() if math.isinf(sigma) else grey - gaussian_blur(grey, sigma)
    shifted = detail + (BACKGROUND_GREY - detail.mean())
    return like_input(np.clip(shifted, 0.0, 1.0), image)
