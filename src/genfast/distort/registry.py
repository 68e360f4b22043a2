"""The twelve parametric model-vs-human distortions by dataset name: default levels, how a level is checked
and written as the toolbox's condition string, and `apply`.

Levels are numbers in the toolbox's units (contrast as a fraction, filter standard deviations in pixels,
phase-noise widths and rotations in degrees, noise widths in grey values, Eidolon reach) or, for the
categorical distortions, the toolbox's condition names. Either form is accepted wherever a level is: a
number, its text, or the condition string (e.g. contrast 0.3, "0.3" or "c30"; eidolonI 8, "8" or
"8-10-10").
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from . import colour, contrast, eidolon, filters, rotation, spectral
from ._image import check_image, length_scale

Level = float | int | str


@dataclass(frozen=True)
class Options:
    """Settings that apply to every distortion call (see `apply`)."""

    rng: np.random.Generator
    reference_size: float | None = None
    reference_spectrum: np.ndarray | None = None


@dataclass(frozen=True)
class Distortion:
    """One model-vs-human distortion: default `levels`, a `description`, and its file-name fields."""

    name: str
    description: str
    levels: tuple[Level, ...]
    experiment_code: str  # field 1 of the toolbox's file names, e.g. "cop" for contrast
    name_field: str  # field 5 of the toolbox's file names (a constant per experiment)
    parse: Callable[[object], Level]  # checks a level (number, text or condition string), returns its value
    condition: Callable[[Level], str]  # the toolbox's condition string of a parsed level
    run: Callable[[np.ndarray, Level, Options], np.ndarray]
    random: bool = False  # draws from the generator (the result depends on the seed)

    def check_level(self, level: object) -> Level:
        """The parsed value of `level`, or a ValueError that names this distortion and the level."""
        try:
            return self.parse(level)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid level {level!r} for distortion {self.name!r}: {exc}") from None


def _number(level: object, prefix: str = "") -> float:
    if isinstance(level, bool):
        raise TypeError("expected a number, got a bool")
    if isinstance(level, str):
        text = level.strip()
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        return float(text)
    if isinstance(level, (int, float, np.integer, np.floating)):
        return float(level)
    raise TypeError(f"expected a number, got {type(level).__name__}")


def _in_range(value: float, low: float, high: float, *, open_low: bool = False,
              open_high: bool = False) -> float:
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if math.isnan(value) or not (above and below):
        raise ValueError(f"must lie in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}")
    return value


def _choice(*names: str) -> Callable[[object], str]:
    def parse(level: object) -> str:
        text = str(level).strip().lower()
        if text not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return text
    return parse


def _g(value: Level) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _parse_contrast(level: object) -> float:
    is_condition = isinstance(level, str) and level.strip().startswith("c")
    value = _number(level, prefix="c")
    return _in_range(value / 100.0 if is_condition else value, 0.0, 1.0)


def _contrast_condition(level: Level) -> str:
    percent = 100.0 * float(level)
    return f"c{round(percent):02d}" if abs(percent - round(percent)) < 1e-9 else f"c{percent:g}"


def _parse_rotation(level: object) -> int:
    value = _number(level)
    if value != round(value) or round(value) % 90:
        raise ValueError("must be a multiple of 90 degrees")
    return int(round(value))


def _sigma(level: Level, options: Options, image: np.ndarray) -> float:
    return float(level) * length_scale(image, options.reference_size)


def _eidolon(label: str, coherence: float, grain: float = 10.0) -> Distortion:
    def parse(level: object) -> float:
        if isinstance(level, str) and level.count("-") == 2:
            reach_text, *rest = level.strip().split("-")
            if rest != [f"{10 * coherence:g}", f"{grain:g}"]:
                raise ValueError(f"condition strings of {label} end in -{10 * coherence:g}-{grain:g} "
                                 "(reach-10*coherence-grain)")
            level = reach_text
        return _in_range(_number(level), 0.0, math.inf, open_high=True)

    return Distortion(
        name=label,
        description=(f"Eidolon partially coherent disarray, coherence {coherence:g}, grain {grain:g}; "
                     "level = reach (Koenderink et al. 2017); greyscale"),
        levels=(1, 2, 4, 8, 16, 32, 64, 128),
        experiment_code="eid", name_field="10",
        parse=parse,
        condition=lambda reach: f"{_g(reach)}-{10 * coherence:g}-{grain:g}",
        run=lambda image, reach, o: eidolon.partially_coherent_disarray(
            image, float(reach), coherence, grain, o.rng, o.reference_size),
        random=True,
    )


_ALL = (
    Distortion(
        name="colour", description="cr keeps the colour image, bw converts it to greyscale (luminance)",
        levels=("cr", "bw"), experiment_code="cl", name_field="40",
        parse=_choice("cr", "bw"), condition=str,
        run=lambda image, level, o: colour.greyscale(image, str(level))),
    Distortion(
        name="contrast", description="greyscale, contrast c: (1 - c)/2 + c * grey; level = c in [0, 1]",
        levels=(1.0, 0.5, 0.3, 0.15, 0.1, 0.05, 0.03, 0.01), experiment_code="cop", name_field="10",
        parse=_parse_contrast, condition=_contrast_condition,
        run=lambda image, level, o: contrast.contrast(image, float(level))),
    Distortion(
        name="high-pass", description=("greyscale minus its Gaussian low-pass, at mean 0.4423; level = "
                                       "filter standard deviation in px (inf: image minus its mean)"),
        levels=(math.inf, 3.0, 1.5, 1.0, 0.7, 0.55, 0.45, 0.4), experiment_code="hp", name_field="10",
        parse=lambda level: _in_range(_number(level), 0.0, math.inf, open_low=True), condition=_g,
        run=lambda image, level, o: filters.high_pass(image, _sigma(level, o, image))),
    Distortion(
        name="low-pass", description="greyscale Gaussian blur; level = standard deviation in px",
        levels=(0.0, 1.0, 3.0, 5.0, 7.0, 10.0, 15.0, 40.0), experiment_code="lp", name_field="10",
        parse=lambda level: _in_range(_number(level), 0.0, math.inf, open_high=True), condition=_g,
        run=lambda image, level, o: filters.low_pass(image, _sigma(level, o, image))),
    Distortion(
        name="phase-scrambling", description="greyscale, uniform phase noise in [-w, w]; level = w in degrees",
        levels=(0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0), experiment_code="ps", name_field="10",
        parse=lambda level: _in_range(_number(level), 0.0, 180.0), condition=_g,
        run=lambda image, level, o: spectral.phase_scrambling(image, float(level), o.rng), random=True),
    Distortion(
        name="power-equalisation", description=("greyscale; pow sets the amplitude spectrum to a reference "
                                                "(default 1/f), 0 keeps it"),
        levels=("0", "pow"), experiment_code="pow", name_field="35",
        parse=_choice("0", "pow"), condition=str,
        run=lambda image, level, o: spectral.power_equalisation(image, str(level), o.reference_spectrum)),
    Distortion(
        name="false-colour", description="true keeps the colours, false inverts the opponent colour axes",
        levels=("true", "false"), experiment_code="fc", name_field="35",
        parse=_choice("true", "false"), condition=str,
        run=lambda image, level, o: colour.false_colour(image, str(level))),
    Distortion(
        name="rotation", description="greyscale, rotated counter-clockwise; level = multiple of 90 degrees",
        levels=(0, 90, 180, 270), experiment_code="rot", name_field="20",
        parse=_parse_rotation, condition=lambda level: str(int(level)),
        run=lambda image, level, o: rotation.rotation(image, int(level))),
    Distortion(
        name="uniform-noise", description=("greyscale at contrast 0.3 plus uniform noise in [-w, w], "
                                           "clipped; level = w"),
        levels=(0.0, 0.03, 0.05, 0.1, 0.2, 0.35, 0.6, 0.9), experiment_code="nse", name_field="10",
        parse=lambda level: _in_range(_number(level), 0.0, 1.0), condition=lambda level: f"{level:.2f}",
        run=lambda image, level, o: contrast.uniform_noise(image, float(level), o.rng), random=True),
    _eidolon("eidolonI", coherence=1.0),
    _eidolon("eidolonII", coherence=0.3),
    _eidolon("eidolonIII", coherence=0.0),
)

DISTORTIONS: Mapping[str, Distortion] = MappingProxyType({d.name: d for d in _ALL})


def get(name: str) -> Distortion:
    """The distortion called `name`, or a ValueError that names it and lists the known ones."""
    try:
        return DISTORTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown distortion {name!r}; known: {', '.join(DISTORTIONS)}") from None


def apply(image: np.ndarray, name: str, level: Level, rng: np.random.Generator | None = None, *,
          reference_size: float | None = None, reference_spectrum: np.ndarray | None = None) -> np.ndarray:
    """Distort a float image in [0, 1] (HxW or HxWx3) with distortion `name` at `level`.

    Returns float64 in [0, 1] in the input's layout (greyscale results of RGB inputs as three equal
    channels; rotations by 90/270 degrees swap H and W). `rng` drives the random distortions
    (uniform-noise, phase-scrambling, eidolon*); None draws a fresh, unseeded generator. `reference_size`:
    lengths in the levels (filter standard deviations, Eidolon grain and reach) are in pixels of an image
    of that size (longer side; e.g. 224 for the model-vs-human levels) and are scaled to this image's
    size; None uses them as pixels of this image. `reference_spectrum`: the amplitude spectrum that
    power-equalisation imposes (np.fft.fft2 layout, the image's size; default a 1/f spectrum, see
    `genfast.distort.spectral`).
    """
    distortion = get(name)
    image = check_image(image)
    value = distortion.check_level(level)
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    length_scale(image, reference_size)  # validates reference_size for every distortion
    return distortion.run(image, value, Options(rng, reference_size, reference_spectrum))
