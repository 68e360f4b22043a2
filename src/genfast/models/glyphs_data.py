"""The glyphs data of genfast's second bundled model: 62 characters rendered from the DejaVu fonts matplotlib ships.

Classes are ``A-Z``, ``a-z`` and ``0-9`` (the class name is the character). Each glyph is drawn with Pillow at 4x
the output size on a fixed baseline (so case and descenders keep their size and place), then given a random
stroke width (erosion/dilation), a random affine map (rotation, scale, shear, translation), box-downsampled and
given Gaussian pixel noise. White ink on black, like sklearn's digits. A render is a pure function of
``(font, class, seed)``: its parameters come from ``numpy.random.default_rng([seed, font index, class])``.

Splits: "train" uses the six upright faces (DejaVu Sans, Serif, Sans Mono; Book and Bold); "tune" and "test" use
only the six held-out slanted faces (Oblique / Italic / BoldOblique / BoldItalic), each with its own seeds, so
both are unseen in style and in seed, and disjoint from each other. Nothing is cached on disk.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import torch

CLASS_NAMES: list[str] = list(string.ascii_uppercase + string.ascii_lowercase + string.digits)
"""Class names of the glyphs model, in label order: ``A-Z``, ``a-z``, ``0-9``."""

IMAGE_SIZE = 16
SUPERSAMPLE = 4  # glyphs are drawn (and stroked) at 4x the output size
SAMPLING = 2  # points per output pixel and axis at which the warped glyph is sampled
FONT_SCALE = 0.75  # font size (em) as a fraction of the canvas: ink from descender to ascender fills ~3/4
BASELINE = 0.71  # baseline height from the top, as a fraction of the canvas: the em box sits centred

FONTS: tuple[str, ...] = (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSansMono", "DejaVuSansMono-Bold",
    "DejaVuSans-Oblique", "DejaVuSans-BoldOblique", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
    "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
)
"""The twelve DejaVu text faces in matplotlib's mpl-data/fonts/ttf (the Display faces have no Latin glyphs)."""

HELD_OUT_STYLE = ("Oblique", "Italic")
TRAIN_FONTS: tuple[str, ...] = tuple(f for f in FONTS if not any(s in f for s in HELD_OUT_STYLE))
HELD_OUT_FONTS: tuple[str, ...] = tuple(f for f in FONTS if any(s in f for s in HELD_OUT_STYLE))

# split: (faces, first seed, renders per (face, class)); seed ranges never overlap
SPLITS: dict[str, tuple[tuple[str, ...], int, int]] = {
    "train": (TRAIN_FONTS, 0, 60),
    "tune": (HELD_OUT_FONTS, 1_000_000, 2),
    "test": (HELD_OUT_FONTS, 2_000_000, 2),
}

# augmentation ranges (uniform), in output pixels / degrees; stroke in supersampled pixels per side
ROTATION_DEG = 6.0
SCALE = (0.9, 1.1)
SHEAR = 0.1
TRANSLATION_PX = 1.0
STROKES = (-1, 0, 1, 2)
NOISE_SIGMA = 0.06


def font_file(face: str) -> Path:
    """The TTF file of a DejaVu face, from matplotlib's own data folder (``matplotlib.get_data_path()``)."""
    import matplotlib

    if face not in FONTS:
        raise ValueError(f"unknown face {face!r}; the glyphs faces are {list(FONTS)}")
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{face}.ttf"
    if not path.is_file():
        raise ValueError(f"{path}: matplotlib's {face} font is missing from this installation")
    return path


@lru_cache(maxsize=1)
def _base_glyphs(size: int) -> torch.Tensor:
    """Every (stroke, face, class) glyph, drawn at ``SUPERSAMPLE * size`` px: float32 ``[S, F, K, H, W]`` in [0, 1].

    Kept in memory (49 MB at size 16) for the process, so that later renders only warp and sample them.
    """
    import torch
    import torch.nn.functional as F
    from PIL import Image, ImageDraw, ImageFont

    canvas = SUPERSAMPLE * size
    base = np.zeros((len(FONTS), len(CLASS_NAMES), canvas, canvas), dtype=np.float32)
    for f, face in enumerate(FONTS):
        font = ImageFont.truetype(str(font_file(face)), round(FONT_SCALE * canvas))
        for k, char in enumerate(CLASS_NAMES):
            x0, _, x1, _ = font.getbbox(char, anchor="ls")
            image = Image.new("L", (canvas, canvas))
            ImageDraw.Draw(image).text((canvas / 2 - (x0 + x1) / 2, BASELINE * canvas), char, font=font,
                                       fill=255, anchor="ls")
            base[f, k] = np.asarray(image, dtype=np.float32) / 255.0
    x = torch.from_numpy(base).flatten(0, 1).unsqueeze(1)
    variants = {0: x}
    for s in range(1, max(STROKES) + 1):  # dilation by s px per side: s max-filters of 3x3
        variants[s] = F.max_pool2d(variants[s - 1], 3, stride=1, padding=1)
    for s in range(-1, min(STROKES) - 1, -1):  # erosion
        variants[s] = -F.max_pool2d(-variants[s + 1], 3, stride=1, padding=1)
    return torch.stack([variants[s].view(base.shape) for s in STROKES])


