"""Defining properties of the model-vs-human distortions (genfast.distort) on small images."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import genfast.distort as gd
from genfast.distort import eidolon, spectral

LUMA = np.array([0.2125, 0.7154, 0.0721])  # Rec. 709, as skimage.color.rgb2gray


def smooth_rgb(size: int = 32, seed: int = 0, low: float = 0.2, high: float = 0.8) -> np.ndarray:
    """A smooth random RGB image with values spread over [low, high]."""
    noise = np.random.default_rng(seed).standard_normal((size, size, 3))
    smooth = ndimage.gaussian_filter(noise, (2, 2, 0), mode="wrap")
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return low + (high - low) * smooth


def grey_noise(size: int = 64, seed: int = 0, spread: float = 0.15) -> np.ndarray:
    """White-noise greyscale image around the toolbox's mean grey 0.4423."""
    return 0.4423 + np.random.default_rng(seed).uniform(-spread, spread, (size, size))


def band_power(grey: np.ndarray, low: float, high: float) -> float:
    """Power of the non-constant part of `grey` at radial frequencies in [low, high) cycles per pixel."""
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(grey.shape[0]), np.fft.fftfreq(grey.shape[1]), indexing="ij"))
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    return float(power[(f >= low) & (f < high) & (f > 0)].sum())


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- registry -------------------------------------------------------------------------------------------

TOOLBOX_CONDITIONS = {  # modelvshuman/datasets/experiments.py and the raw-data file names
    "colour": ["cr", "bw"],
    "contrast": ["c100", "c50", "c30", "c15", "c10", "c05", "c03", "c01"],
    "high-pass": ["inf", "3", "1.5", "1", "0.7", "0.55", "0.45", "0.4"],
    "low-pass": ["0", "1", "3", "5", "7", "10", "15", "40"],
    "phase-scrambling": ["0", "30", "60", "90", "120", "150", "180"],
    "power-equalisation": ["0", "pow"],
    "false-colour": ["true", "false"],
    "rotation": ["0", "90", "180", "270"],
    "uniform-noise": ["0.00", "0.03", "0.05", "0.10", "0.20", "0.35", "0.60", "0.90"],
    "eidolonI": [f"{2 ** k}-10-10" for k in range(8)],
    "eidolonII": [f"{2 ** k}-3-10" for k in range(8)],
    "eidolonIII": [f"{2 ** k}-0-10" for k in range(8)],
}


def test_default_levels_give_the_toolbox_condition_strings():
    assert set(gd.DISTORTIONS) == set(TOOLBOX_CONDITIONS)
    for name, expected in TOOLBOX_CONDITIONS.items():
        d = gd.DISTORTIONS[name]
        assert [d.condition(d.check_level(level)) for level in d.levels] == expected, name
        assert d.description


@pytest.mark.parametrize("name, forms, value", [
    ("contrast", [0.3, "0.3", "c30"], 0.3),
    ("eidolonI", [8, "8", "8-10-10"], 8.0),
    ("eidolonII", [16, "16-3-10"], 16.0),
    ("false-colour", [False, "false", "False"], "false"),
    ("power-equalisation", [0, "0"], "0"),
    ("rotation", [90, "90", 90.0], 90),
])
def test_level_forms_parse_to_one_value(name, forms, value):
    for form in forms:
        assert gd.DISTORTIONS[name].check_level(form) == value


@pytest.mark.parametrize("name, level", [
    ("contrast", 1.5), ("contrast", "c150"), ("rotation", 45), ("colour", "blue"), ("low-pass", -1),
    ("high-pass", 0), ("phase-scrambling", 200), ("uniform-noise", "wide"), ("eidolonI", "8-3-10"),
    ("eidolonIII", -2), ("power-equalisation", "equalised"), ("contrast", float("nan")),
])
def test_invalid_level_is_a_value_error_naming_distortion_and_level(name, level):
    with pytest.raises(ValueError, match=f"{name}") as info:
        gd.apply(smooth_rgb(8), name, level, rng())
    assert repr(level) in str(info.value)


def test_unknown_distortion_is_named():
    with pytest.raises(ValueError, match="'blur'"):
        gd.apply(smooth_rgb(8), "blur", 1)


