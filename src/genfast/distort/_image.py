"""Helpers shared by the distortions: input checks, luminance, output shape, length scaling and blur.

Images are float arrays in [0, 1], either HxW (greyscale) or HxWx3 (RGB). A distortion that produces a
greyscale result returns HxW for an HxW input and the grey stacked into three equal channels for an RGB
input, as the model-vs-human stimuli are stored.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# Rec. 709 luma weights, as skimage.color.rgb2gray (used by the toolbox's image_manipulation.py).
LUMA_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])
# Mean grey value of the toolbox's images: background of its filters and mean of high-pass images.
BACKGROUND_GREY = 0.4423
_RANGE_TOLERANCE = 1e-6


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return `image` as float64 after checking that it is an HxW or HxWx3 float array in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{name} must be a float array with values in [0, 1], got dtype {image.dtype} "
                        "(divide 8-bit images by 255)")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name} must have shape HxW or HxWx3, got {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ValueError(f"{name} values must lie in [0, 1], got [{low:.4g}, {high:.4g}]")
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def luminance(image: np.ndarray) -> np.ndarray:
    """Greyscale HxW version of an HxW or HxWx3 image (Rec. 709 weights; a grey image is returned as is)."""
    if image.ndim == 2:
        return image
    return image @ LUMA_WEIGHTS


def like_input(grey: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Give a greyscale result the layout of the input: HxW stays HxW, an RGB input gets three equal channels."""
    if image.ndim == 2:
        return grey
    return np.repeat(grey[:, :, None], 3, axis=2)


def length_scale(image: np.ndarray, reference_size: float | None) -> float:
    """Factor that converts lengths given in pixels of a `reference_size` image to pixels of `image`.

    The image size is its longer side. None means the lengths are already in pixels of `image` (factor 1).
    """
    if reference_size is None:
        return 1.0
    if not isinstance(reference_size, (int, float)) or not reference_size > 0 or math.isinf(reference_size):
        raise ValueError(f"reference_size must be a positive number of pixels, got {reference_size!r}")
    return max(image.shape[0], image.shape[1]) / float(reference_size)


def gaussian_blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of a greyscale image, padding with the toolbox's background grey (as it did)."""
    if sigma == 0:
        return grey.copy()
    return ndimage.gaussian_filter(grey, sigma, mode="constant", cval=BACKGROUND_GREY)
