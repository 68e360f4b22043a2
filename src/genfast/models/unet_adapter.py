"""What the two UNet adapters share: row checks, denoise / denoise_plain, class bookkeeping, preprocessing."""
from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from typing import Any, Sequence

import torch

from genfast.models.base import Adapter, ImageInput
from genfast.models.images import prepare_images
from genfast.models.unet import ClassConditionedUNet


def resolve_device_dtype(
    device: str | torch.device | None, dtype: torch.dtype | str | None
) -> tuple[torch.device, torch.dtype]:
    """Defaults: CUDA when available, else CPU; float16 on CUDA, float32 on CPU. Strings like "bf16" are accepted."""
    resolved = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        return resolved, torch.float16 if resolved.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                 "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch dtype, got {dtype!r}")
        dtype = names[dtype]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    return resolved, dtype


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """The class names as a list; a clear error for an empty list, non-strings or duplicates."""
    if isinstance(class_names, str):
        raise TypeError("class_names must be a sequence of strings, not a single string")
    names = list(class_names)
    if not names:
        raise ValueError("class_names is empty")
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        raise ValueError(f"class_names must be non-empty strings, got {bad[:5]!r}")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"class_names has duplicates: {duplicates}")
    return names


class UNetAdapter(Adapter):
    """An adapter whose denoiser is a UNet2DConditionModel run by :class:`ClassConditionedUNet`.

    Subclasses set the model attributes, build ``self.runner`` and implement :meth:`_conditioning`.
    """

    runner: ClassConditionedUNet
    class_names: list[str]

    @abstractmethod
    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor:
        """The cross-attention conditioning of every class, ``[C, L, cross_attention_dim]``."""

    def prepare_images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Images to float32 ``[N, C, image_size, image_size]`` in [-1, 1] (see genfast.models.images)."""
        return prepare_images(images, self.image_size, self.image_channels)

    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Encode and cache every class's conditioning (and, by default, every layer's text keys/values)."""
        names = check_class_names(class_names)
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        self.runner.set_conditioning(self._conditioning(names, prompt))
        self.class_names = names

    def denoise(
        self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor
    ) -> torch.Tensor:
        """The prediction of every class row ``[B, *latent]``, with the sharing options in effect."""
        rows = self._check_rows(z_t, t, sample_offsets, class_index)
        return self.runner.forward(*rows) if rows[3].numel() else self._no_rows()

    def denoise_plain(
        self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor
    ) -> torch.Tensor:
        """The baseline: the plain diffusers UNet forward on every row with the conditioning repeated per row."""
        rows = self._check_rows(z_t, t, sample_offsets, class_index)
        return self.runner.forward_plain(*rows) if rows[3].numel() else self._no_rows()

    def _no_rows(self) -> torch.Tensor:
        return torch.empty(0, *self.latent_shape, device=self.device, dtype=self.dtype)

    def options(self) -> dict[str, Any]:
        """The denoiser options in effect (share_prefix, cache_class_kv, attention) and why any is off."""
        return self.runner.options()

    def describe(self) -> dict[str, Any]:
        """Model summary plus the options in effect."""
        return {**super().describe(), "options": self.options()}

    def _check_rows(
        self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate shapes, dtypes and index values (one sync on GPU) and move everything to the model."""
        for name, value in (("z_t", z_t), ("t", t), ("sample_offsets", sample_offsets), ("class_index", class_index)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not self.class_names:
            raise RuntimeError("no classes encoded: call encode_classes first")
        samples = z_t.shape[0]
        if tuple(z_t.shape[1:]) != tuple(self.latent_shape):
            latent = ", ".join(map(str, self.latent_shape))
            raise ValueError(f"z_t must have shape [S, {latent}], got {tuple(z_t.shape)}")
        if not z_t.is_floating_point():
            raise TypeError(f"z_t must be floating point, got {z_t.dtype}")
        if t.shape != (samples,):
            raise ValueError(f"t must have shape [{samples}] (one timestep per z_t row), got {tuple(t.shape)}")
        if sample_offsets.shape != (samples + 1,) or sample_offsets.dtype != torch.int64:
            got = f"{sample_offsets.dtype} {tuple(sample_offsets.shape)}"
            raise ValueError(f"sample_offsets must be int64 [{samples + 1}], got {got}")
        if class_index.ndim != 1 or class_index.dtype != torch.int64:
            raise ValueError(f"class_index must be int64 [B], got {class_index.dtype} {tuple(class_index.shape)}")
        rows = class_index.shape[0]
        device = self.device
        sample_offsets, class_index = sample_offsets.to(device), class_index.to(device)
        # one combined check, so at most one device-to-host sync per call
        bad_offsets = (sample_offsets[0] != 0) | (sample_offsets[-1] != rows) | (sample_offsets.diff() < 0).any()
        bad_classes = ((class_index < 0) | (class_index >= len(self.class_names))).any()
        if bool(bad_offsets | bad_classes):
            if bool(bad_offsets):
                raise ValueError(
                    f"sample_offsets must rise from 0 to len(class_index)={rows}, got {sample_offsets.tolist()[:8]}..."
                )
            raise ValueError(f"class_index values must be in [0, {len(self.class_names)}) (the encoded classes)")
        return z_t.to(device=device, dtype=self.dtype), t.to(device), sample_offsets, class_index
