"""Colour manipulations: greyscale (`colour` cr/bw) and opponent colours (`false-colour`).

Opponent colours follow Geirhos et al. 2018: linearise the display values, convert RGB to cone (LMS)
activations and to the DKL opponent space around the mid-grey white point (Brainard 1996), invert the
L-M and S-(L+M) axes, keep the luminance axis, and convert back. The toolbox linearised with its lab
monitor's measured gamma table; we assume a 2.2 power-law display. The map is a reflection in linear light,
so applying it twice gives the input back wherever no value had to be clipped to [0, 1].
"""
from __future__ import annotations

import numpy as np

from ._image import like_input, luminance

# RGB primaries of the experiment's monitor -> cone (L, M, S) activations (Geirhos et al. 2018).
_RGB_TO_LMS = np.array([[0.1619982647, 0.208049264, 0.0389347448],
                        [0.0330275785, 0.2496504557, 0.0618343518],
                        [0.0015524055, 0.0198861001, 0.1890224274]])
# Cone contrasts -> DKL axes (luminance, L-M, S-(L+M)) after Brainard 1996.
_LMS_TO_DKL = np.array([[9.27590805, 9.27590805, 0.0],
                        [7.86421647, -9.33587662, 0.0],
                        [-3.39709047, -3.39709047, 12.16230246]])
_WHITE_POINT_RGB = 0.5  # mid grey, in linear light
DISPLAY_GAMMA = 2.2

# In linear RGB: lin' = white + _OPPONENT_FLIP @ (lin - white), with the two chromatic DKL axes negated.
_OPPONENT_FLIP = (np.linalg.inv(_RGB_TO_LMS) @ np.linalg.inv(_LMS_TO_DKL) @ np.diag([1.0, -1.0, -1.0])
                  @ _LMS_TO_DKL @ _RGB_TO_LMS)


def greyscale(image: np.ndarray, level: str) -> np.ndarray:
    """`cr` keeps the image, `bw` replaces it with its luminance (kept in the input's layout)."""
    if level == "cr":
        return image.copy()
    return like_input(luminance(image), image)


def opponent_colours(image: np.ndarray) -> np.ndarray:
    """Invert the two chromatic opponent axes (red-green and blue-yellow) of an RGB image, keeping luminance."""
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    linear = rgb ** DISPLAY_GAMMA
    flipped = _WHITE_POINT_RGB + (linear - _WHITE_POINT_RGB) @ _OPPONENT_FLIP.T
    out = np.clip(flipped, 0.0, 1.0) ** (1.0 / DISPLAY_GAMMA)
    return out if image.ndim == 3 else luminance(out)


def false_colour(image: np.ndarray, level: str) -> np.ndarray:
    """`true` keeps the colours, `false` shows the image in opponent colours (the toolbox's condition names)."""
    if level == "true":
        return image.copy()
    return opponent_colours(image)
