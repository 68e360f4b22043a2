"""Image preprocessing: colour modes, bit depths, odd sizes, layouts, and clear errors for bad images."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from genfast.models.images import prepare_images


def reference_rgb(image: Image.Image, size: int) -> np.ndarray:
    """Li et al.'s torchvision pipeline, spelled out with PIL: Resize(size, BICUBIC), CenterCrop, [-1, 1]."""
    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    resized = image.convert("RGB").resize(new, Image.BICUBIC)
    left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
    cropped = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return cropped.transpose(2, 0, 1) * 2 - 1


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(40, 60), (60, 40), (32, 32), (3, 5)])
def test_rgb_matches_torchvision_recipe(shape):
    image = Image.fromarray(random_rgb(*shape))
    out = prepare_images([image], 16, 3)
    assert out.shape == (1, 3, 16, 16) and out.dtype == torch.float32
    np.testing.assert_allclose(out[0].numpy(), reference_rgb(image, 16), atol=1e-6)


def test_numpy_tensor_and_pil_inputs_agree():
    array = random_rgb(20, 30, seed=1)
    as_float = array.astype(np.float32) / 255.0
    as_tensor = torch.from_numpy(as_float).permute(2, 0, 1)  # tensors are CHW
    out = prepare_images([Image.fromarray(array), array, as_float, as_tensor], 12, 3)
    torch.testing.assert_close(out[1], out[0])
    # float inputs are resized in float32: equal to the 8-bit path up to its rounding
    assert (out[2] - out[0]).abs().max() < 2.5 / 255 * 2
    torch.testing.assert_close(out[3], out[2])
    assert out.min() >= -1 and out.max() <= 1


def test_greyscale_to_rgb_and_rgb_to_greyscale():
    grey = np.random.default_rng(2).integers(0, 256, (10, 10), dtype=np.uint8)
    rgb = prepare_images([grey], 10, 3)[0]
    torch.testing.assert_close(rgb[0], rgb[1])
    torch.testing.assert_close(rgb[0], torch.from_numpy(grey.astype(np.float32) / 127.5 - 1))
    colour = random_rgb(10, 10, seed=3)
    luma = np.asarray(Image.fromarray(colour).convert("L"), dtype=np.float32) / 127.5 - 1
    one = prepare_images([colour], 10, 1)
    assert one.shape == (1, 1, 10, 10)
    np.testing.assert_allclose(one[0, 0].numpy(), luma, atol=1e-6)


def test_rgba_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red channel under a transparent left half and an opaque right half
    rgba[:, 2:, 3] = 255
    for image in (Image.fromarray(rgba), rgba, rgba.astype(np.float32) / 255):
        out = (prepare_images([image], 4, 3)[0] + 1) / 2
        torch.testing.assert_close(out[:, :, :2], torch.ones(3, 4, 2))
        torch.testing.assert_close(out[:, :, 2:], torch.tensor([200 / 255, 0, 0]).view(3, 1, 1).expand(3, 4, 2))


def test_sixteen_bit_images(tmp_path):
    values = np.linspace(0, 65535, 64, dtype=np.float64).reshape(8, 8).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    expected = torch.from_numpy(values.astype(np.float32) / 65535 * 2 - 1)
    for image in (path, values, torch.from_numpy(values.astype(np.int32)).to(torch.uint16)[None]):
        out = prepare_images([image], 8, 1)
        torch.testing.assert_close(out[0, 0], expected, atol=1e-5, rtol=0)


def test_huge_non_square_image_is_fast_and_centre_cropped(tmp_path):
    array = np.zeros((2000, 3000, 3), dtype=np.uint8)
    array[:, 1000:2000] = 255  # the centre third is white: the middle half of the 2000x2000 centre crop
    path = tmp_path / "huge.png"
    Image.fromarray(array).save(path)
    start = time.perf_counter()
    out = prepare_images([path], 64, 3)
    assert time.perf_counter() - start < 5.0
    assert out[0, :, :, 20:44].min() > 0.95  # white columns 16..48, away from the resampled edges
    assert out[0, :, :, :12].max() < -0.95 and out[0, :, :, 52:].max() < -0.95


def test_paths_are_loaded(tmp_path):
    array = random_rgb(9, 7, seed=4)
    Image.fromarray(array).save(tmp_path / "a.png")
    torch.testing.assert_close(prepare_images([tmp_path / "a.png"], 6, 3), prepare_images([array], 6, 3))


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), ValueError, "image 0: the image is empty"),
        (np.full((4, 4), np.nan, np.float32), ValueError, "NaN"),
        (np.ones((2, 4, 4, 3), np.uint8), ValueError, "expected HW or HWC"),
        (np.ones((4, 4, 5), np.uint8), ValueError, "1, 2, 3 or 4 channels"),
        (np.full((4, 4), 2.0, np.float32), ValueError, r"must be in \[0, 1\]"),
        (np.ones((4, 4), np.int64), TypeError, "unsupported dtype int64"),
        (torch.ones(8, 8, 3), ValueError, "torch tensors are CHW"),
        ([[0, 1]], TypeError, "expected a PIL image"),
    ],
)
def test_bad_images_get_clear_errors(image, error, message):
    with pytest.raises(error, match=message):
        prepare_images([image], 4, 3)


def test_unreadable_files_name_index_and_path(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    good = random_rgb(4, 4)
    with pytest.raises(ValueError, match=r"image 1 \(.*broken.png\): cannot read"):
        prepare_images([good, broken], 4, 3)
    with pytest.raises(ValueError, match=r"image 0 \(.*missing.png\): file not found"):
        prepare_images([tmp_path / "missing.png"], 4, 3)
    with pytest.raises(TypeError, match="wrap a single image"):
        prepare_images(good, 4, 3)  # type: ignore[arg-type]
