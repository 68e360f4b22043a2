"""Eidolons by partially coherent disarray (Koenderink et al. 2017, "Eidolons: Novel stimuli for vision
research"), as used for the Eidolon I/II/III experiments of Geirhos et al. 2018.

The greyscale image is mirror-padded (to a power of two at least 1.5 times its size, as the Eidolon
factory does) and split into difference-of-Gaussian scale-space slices at standard deviations
sigma_k = 2^(k/2) / sqrt(2), k = 0..n-1, n = ceil(2 log2(S/4)) for an image of longer side S; the slices
sum to the image blurred by sigma_0 = 1/sqrt(2) px. Every slice is displaced by its own random
displacement field (bilinear resampling) and the slices are summed again. The field of slice k is

    d_k = reach * ((1 - coherence) * incoherent_k + coherence * coherent_k)

- incoherent_k: white noise blurred at `grain` px, independent for every slice, standard deviation
  a / grain px;
- coherent_k = sum_{j >= k} p_j, with p_j white noise blurred at sigma_j and standard deviation
  a / (S/4) px: coarse slices drag the finer ones along;
- a = 7.64 px^2 reproduces the factory's field amplitude (per-pixel white noise scaled to a maximum of
  127.5 on its 512x512 plane, i.e. standard deviation ~27.1, blurred by a unit-mass Gaussian:
  27.1 / (2 sqrt(pi))).

Coherence 1 is fully coherent and 0 fully incoherent disarray, as the parameter's name says. The
factory's public code instead returns coherence * incoherent + coherent; Geirhos et al. ran it with the
change of its pull request #1 ("Fixed bug in partial coherence"), whose diff we could not consult, so
the linear mix above is our reading of the fix. It agrees with their human data, where Eidolon III
(coherence 0) is the hardest.

Because a is fixed in px^2, the incoherent displacement is reach * a / grain px: with `reference_size`,
grain scales with the image and reach with the square of the scale, which makes the eidolon of a smaller
image approximately a scaled copy. The factory ran on pictures resized to 256 px, so
`reference_size=256` reproduces its scale on images of other sizes.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ._image import check_image, length_scale, like_input, luminance

MIN_SIGMA = 1.0 / math.sqrt(2.0)
SIGMA_FACTOR = math.sqrt(2.0)
FIELD_AMPLITUDE = 27.1 / (2.0 * math.sqrt(math.pi))


def scale_levels(size: int) -> np.ndarray:
    """Scale-space standard deviations (px) of the Eidolon factory for an image of longer side `size`."""
    max_sigma = size / 4.0
    count = math.ceil(2.0 * math.log2(max_sigma)) if max_sigma > 1 else 1
    return MIN_SIGMA * SIGMA_FACTOR ** np.arange(count)


def _power_of_two_ceiling(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


class _FatPlane:
    """The mirror-padded working plane: its Fourier grid, and where the image sits inside it."""

    def __init__(self, shape: tuple[int, int]):
        h, w = shape
        self.shape = (_power_of_two_ceiling(1.5 * h), _power_of_two_ceiling(1.5 * w))
        self.top, self.left = (self.shape[0] - h) // 2, (self.shape[1] - w) // 2
        self.crop = (slice(self.top, self.top + h), slice(self.left, self.left + w))
        fy = np.fft.fftfreq(self.shape[0])[:, None]
        fx = np.fft.rfftfreq(self.shape[1])[None, :]
        self._freq2 = fy ** 2 + fx ** 2
        # rfft2 bins that stand for two conjugate bins of the full spectrum (all but the first/Nyquist column)
        self._weight = np.full(self._freq2.shape, 2.0)
        self._weight[:, 0] = 1.0
        if self.shape[1] % 2 == 0:
            self._weight[:, -1] = 1.0

    def embed(self, grey: np.ndarray) -> np.ndarray:
        h, w = grey.shape
        pad = ((self.top, self.shape[0] - h - self.top), (self.left, self.shape[1] - w - self.left))
        return np.pad(grey, pad, mode="symmetric")

    def transfer(self, sigma: float) -> np.ndarray:
        """rfft2 transfer function of a unit-mass Gaussian of standard deviation `sigma` px (periodic)."""
        return np.exp(-2.0 * math.pi ** 2 * sigma ** 2 * self._freq2)

    def smooth_noise(self, sigma: float, count: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """`count` planes of white noise blurred at `sigma` px and scaled to unit expected variance, each
        cropped to the image's pixels: shape (*count, H, W)."""
        transfer = self.transfer(sigma)
        n = self.shape[0] * self.shape[1]
        expected_std = math.sqrt(float(np.sum(self._weight * transfer ** 2)) / n)  # Parseval
        noise = np.fft.rfft2(rng.standard_normal((*count, *self.shape)))
        field = np.fft.irfft2(noise * (transfer / expected_std), s=self.shape)
        return field[(..., *self.crop)]