@pytest.mark.parametrize("image, error", [
    (np.zeros((8, 8), dtype=np.uint8), TypeError),
    (np.zeros((8, 8, 4)), ValueError),
    (np.full((8, 8), 1.5), ValueError),
    (np.full((8, 8), np.nan), ValueError),
    ([[0.5, 0.5], [0.5, 0.5]], TypeError),
])
def test_bad_images_are_rejected(image, error):
    with pytest.raises(error, match="image"):
        gd.apply(image, "contrast", 0.5)


def test_bad_options_are_rejected():
    with pytest.raises(TypeError, match="rng"):
        gd.apply(smooth_rgb(8), "uniform-noise", 0.1, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="reference_size"):
        gd.apply(smooth_rgb(8), "low-pass", 1, reference_size=0)
    with pytest.raises(ValueError, match="reference_spectrum"):
        gd.apply(smooth_rgb(8), "power-equalisation", "pow", reference_spectrum=np.ones((4, 4)))


# --- colour -----------------------------------------------------------------------------------------------

def test_greyscale_has_equal_channels_and_the_input_luminance():
    image = smooth_rgb()
    out = gd.apply(image, "colour", "bw")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(out[..., 0], image @ LUMA, atol=1e-12)
    np.testing.assert_array_equal(gd.apply(image, "colour", "cr"), image)


def test_opponent_colour_twice_is_the_identity_and_flips_red_green():
    image = smooth_rgb(low=0.35, high=0.65)  # in gamut after the flip: nothing is clipped
    once = gd.apply(image, "false-colour", "false")
    assert np.abs(once - image).max() > 0.05
    np.testing.assert_allclose(gd.apply(once, "false-colour", "false"), image, atol=1e-9)
    np.testing.assert_array_equal(gd.apply(image, "false-colour", "true"), image)
    reddish = np.broadcast_to([0.7, 0.5, 0.5], (2, 2, 3)).copy()
    flipped = gd.apply(reddish, "false-colour", "false")[0, 0]
    assert flipped[1] > flipped[0]  # red on mid grey turns green-ish (L-M axis)
    bluish = np.broadcast_to([0.5, 0.5, 0.7], (2, 2, 3)).copy()
    flipped = gd.apply(bluish, "false-colour", "false")[0, 0]
    assert flipped[2] < min(flipped[0], flipped[1])  # blue turns yellow-ish (S-(L+M) axis)
    grey = np.full((2, 2, 3), 0.6)
    np.testing.assert_allclose(gd.apply(grey, "false-colour", "false"), grey, atol=0.01)  # achromatic stays


# --- contrast and noise -----------------------------------------------------------------------------------

@pytest.mark.parametrize("c", [1.0, 0.5, 0.1, 0.01])
def test_contrast_scales_deviations_from_mid_grey(c):
    image = smooth_rgb()
    grey = image @ LUMA
    out = gd.apply(image, "contrast", c)[..., 0]
    np.testing.assert_allclose(out - 0.5, c * (grey - 0.5), atol=1e-12)
    assert math.isclose(out.std(), c * grey.std(), rel_tol=1e-9)
    assert abs(out.mean() - 0.5) <= c * abs(grey.mean() - 0.5) + 1e-12


def test_uniform_noise_zero_is_contrast_030_and_noise_stays_in_bounds():
    image = smooth_rgb(64)
    base = gd.apply(image, "contrast", 0.3)
    np.testing.assert_allclose(gd.apply(image, "uniform-noise", 0.0, rng()), base, atol=1e-12)
    for width in (0.1, 0.6):
        out = gd.apply(image, "uniform-noise", width, rng())
        assert out.min() >= 0.0 and out.max() <= 1.0
        diff = np.abs(out - base)
        assert diff.max() <= width + 1e-12
        assert diff.max() > 0.9 * width  # the noise really spans [-width, width]
    np.testing.assert_array_equal(gd.apply(image, "uniform-noise", 0.2, rng(3)),
                                  gd.apply(image, "uniform-noise", 0.2, rng(3)))
    assert not np.array_equal(gd.apply(image, "uniform-noise", 0.2, rng(3)),
                              gd.apply(image, "uniform-noise", 0.2, rng(4)))


# --- filters ----------------------------------------------------------------------------------------------

