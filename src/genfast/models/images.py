"""Image preprocessing shared by all adapters: load, colour-convert, resize the short side, centre-crop, scale.

Conventions: numpy arrays are ``HW`` or ``HWC``; torch tensors are ``HW`` or ``CHW``; C is 1 (grey), 2 (grey +
alpha), 3 (RGB) or 4 (RGBA). uint8 data are in 0..255, uint16 in 0..65535, floating point in [0, 1]. Alpha is
composited over white. 8-bit images are resized by PIL in 8 bits (bicubic, as torchvision's ``Resize`` on a PIL
image does, which is what Li et al. use); 16-bit and float images are resized per channel in float32 and clipped.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from genfast.models.base import ImageInput

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as PIL's "L" conversion
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_EIGHT_BIT_MODES = {"1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV"}


def prepare_images(images: Sequence[ImageInput], size: int, channels: int) -> torch.Tensor:
    """Turn images into float32 ``[N, channels, size, size]`` in [-1, 1] (channels 1: greyscale, 3: RGB)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray, torch.Tensor)):
        raise TypeError("images must be a sequence of images; wrap a single image in a list")
    out = torch.empty(len(images), channels, size, size, dtype=torch.float32)
    for i, image in enumerate(images):
        label = f"image {i}" + (f" ({os.fspath(image)})" if isinstance(image, (str, os.PathLike)) else "")
        out[i] = torch.from_numpy(_prepare_one(image, size, channels, label))
    return out.mul_(2.0).sub_(1.0)


def _prepare_one(image: ImageInput, size: int, channels: int, label: str) -> np.ndarray:
    """One image to float32 ``[channels, size, size]`` in [0, 1]."""
    if isinstance(image, (str, os.PathLike)):
        image = _open(image, label)
    if isinstance(image, Image.Image):
        pixels: Image.Image | np.ndarray = _from_pil(image, label)
    elif isinstance(image, np.ndarray):
        pixels = _from_array(image, label, channels_last=True)
    elif isinstance(image, torch.Tensor):
        pixels = _from_array(image.detach().cpu().numpy(), label, channels_last=False)
    else:
        raise TypeError(
            f"{label}: expected a PIL image, numpy array, torch tensor or path, got {type(image).__name__}"
        )
    if isinstance(pixels, Image.Image):
        converted = _convert_pil(pixels, channels)
        resized = _resize_crop(converted, size)
        array = np.asarray(resized, dtype=np.float32) / 255.0
        array = array[:, :, None] if array.ndim == 2 else array
    else:
        array = _resize_crop_float(_convert_float(pixels, channels), size)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _open(path: str | os.PathLike[str], label: str) -> Image.Image:
    try:
        with Image.open(path) as handle:
            handle.load()
            return handle.copy()
    except FileNotFoundError as exc:
        raise ValueError(f"{label}: file not found") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{label}: cannot read the image ({exc})") from exc


def _from_pil(image: Image.Image, label: str) -> Image.Image | np.ndarray:
    """8-bit PIL images stay PIL images; 16-bit and float modes become float32 HWC arrays in [0, 1]."""
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{label}: the image is empty ({image.width}x{image.height})")
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode in _EIGHT_BIT_MODES or image.mode in _ALPHA_MODES:
        return image
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.float32)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(f"{label}: integer image mode {image.mode} holds values outside 0..65535")
        return _from_array(values / 65535.0, label, channels_last=True)
    if image.mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32), label, channels_last=True)
    raise ValueError(f"{label}: unsupported PIL image mode {image.mode!r}")


def _from_array(array: np.ndarray, label: str, channels_last: bool) -> Image.Image | np.ndarray:
    """A numpy array (HW/HWC) or tensor data (HW/CHW) to an 8-bit PIL image or a float32 HWC array in [0, 1]."""
    layout = "HWC" if channels_last else "CHW"
    if array.ndim not in (2, 3):
        raise ValueError(f"{label}: expected HW or {layout} dimensions, got shape {tuple(array.shape)}")
    if array.ndim == 2:
        array = array[:, :, None]
    elif not channels_last:
        array = array.transpose(1, 2, 0)
    height, width, depth = array.shape
    if depth not in (1, 2, 3, 4):
        raise ValueError(
            f"{label}: expected 1, 2, 3 or 4 channels in {layout} layout, got shape {tuple(array.shape)}"
            + ("" if channels_last else " (torch tensors are CHW)")
        )
    if height == 0 or width == 0:
        raise ValueError(f"{label}: the image is empty (shape {tuple(array.shape)})")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array[:, :, 0] if depth == 1 else array))
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{label}: unsupported dtype {array.dtype} (use uint8, uint16 or floating point in [0, 1])")
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{label}: the image contains NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(f"{label}: floating-point images must be in [0, 1], got values in [{low:.4g}, {high:.4g}]")
    return np.clip(values, 0.0, 1.0)


def _convert_pil(image: Image.Image, channels: int) -> Image.Image:
    """Composite alpha over white, then convert to "RGB" (3 channels) or "L" (1 channel)."""
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert("RGB" if channels == 3 else "L")


def _convert_float(array: np.ndarray, channels: int) -> np.ndarray:
    """Float HWC in [0, 1]: composite alpha over white, then greyscale <-> RGB as needed."""
    depth = array.shape[2]
    if depth in (2, 4):
        alpha = array[:, :, -1:]
        array = array[:, :, :-1] * alpha + (1.0 - alpha)
    if channels == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 1 and array.shape[2] == 3:
        return (array @ _LUMA)[:, :, None]
    return array


def _resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Scale the short side to ``size`` (long side truncated, as torchvision's Resize(int))."""
    if width <= height:
        return size, max(1, int(size * height / width))
    return max(1, int(size * width / height)), size


def _crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The centred ``size`` x ``size`` box, rounded as torchvision's CenterCrop."""
    left, top = int(round((width - size) / 2.0)), int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def _resize_crop(image: Image.Image, size: int) -> Image.Image:
    new_size = _resized_size(image.width, image.height, size)
    if new_size != image.size:
        image = image.resize(new_size, Image.BICUBIC)
    return image.crop(_crop_box(image.width, image.height, size)) if image.size != (size, size) else image


def _resize_crop_float(array: np.ndarray, size: int) -> np.ndarray:
    planes = [
        np.asarray(_resize_crop(Image.fromarray(np.ascontiguousarray(array[:, :, c])), size))
        for c in range(array.shape[2])
    ]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0)