def render(faces: ArrayLike, labels: ArrayLike, seeds: ArrayLike, *, size: int = IMAGE_SIZE,
           augment: bool = True) -> np.ndarray:
    """Render glyph i of ``CLASS_NAMES[labels[i]]`` in ``FONTS[faces[i]]`` with render seed ``seeds[i]``.

    Returns float32 ``[N, size, size]`` in [0, 1]. ``augment=False`` gives the clean, centred glyph (stroke 0,
    identity affine, no noise). ``size`` other than IMAGE_SIZE exists to measure what resolution letters need.
    """
    import torch
    import torch.nn.functional as F

    faces, labels, seeds = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (faces, labels, seeds))
    if not faces.size == labels.size == seeds.size:
        raise ValueError(f"faces, labels and seeds must have one entry per glyph, got {faces.size}, "
                         f"{labels.size}, {seeds.size}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(FONTS)):
        raise ValueError(f"face indices must be in [0, {len(FONTS)}), got {faces.min()}..{faces.max()}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise ValueError(f"labels must be in [0, {len(CLASS_NAMES)}), got {labels.min()}..{labels.max()}")
    if seeds.size and seeds.min() < 0:
        raise ValueError("render seeds must be non-negative")
    n = faces.size
    params = np.zeros((n, 7))  # rotation, scale, shear, tx, ty, stroke index, noise sigma
    params[:, 1] = 1.0
    params[:, 5] = STROKES.index(0)
    noise = np.zeros((n, size, size), dtype=np.float32)
    if augment:
        for i in range(n):
            rng = np.random.default_rng([int(seeds[i]), int(faces[i]), int(labels[i])])
            params[i] = rng.uniform([-ROTATION_DEG, SCALE[0], -SHEAR, -TRANSLATION_PX, -TRANSLATION_PX, 0, 0],
                                    [ROTATION_DEG, SCALE[1], SHEAR, TRANSLATION_PX, TRANSLATION_PX, len(STROKES),
                                     NOISE_SIGMA])
            noise[i] = rng.standard_normal((size, size), dtype=np.float32) * np.float32(params[i, 6])
    # forward map (centred normalised coordinates, y down): p_out = R(rot) . Shear(h) . s * p_in + t
    rot, scale, shear = np.deg2rad(params[:, 0]), params[:, 1], params[:, 2]
    c, s = np.cos(rot), np.sin(rot)
    forward = np.empty((n, 2, 2))
    forward[:, 0, 0], forward[:, 0, 1] = c * scale, (c * -shear - s) * scale
    forward[:, 1, 0], forward[:, 1, 1] = s * scale, (s * -shear + c) * scale
    inverse = np.linalg.inv(forward)
    shift = params[:, 3:5] * (2.0 / size)
    theta = np.concatenate([inverse, -(inverse @ shift[:, :, None])], axis=2)
    strokes = params[:, 5].astype(np.int64).clip(0, len(STROKES) - 1)
    glyphs = _base_glyphs(size)
    # sample the warped glyph at SAMPLING points per output pixel and axis, then box-average them
    points = (np.arange(SAMPLING * size) + 0.5) / (SAMPLING * size / 2) - 1.0
    out = np.empty((n, size, size), dtype=np.float32)
    for start in range(0, n, 2048):
        rows = slice(start, start + 2048)
        index = (torch.from_numpy(strokes[rows]), torch.from_numpy(faces[rows]), torch.from_numpy(labels[rows]))
        t = theta[rows, :, :, None, None]
        x_in = t[:, :, 0] * points[None, None, :] + t[:, :, 1] * points[None, :, None] + t[:, :, 2]
        grid = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_in, 1, -1), dtype=np.float32))
        warped = F.grid_sample(glyphs[index].unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        out[rows] = F.avg_pool2d(warped, SAMPLING)[:, 0].numpy()
    return np.clip(out + noise, 0.0, 1.0)


def split_renders(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(face indices, labels, seeds)`` of every render of a split, int64, in the split's order.

    Glyph i has class ``i % 62`` and face ``faces[(i // 62 + class) % 6]`` of the split's six faces, with seed
    ``first + i // 372``: every prefix of 62 m glyphs holds m renders of every class, faces rotating.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    split_faces, first_seed, renders = SPLITS[split]
    k, f = len(CLASS_NAMES), len(split_faces)
    i = np.arange(renders * f * k)
    labels = i % k
    faces = np.array([FONTS.index(face) for face in split_faces])[(i // k + labels) % f]
    seeds = first_seed + i // (k * f)
    return faces.astype(np.int64), labels.astype(np.int64), seeds.astype(np.int64)


def load_split(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` of one split: float32 ``[N, 16, 16]`` in [0, 1], int64 ``[N]``.

    "train": 22,320 renders (60 per upright face and class); "tune" and "test": 744 renders each (2 per slanted
    face and class, 12 per class), with disjoint seeds.
    """
    faces, labels, seeds = split_renders(split)
    return render(faces, labels, seeds), labels