def test_low_pass_removes_power_above_the_cutoff():
    grey = grey_noise()
    out = gd.apply(grey, "low-pass", 3)
    # Gaussian transfer exp(-2 pi^2 sigma^2 f^2): < 1e-3 in power above 0.2 cycles/px, ~0.9 below 0.02
    assert band_power(out, 0.2, 1.0) < 1e-3 * band_power(grey, 0.2, 1.0)
    assert band_power(out, 0.0, 0.025) > 0.5 * band_power(grey, 0.0, 0.025)
    np.testing.assert_array_equal(gd.apply(grey, "low-pass", 0), grey)


def test_high_pass_removes_power_below_the_cutoff_at_mean_grey():
    grey = grey_noise()
    out = gd.apply(grey, "high-pass", 1)
    assert band_power(out, 0.0, 0.035) < 1e-2 * band_power(grey, 0.0, 0.035)
    assert band_power(out, 0.3, 1.0) > 0.5 * band_power(grey, 0.3, 1.0)
    assert math.isclose(out.mean(), 0.4423, abs_tol=1e-9)
    np.testing.assert_allclose(gd.apply(grey, "high-pass", math.inf), grey - grey.mean() + 0.4423, atol=1e-12)


def test_reference_size_scales_filter_sigmas_to_the_image():
    digit = np.random.default_rng(1).uniform(size=(8, 8))
    np.testing.assert_allclose(gd.apply(digit, "low-pass", 40, reference_size=224),
                               gd.apply(digit, "low-pass", 40 * 8 / 224), atol=1e-12)
    assert not np.allclose(gd.apply(digit, "low-pass", 40, reference_size=224), gd.apply(digit, "low-pass", 40))


# --- Fourier-domain distortions ---------------------------------------------------------------------------

def test_phase_noise_zero_is_the_identity():
    image = smooth_rgb()
    np.testing.assert_allclose(gd.apply(image, "phase-scrambling", 0, rng())[..., 0], image @ LUMA, atol=1e-12)


def test_phase_noise_keeps_the_amplitude_spectrum_and_bounds_the_phase_change():
    grey = 0.5 + 0.2 * (smooth_rgb(32) @ LUMA - 0.5)
    for width in (30.0, 180.0):
        out = gd.apply(grey, "phase-scrambling", width, rng())
        assert 0.0 < out.min() and out.max() < 1.0  # nothing clipped
        before, after = np.fft.fft2(grey), np.fft.fft2(out)
        np.testing.assert_allclose(np.abs(after), np.abs(before), atol=1e-9)
        shift = np.angle(after / before)
        assert np.abs(shift).max() <= np.deg2rad(width) + 1e-9
        assert np.abs(shift).max() > 0.8 * np.deg2rad(width)


def test_phase_noise_is_antisymmetric_over_conjugate_frequencies():
    for shape in [(8, 8), (7, 10)]:
        noise = spectral.phase_noise(shape, 90.0, rng())
        mirrored = noise[(-np.arange(shape[0])) % shape[0]][:, (-np.arange(shape[1])) % shape[1]]
        np.testing.assert_array_equal(noise, -mirrored)
        assert np.count_nonzero(noise) > 0.8 * noise.size


def test_power_equalisation_imposes_the_reference_amplitude_spectrum():
    grey = smooth_rgb(32) @ LUMA
    target = gd.one_over_f_amplitude(grey.shape, mean=0.5, std=0.05)
    out = gd.apply(grey, "power-equalisation", "pow", reference_spectrum=target)
    assert 0.0 < out.min() and out.max() < 1.0
    np.testing.assert_allclose(np.abs(np.fft.fft2(out)), target, atol=1e-9)
    own = gd.mean_amplitude_spectrum([grey])  # an image's own spectrum gives the image back
    np.testing.assert_allclose(gd.apply(grey, "power-equalisation", "pow", reference_spectrum=own), grey,
                               atol=1e-9)
    np.testing.assert_allclose(gd.apply(grey, "power-equalisation", "0"), grey, atol=1e-12)


def test_default_reference_is_one_over_f_with_the_documented_mean_and_contrast():
    amplitude = gd.one_over_f_amplitude((32, 32))
    n = amplitude.size
    assert math.isclose(amplitude[0, 0] / n, 0.4423)
    assert math.isclose(math.sqrt((amplitude ** 2).sum() - amplitude[0, 0] ** 2) / n, 0.2)
    assert math.isclose(amplitude[0, 1] / amplitude[0, 2], 2.0) and math.isclose(amplitude[1, 0], amplitude[0, 1])


# --- rotation ---------------------------------------------------------------------------------------------

