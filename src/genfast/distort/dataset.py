"""Write a folder of images, distorted at several levels, as a model-vs-human dataset.

Input: either one sub-folder per category (`<in>/<category>/<image>`) or a flat folder of images whose
category is given (`category=`) or else read from the file name: its leading run of letters
(`airplane1-bicycle2.png` -> airplane, `dog_12.png` -> dog). Images: PNG, JPEG, BMP, GIF, TIFF or WebP;
greyscale files load as HxW, everything else as RGB.

Output: every image at every level, as `<out>/<name>/dnn/session-1/NNNN_<exp>_dnn_<condition>_<category>_
<x>_<id>.png`, the toolbox's convention (split on `_`: field 3 condition, field 4 category; `<exp>` and
`<x>` are the toolbox's constants for the experiment, `<id>` the source file's stem). Trials are numbered
from 1 in the order category, file name, level. The random distortions draw from a generator seeded by
(seed, the image's path relative to the input folder, condition), so an image's output does not depend
on which other images or levels are in the run.
"""
from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from .registry import Distortion, Level, Options
from .spectral import mean_amplitude_spectrum

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GREY_8BIT_MODES = frozenset({"1", "L", "LA"})
_GREY_16BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})  # how PIL opens 16-bit greyscale PNG
_LEADING_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Source:
    """One input image: its path, its category and its path relative to the input folder (the seed key)."""

    path: Path
    category: str
    key: str


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _check_category(category: str, where: Path) -> str:
    if not category or "_" in category or "/" in category:
        raise ValueError(f"category {category!r} of {where} is not usable in model-vs-human file names "
                         "(it must be non-empty and contain no '_')")
    return category


def find_sources(root: Path, category: str | None = None) -> list[Source]:
    """The images under `root`, with categories from sub-folders, from `category`, or from file names."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {root} does not exist or is not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and _images_in(p))
    if folders:
        if category is not None:
            raise ValueError(f"{root} has one sub-folder per category; a category is only given for a flat "
                             "folder of images")
        sources = [Source(path, _check_category(folder.name, folder), f"{folder.name}/{path.name}")
                   for folder in folders for path in _images_in(folder)]
    else:
        sources = []
        for path in _images_in(root):
            if category is None:
                match = _LEADING_LETTERS.match(path.stem)
                if match is None:
                    raise ValueError(f"cannot read a category from the file name {path} (it does not start "
                                     "with letters); give the category, or use one sub-folder per category")
                name = match.group(0)
            else:
                name = category
            sources.append(Source(path, _check_category(name, path), path.name))
    if not sources:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {root} or its sub-folders")
    return sources


def load_image(path: Path) -> np.ndarray:
    """Float image in [0, 1]: HxW for greyscale files, HxWx3 otherwise; a ValueError names unreadable files."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in _GREY_16BIT_MODES:
                return np.clip(np.asarray(image, dtype=np.float64) / 65535.0, 0.0, 1.0)
            if image.mode in _GREY_8BIT_MODES:
                return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
            return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None


def save_image(path: Path, image: np.ndarray) -> None:
    """Save a float image in [0, 1] as an 8-bit PNG (greyscale for HxW, RGB for HxWx3)."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(path)  # uint8 HxW -> mode L, HxWx3 -> RGB


def file_name(trial: int, digits: int, distortion: Distortion, condition: str, category: str,
              image_id: str) -> str:
    """The toolbox's file name of one trial, e.g. `0001_cop_dnn_c30_knife_10_n03041632_7380.png`."""
    return (f"{trial:0{digits}d}_{distortion.experiment_code}_dnn_{condition}_{category}_"
            f"{distortion.name_field}_{image_id}.png")


def image_rng(seed: int, source: Source, condition: str) -> np.random.Generator:
    """The generator of one (image, condition): independent of run order, batch and other images."""
    entropy = [seed, zlib.crc32(source.key.encode()), zlib.crc32(condition.encode())]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def dataset_folder(out_root: Path, distortion: Distortion) -> Path:
    """Where a distortion's images go: `<out>/<name>/dnn/session-1`."""
    return Path(out_root) / distortion.name / "dnn" / "session-1"


def _prepare_folder(folder: Path, distortion: Distortion, overwrite: bool) -> None:
    pattern = re.compile(rf"^\d+_{re.escape(distortion.experiment_code)}_dnn_.*\.png$")
    existing = [p for p in folder.glob("*.png") if pattern.match(p.name)] if folder.is_dir() else []
    if existing and not overwrite:
        raise ValueError(f"{folder} already holds {len(existing)} {distortion.name} images; "
                         "choose another output folder or overwrite them (--overwrite)")
    for path in existing:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _input_spectrum(sources: Sequence[Source], skip_bad: bool) -> np.ndarray:
    images: list[tuple[Path, np.ndarray]] = []
    for source in sources:
        try:
            images.append((source.path, load_image(source.path)))
        except ValueError:
            if not skip_bad:
                raise
    if not images:
        raise ValueError("none of the input images could be read: no spectrum to average")
    first_path, first = images[0]
    for path, image in images:
        if image.shape[:2] != first.shape[:2]:
            raise ValueError(f"{path} has size {image.shape[:2]}, {first_path} {first.shape[:2]}: the mean "
                             "spectrum of the input needs images of one size")
    return mean_amplitude_spectrum([image for _, image in images])


def write_dataset(sources: Sequence[Source], distortion: Distortion, levels: Sequence[Level], out_root: Path,
                  *, seed: int = 0, reference_size: float | None = None, spectrum_from_input: bool = False,
                  skip_bad: bool = False, overwrite: bool = False, log: TextIO | None = None) -> list[Path]:
    """Distort every source at every (parsed) level and save it under the toolbox's name; returns the files.

    `spectrum_from_input`: power-equalisation imposes the mean amplitude spectrum of the input images
    (the toolbox's reference) instead of the 1/f default. `skip_bad`: report unreadable images to `log`
    (default stderr) and go on, instead of stopping with an error that names the file.
    """
    folder = dataset_folder(out_root, distortion)
    conditions = [distortion.condition(level) for level in levels]
    repeated = sorted({c for c in conditions if conditions.count(c) > 1})
    if repeated:
        raise ValueError(f"level(s) {', '.join(repeated)} of {distortion.name} given more than once")
    spectrum = _input_spectrum(sources, skip_bad) if spectrum_from_input else None
    _prepare_folder(folder, distortion, overwrite)
    digits = max(4, len(str(len(sources) * len(levels))))
    written: list[Path] = []
    for source in sources:
        try:
            image = load_image(source.path)
        except ValueError as exc:
            if not skip_bad:
                raise
            print(f"skipped: {exc}", file=log or sys.stderr)
            continue
        for level, condition in zip(levels, conditions):
            options = Options(image_rng(seed, source, condition), reference_size, spectrum)
            out = distortion.run(image, level, options)
            name = file_name(len(written) + 1, digits, distortion, condition, source.category, source.path.stem)
            save_image(folder / name, out)
            written.append(folder / name)
    return written
