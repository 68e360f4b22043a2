"""The model adapter interface: what the scoring loop needs from a diffusion model, and nothing about scheduling.

An adapter encodes images once, encodes the class conditioning once per run, and denoises batches laid out as
sample rows (one noised latent and timestep each) and class rows (the classes scored against each sample).
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Sequence, Union

import numpy as np
import torch
from PIL import Image

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample", "flow")
"""What a denoiser predicts: the noise, the velocity ``alpha eps - sigma z0``, the clean sample, or flow velocity."""

ImageInput = Union[Image.Image, np.ndarray, torch.Tensor, str, "os.PathLike[str]"]
"""One image as :meth:`Adapter.prepare_images` accepts it (see :mod:`genfast.models.images` for conventions)."""


class Adapter(ABC):
    """One diffusion model as the classifier sees it: encode images, encode classes, denoise class rows.

    Attributes every adapter sets: ``name``, ``prediction_type`` (one of :data:`PREDICTION_TYPES`),
    ``num_train_timesteps``, ``alphas_cumprod`` (float64 ``[T]`` on CPU for variance-preserving models, else
    None), ``latent_shape`` (shape of one encoded image), ``image_size`` and ``image_channels`` (what
    :meth:`prepare_images` produces), ``device`` and ``dtype`` (of the denoiser), and ``class_names`` (the
    classes of the last :meth:`encode_classes`, empty before). :attr:`default_batch_size` is the number of class
    rows per denoiser call a caller uses when it does not choose.
    """

    name: str
    prediction_type: str
    num_train_timesteps: int
    alphas_cumprod: torch.Tensor | None
    latent_shape: tuple[int, ...]
    image_size: int
    image_channels: int
    device: torch.device
    dtype: torch.dtype
    class_names: list[str]

    @abstractmethod
    def prepare_images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Load, colour-convert, resize and centre-crop images to float32 ``[N, C, H, W]`` in [-1, 1] on CPU."""

    @abstractmethod
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode prepared pixels to the denoiser's space: float32 ``[N, *latent_shape]`` on ``device``."""

    @abstractmethod
    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Compute and cache the conditioning of every class (once per run); class index k is class_names[k]."""

    @abstractmethod
    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
    ) -> torch.Tensor:
        """Predict for every class row: ``z_t [S, *latent]``, ``t int64 [S]``, ``sample_offsets int64 [S+1]``
        (rows of sample s are ``offsets[s]:offsets[s+1]``), ``class_index int64 [B]`` -> ``[B, *latent]``."""

    @property
    def default_batch_size(self) -> int:
        """Rows per denoiser call when the caller does not choose: about a million latent elements per batch
        (64 rows of Stable Diffusion's 4x64x64 latents), at most 256 rows (small models), at least 8.

        Measured on a 2-core CPU (benchmarks/RESULTS.md): the tiny SD-architecture model ran 1.9x faster than Li
        et al.'s batches of 32 at 256 rows, but only 1.06x at 32."""
        return int(max(8, min(256, 2**20 // int(np.prod(self.latent_shape)))))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the model and the options in effect (for logs and benchmark reports)."""
        return {
            "name": self.name,
            "class": type(self).__name__,
            "prediction_type": self.prediction_type,
            "num_train_timesteps": self.num_train_timesteps,
            "latent_shape": list(self.latent_shape),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
        }