def test_rotation_turns_counter_clockwise_and_full_turns_are_the_identity():
    grey = np.random.default_rng(0).uniform(size=(6, 9))
    np.testing.assert_array_equal(gd.apply(grey, "rotation", 360), grey)
    turned = grey
    for _ in range(4):
        turned = gd.apply(turned, "rotation", 90)
    np.testing.assert_array_equal(turned, grey)
    corner = np.zeros((3, 4))
    corner[0, -1] = 1.0  # top right ends up top left after a counter-clockwise quarter turn
    quarter = gd.apply(corner, "rotation", 90)
    assert quarter.shape == (4, 3) and quarter[0, 0] == 1.0
    assert gd.apply(smooth_rgb(8), "rotation", 180).shape == (8, 8, 3)


# --- Eidolon ----------------------------------------------------------------------------------------------

def test_eidolon_without_reach_is_close_to_the_image_and_departs_with_reach():
    image = smooth_rgb(32)
    grey = image @ LUMA
    errors = [np.abs(gd.apply(image, "eidolonI", reach, rng())[..., 0] - grey).mean() for reach in (0, 0.25, 4)]
    assert errors[0] < 0.01  # only the sigma = 1/sqrt(2) px blur of the finest scale remains
    assert errors[0] < errors[1] < errors[2]
    np.testing.assert_array_equal(gd.apply(image, "eidolonII", 2, rng(5)), gd.apply(image, "eidolonII", 2, rng(5)))


def _level_correlation(fields: np.ndarray) -> float:
    """Mean correlation between the displacement fields of adjacent scale levels."""
    corr = [np.corrcoef(fields[k, axis].ravel(), fields[k + 1, axis].ravel())[0, 1]
            for k in range(len(fields) - 1) for axis in range(2)]
    return float(np.mean(corr))


def test_eidolon_coherence_ties_the_displacements_of_scale_levels_together():
    shape = (64, 64)
    sigmas = eidolon.scale_levels(64)
    coherent = eidolon.displacement_fields(shape, sigmas, coherence=1.0, grain=2.0, rng=rng())
    incoherent = eidolon.displacement_fields(shape, sigmas, coherence=0.0, grain=2.0, rng=rng())
    assert _level_correlation(coherent) > 0.7
    assert abs(_level_correlation(incoherent)) < 0.2
    # the incoherent field's size sets the scale of `reach`: a / grain px per unit reach
    assert incoherent.std() == pytest.approx(eidolon.FIELD_AMPLITUDE / 2.0, rel=0.2)


def test_eidolon_fields_mix_incoherent_and_coherent_parts_linearly():
    # also checks that skipping the part a coherence of 0 or 1 gives no weight changes nothing else
    sigmas = eidolon.scale_levels(16)
    incoherent, coherent = (eidolon.displacement_fields((16, 16), sigmas, c, 3.0, rng(2)) for c in (0.0, 1.0))
    for c in (0.3, 0.7):
        mixed = eidolon.displacement_fields((16, 16), sigmas, c, 3.0, rng(2))
        np.testing.assert_allclose(mixed, (1 - c) * incoherent + c * coherent, rtol=1e-12, atol=1e-12)


def test_eidolon_function_checks_its_parameters():
    image = smooth_rgb(8)
    for kwargs, name in (({"reach": -1}, "reach"), ({"coherence": 2}, "coherence"), ({"grain": 0}, "grain")):
        args = {"reach": 1.0, "coherence": 0.5, "grain": 2.0, **kwargs}
        with pytest.raises(ValueError, match=name):
            gd.partially_coherent_disarray(image, rng=rng(), **args)


def test_eidolon_scale_levels_follow_the_factory():
    np.testing.assert_allclose(eidolon.scale_levels(256), 2 ** (np.arange(12) / 2) / math.sqrt(2))
    assert len(eidolon.scale_levels(8)) == 2 and len(eidolon.scale_levels(4)) == 1


# --- tiny greyscale images (8x8 digits) -------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TOOLBOX_CONDITIONS))
def test_every_distortion_works_on_tiny_greyscale_images(name):
    digit = np.zeros((8, 8))
    digit[2:6, 3:5] = 1.0
    for level in gd.DISTORTIONS[name].levels:
        out = gd.apply(digit, name, level, rng(), reference_size=224)
        assert out.shape == (8, 8) and out.dtype == np.float64, (name, level)
        assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0, (name, level)