def displacement_fields(shape: tuple[int, int], sigmas: np.ndarray, coherence: float, grain: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Per-slice displacement fields for unit reach, shape [len(sigmas), 2, H, W] (row, column), in px.

    The incoherent and coherent parts draw from two generators derived from `rng`, so the part that a
    coherence of exactly 0 or 1 gives no weight is not computed without changing the other.
    """
    plane = _FatPlane(shape)
    incoherent_rng, coherent_rng = (np.random.default_rng(s) for s in rng.integers(0, 2 ** 63, size=2))
    fields = np.zeros((len(sigmas), 2, *shape))
    if coherence < 1:
        incoherent = plane.smooth_noise(grain, (len(sigmas), 2), incoherent_rng)
        fields += ((1.0 - coherence) * FIELD_AMPLITUDE / grain) * incoherent
    if coherence > 0:
        planes = np.stack([plane.smooth_noise(sigma, (2,), coherent_rng) for sigma in sigmas])
        coherent = np.cumsum(planes[::-1], axis=0)[::-1]  # coherent[k] = sum_{j >= k} planes[j]
        fields += (coherence * FIELD_AMPLITUDE / (max(shape) / 4.0)) * coherent
    return fields


def partially_coherent_disarray(image: np.ndarray, reach: float, coherence: float, grain: float,
                                rng: np.random.Generator, reference_size: float | None = None) -> np.ndarray:
    """Eidolon of a float image in [0, 1] (HxW or HxWx3): greyscale, its scale-space slices displaced by
    `reach` times partially coherent random fields of `grain` px, summed and clipped to [0, 1]."""
    image = check_image(image)
    for name, value, ok, rule in (("reach", reach, 0 <= reach < math.inf, ">= 0"),
                                  ("coherence", coherence, 0 <= coherence <= 1, "in [0, 1]"),
                                  ("grain", grain, 0 < grain < math.inf, "> 0")):
        if not ok:
            raise ValueError(f"{name} must be finite and {rule}, got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    scale = length_scale(image, reference_size)
    reach, grain = reach * scale ** 2, grain * scale
    grey = luminance(image)
    h, w = grey.shape
    plane = _FatPlane(grey.shape)
    sigmas = scale_levels(max(h, w))
    spectrum = np.fft.rfft2(plane.embed(grey))
    blurred = [np.fft.irfft2(spectrum * plane.transfer(s), s=plane.shape) for s in sigmas]
    slices = [a - b for a, b in zip(blurred[:-1], blurred[1:])] + [blurred[-1]]
    fields = displacement_fields(grey.shape, sigmas, coherence, grain, rng) * reach
    rows, cols = np.mgrid[plane.top:plane.top + h, plane.left:plane.left + w].astype(np.float64)
    out = np.zeros((h, w))
    for layer, (d_row, d_col) in zip(slices, fields):
        out += ndimage.map_coordinates(layer, [rows + d_row, cols + d_col], order=1, mode="nearest")
    return like_input(np.clip(out, 0.0, 1.0), image)
