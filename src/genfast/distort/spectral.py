"""Fourier-domain manipulations of the greyscale image: phase scrambling and power equalisation.

Spectra here are in numpy's `np.fft.fft2` layout (zero frequency at [0, 0], not shifted to the centre).
Phase scrambling adds independent uniform phase noise in [-w, w] degrees to every frequency, opposite
noise to its conjugate partner so the image stays real, and leaves the self-conjugate frequencies (the
mean and the Nyquist terms) alone; the amplitude spectrum is untouched. Power equalisation keeps the
phases and replaces the amplitudes by a reference amplitude spectrum. Geirhos et al. 2018 used the mean
amplitude spectrum of their image set; the default reference here is a 1/f amplitude spectrum (the
average spectrum of natural images) with mean 0.4423 and RMS contrast 0.2, and `mean_amplitude_spectrum`
computes the toolbox's reference from a set of images. Results are clipped to [0, 1].
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._image import BACKGROUND_GREY, check_image, like_input, luminance

# RMS contrast (pixel standard deviation) of the default 1/f reference: typical of greyscale photographs.
ONE_OVER_F_STD = 0.2


def _conjugate_sign_and_source(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each frequency: +1/-1 for the first/second member of a conjugate pair (0 if self-conjugate),
    and the flat index of the pair's first member, which owns the pair's random draw."""
    h, w = shape
    index = np.arange(h * w).reshape(h, w)
    partner = ((-np.arange(h)) % h)[:, None] * w + ((-np.arange(w)) % w)[None, :]
    return np.sign(partner - index), np.minimum(index, partner)


def phase_noise(shape: tuple[int, int], width: float, rng: np.random.Generator) -> np.ndarray:
    """Antisymmetric phase offsets in radians, uniform in [-width, width] degrees, for an fft2 spectrum."""
    sign, source = _conjugate_sign_and_source(shape)
    draws = rng.uniform(-width, width, size=shape[0] * shape[1])
    return np.deg2rad(sign * draws[source])


def scramble_phases(grey: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    """Greyscale image with phase noise of width `width` degrees, before clipping."""
    spectrum = np.fft.fft2(grey) * np.exp(1j * phase_noise(grey.shape, width, rng))
    return np.fft.ifft2(spectrum).real


def phase_scrambling(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Greyscale image with uniform phase noise in [-level, level] degrees, clipped to [0, 1]."""
    scrambled = scramble_phases(luminance(image), level, rng)
    return like_input(np.clip(scrambled, 0.0, 1.0), image)


def one_over_f_amplitude(shape: tuple[int, int], mean: float = BACKGROUND_GREY,
                         std: float = ONE_OVER_F_STD) -> np.ndarray:
    """1/f amplitude spectrum (fft2 layout) of an image with the given pixel mean and standard deviation."""
    h, w = shape
    freq = np.hypot(np.fft.fftfreq(h)[:, None] * h, np.fft.fftfreq(w)[None, :] * w)  # cycles per image
    amplitude = np.zeros(shape)
    nonzero = freq > 0
    amplitude[nonzero] = 1.0 / freq[nonzero]
    n = h * w
    if nonzero.any():  # Parseval: variance = sum_{k != 0} |F_k|^2 / n^2
        amplitude *= std * n / np.sqrt(np.sum(amplitude ** 2))
    amplitude[0, 0] = mean * n
    return amplitude


def mean_amplitude_spectrum(images: Iterable[np.ndarray]) -> np.ndarray:
    """Mean amplitude spectrum (fft2 layout) of the greyscale versions of equally sized images."""
    total, count = None, 0
    for i, image in enumerate(images):
        grey = luminance(check_image(image, f"images[{i}]"))
        if total is not None and grey.shape != total.shape:
            raise ValueError(f"images[{i}] has size {grey.shape}, the first image {total.shape}: a mean "
                             "amplitude spectrum needs images of one size")
        amplitude = np.abs(np.fft.fft2(grey))
        total = amplitude if total is None else total + amplitude
        count += 1
    if total is None:
        raise ValueError("images is empty: no spectrum to average")
    return total / count


def equalise_amplitude(grey: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
    """Greyscale image with its amplitude spectrum replaced by `amplitude`, phases kept, before clipping."""
    return np.fft.ifft2(amplitude * np.exp(1j * np.angle(np.fft.fft2(grey)))).real


def power_equalisation(image: np.ndarray, level: str,
                       reference_spectrum: np.ndarray | None = None) -> np.ndarray:
    """`0` keeps the greyscale image; `pow` gives it the reference amplitude spectrum (default: 1/f)."""
    grey = luminance(image)
    if level == "0":
        return like_input(grey, image)
    if reference_spectrum is None:
        reference_spectrum = one_over_f_amplitude(grey.shape)
    reference_spectrum = np.asarray(reference_spectrum, dtype=np.float64)
    if reference_spectrum.shape != grey.shape:
        raise ValueError(f"reference_spectrum has shape {reference_spectrum.shape}, the image {grey.shape}: "
                         "they must match (fft2 layout, one value per pixel)")
    if not np.all(np.isfinite(reference_spectrum)) or reference_spectrum.min() < 0:
        raise ValueError("reference_spectrum must hold finite, non-negative amplitudes")
    return like_input(np.clip(equalise_amplitude(grey, reference_spectrum), 0.0, 1.0), image)
